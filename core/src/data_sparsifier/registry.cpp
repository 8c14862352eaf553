#include "sparsity/data_sparsifier/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include "sparsity/data_sparsifier/data_norm_sparsifier.h"

namespace sparsity {

namespace {

struct Registry {
  Registry() {
    factories["DataNormSparsifier"] = [](const Config& args) {
      return std::make_unique<DataNormSparsifier>(DataNormSparsifierOptions::from_config(args));
    };
  }
  std::mutex mutex;
  std::map<std::string, DataSparsifierFactory> factories;
};

// Built-ins are added on first use rather than by static initializers, which a
// static link could drop.
Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void register_data_sparsifier(const std::string& type, DataSparsifierFactory factory, bool replace) {
  if (type.empty()) throw std::invalid_argument("a data sparsifier type name must not be empty");
  if (!factory) throw std::invalid_argument(fmt::format("data sparsifier '{}': empty factory", type));
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!replace && r.factories.count(type) != 0) {
    throw std::invalid_argument(fmt::format(
        "data sparsifier type '{}' is already registered (pass replace=true to override it)", type));
  }
  r.factories[type] = std::move(factory);
}

std::vector<std::string> registered_data_sparsifiers() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

std::unique_ptr<BaseDataSparsifier> make_data_sparsifier(const std::string& type, const Config& args) {
  DataSparsifierFactory factory;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(type);
    if (it == r.factories.end()) {
      std::vector<std::string> known;
      for (const auto& entry : r.factories) known.push_back(entry.first);
      throw std::invalid_argument(fmt::format("unknown data sparsifier type '{}' (known: {})", type,
                                              fmt::join(known, ", ")));
    }
    factory = it->second;
  }
  return factory(args);
}

}  // namespace sparsity
