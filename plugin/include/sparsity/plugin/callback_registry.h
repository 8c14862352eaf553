#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/plugin/callback.h"

namespace sparsity {

/// Builds a callback from its arguments (e.g. from a YAML config).
using CallbackFactory = std::function<std::shared_ptr<Callback>(const Config& args)>;

/// Makes `type` constructible by `make_callback`. Registering a name twice is
/// an error unless `replace` is true. Thread-safe.
void register_callback(const std::string& type, CallbackFactory factory, bool replace = false);

/// The registered type names, sorted. Built in: "LossySparsifierCallback".
std::vector<std::string> registered_callbacks();

/// A new callback of the registered `type`; an unknown type is
/// std::invalid_argument listing the known ones.
std::shared_ptr<Callback> make_callback(const std::string& type, const Config& args = {});

}  // namespace sparsity
