#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/sparsifying_callback.h"

namespace sparsity {

/// Builds a callback from its arguments (e.g. from a YAML config).
using CallbackFactory = std::function<std::shared_ptr<Callback>(const Config& args)>;

/// Makes `type` constructible by `make_callback`. Registering a name twice is
/// an error unless `replace` is true. Thread-safe.
void register_callback(const std::string& type, CallbackFactory factory, bool replace = false);

/// The registered type names, sorted. Built in: "LossySparsifierCallback",
/// "PostTrainingDataSparsity", "TrainingAwareDataSparsity" (each reads the
/// Config its `to_config()` writes).
std::vector<std::string> registered_callbacks();

/// A new callback of the registered `type`; an unknown type is
/// std::invalid_argument listing the known ones, a bad argument a ConfigError
/// with its key path in `args`.
///
/// Example:
/// ```
/// auto post = sparsity::make_callback(
///     "PostTrainingDataSparsity",
///     sparsity::Config{{"sparsifier", sparsity::Config{{"type", "DataNormSparsifier"},
///                                                      {"args", sparsity::Config{{"sparsity_level", 0.5}}}}},
///                      {"include", sparsity::ConfigValue::StringList{"*weight"}}});
/// ```
std::shared_ptr<Callback> make_callback(const std::string& type, const Config& args = {});

/// make_callback for a SparsifyingCallback: std::invalid_argument naming the
/// type when the registered callback is not one.
std::shared_ptr<SparsifyingCallback> make_sparsifying_callback(const std::string& type, const Config& args = {});

}  // namespace sparsity
