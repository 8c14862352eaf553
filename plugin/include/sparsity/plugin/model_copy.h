#pragma once

#include <functional>
#include <memory>

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

/// Builds a fresh model of the same architecture as the one being trained.
using ModelFactory = std::function<std::shared_ptr<torch::nn::Module>()>;

/// A deep copy of `model`: new parameters and buffers with the same values, on
/// the same devices. Uses `model.clone()` when the model is cloneable
/// (`torch::nn::Sequential`, any `torch::nn::Cloneable<T>`); otherwise builds a
/// fresh model with `factory` and copies every parameter and buffer into it by
/// name. Without either, throws std::invalid_argument saying which to provide.
std::shared_ptr<torch::nn::Module> deep_copy(const torch::nn::Module& model, const ModelFactory& factory = nullptr);

}  // namespace sparsity
