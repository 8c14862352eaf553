#pragma once

// Which LayerKind a module is, for the lossy sources that walk models. The
// table behind these (layer_kind.cpp) is the one place a kind is tied to its
// LibTorch module and its name.

#include <torch/nn/modules/container/any.h>

#include <memory>
#include <optional>
#include <utility>

#include "sparsity/lossy/layer_kind.h"

namespace sparsity::detail {

/// The kind of `m`, or nullopt when it is none of LayerKind's modules.
std::optional<LayerKind> layer_kind_of(const torch::nn::Module& m);

/// The same, with an AnyModule of `m`'s concrete type: AnyModule needs the
/// type, and a ModuleList or ModuleDict child is only a Module pointer.
std::optional<std::pair<LayerKind, torch::nn::AnyModule>> classify_layer(const std::shared_ptr<torch::nn::Module>& m);

}  // namespace sparsity::detail
