#include "sparsity/plugin/callback_registry.h"

#include "sparsity/named_registry.h"
#include "sparsity/plugin/lossy_sparsifier_callback.h"

namespace sparsity {

namespace {

// Built-ins are added on first use rather than by static initializers, which a
// static link could drop.
NamedRegistry<CallbackFactory>& registry() {
  static NamedRegistry<CallbackFactory> instance("callback");
  static const bool builtins_added = [] {
    instance.add("LossySparsifierCallback", [](const Config& args) {
      return std::make_shared<LossySparsifierCallback>(LossySparsifierCallbackOptions::from_config(args));
    }, false);
    return true;
  }();
  (void)builtins_added;
  return instance;
}

}  // namespace

void register_callback(const std::string& type, CallbackFactory factory, bool replace) {
  registry().add(type, std::move(factory), replace);
}

std::vector<std::string> registered_callbacks() { return registry().names(); }

std::shared_ptr<Callback> make_callback(const std::string& type, const Config& args) {
  return registry().get(type)(args);
}

}  // namespace sparsity
