#include "sparsity/data_sparsifier/registry.h"

#include "sparsity/named_registry.h"
#include "sparsity/data_sparsifier/data_norm_sparsifier.h"
#include "sparsity/data_sparsifier/global_norm_sparsifier.h"
#include "sparsity/data_sparsifier/unit_norm_sparsifier.h"

namespace sparsity {

namespace {

// Built-ins are added on first use rather than by static initializers, which a
// static link could drop.
NamedRegistry<DataSparsifierFactory>& registry() {
  static NamedRegistry<DataSparsifierFactory> instance("data sparsifier");
  static const bool builtins_added = [] {
    instance.add("DataNormSparsifier", [](const Config& args) {
      return std::make_unique<DataNormSparsifier>(DataNormSparsifierOptions::from_config(args));
    }, false);
    instance.add("GlobalNormSparsifier", [](const Config& args) {
      return std::make_unique<GlobalNormSparsifier>(GlobalNormSparsifier::options_from_config(args));
    }, false);
    instance.add("UnitNormSparsifier", [](const Config& args) {
      return std::make_unique<UnitNormSparsifier>(UnitNormSparsifierOptions::from_config(args));
    }, false);
    return true;
  }();
  (void)builtins_added;
  return instance;
}

}  // namespace

void register_data_sparsifier(const std::string& type, DataSparsifierFactory factory, bool replace) {
  registry().add(type, std::move(factory), replace);
}

std::vector<std::string> registered_data_sparsifiers() { return registry().names(); }

std::unique_ptr<BaseDataSparsifier> make_data_sparsifier(const std::string& type, const Config& args) {
  return registry().get(type)(args);
}

}  // namespace sparsity
