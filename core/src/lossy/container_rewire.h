#pragma once

// Replacing children of LibTorch's containers in place: what the insertion of
// sparsifiers and the hard conversion share. A C++ module's forward calls its
// members directly, so only a container's children can be replaced.

#include <torch/nn/modules/container/any.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sparsity::detail {

/// Whether `m` is a Sequential, ModuleList or ModuleDict (a `Sparsified`
/// wrapper too: it is a Sequential).
bool is_container(const torch::nn::Module& m);

/// The replacement of a container's child, or nullopt to keep it. `name` is the
/// child's name in the container; `any` is its AnyModule in a Sequential (the
/// concrete type, which a Module pointer has lost), null elsewhere.
using ReplaceChild = std::function<std::optional<torch::nn::AnyModule>(
    const std::string& name, const std::shared_ptr<torch::nn::Module>& child, const torch::nn::AnyModule* any)>;

/// Calls `replace` on each child of the container `container` in order and
/// puts in the replacements it returns. The container object keeps its
/// identity (so whoever holds it sees the new children) and its train/eval
/// mode. Anything but a container is left alone.
void rewire(torch::nn::Module& container, const ReplaceChild& replace);

/// "prefix.name", or "name" at the top.
std::string child_path(const std::string& prefix, const std::string& name);

}  // namespace sparsity::detail
