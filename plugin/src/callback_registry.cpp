#include "sparsity/plugin/callback_registry.h"

#include <fmt/format.h>

#include <stdexcept>

#include "sparsity/named_registry.h"
#include "sparsity/plugin/lossy_sparsifier_callback.h"
#include "sparsity/plugin/post_training_data_sparsity.h"
#include "sparsity/plugin/training_aware_data_sparsity.h"

namespace sparsity {

namespace {

// Built-ins are added on first use rather than by static initializers, which a
// static link could drop.
NamedRegistry<CallbackFactory>& registry() {
  static NamedRegistry<CallbackFactory> instance("callback");
  static const bool builtins_added = [] {
    instance.add("PostTrainingDataSparsity", &PostTrainingDataSparsity::from_config, false);
    instance.add("TrainingAwareDataSparsity", &TrainingAwareDataSparsity::from_config, false);
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

std::shared_ptr<SparsifyingCallback> make_sparsifying_callback(const std::string& type, const Config& args) {
  std::shared_ptr<Callback> callback = make_callback(type, args);
  auto sparsifying = std::dynamic_pointer_cast<SparsifyingCallback>(callback);
  if (!sparsifying) {
    throw std::invalid_argument(fmt::format(
        "callback type '{}' is not a SparsifyingCallback (it has no sparsified model to compare)", type));
  }
  return sparsifying;
}

}  // namespace sparsity
