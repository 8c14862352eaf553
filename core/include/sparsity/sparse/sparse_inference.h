#pragma once
// Replacing a model's sparse Linear layers with SparseLinear where that is
// faster, for CPU inference.

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sparsity/sparse/sparse_linear.h"

namespace sparsity {

/// Options for `to_sparse_inference` and `sparse_linear_pays_off`.
///
/// Example:
/// ```
/// sparsity::SparseInferenceOptions().batch_size(1);          // the policy's crossover for batch 1
/// sparsity::SparseInferenceOptions().min_sparsity(0.6);      // replace from 60 % zeros on
/// sparsity::SparseInferenceOptions().layer(sparsity::SparseLinearOptions().format(sparsity::SparseFormat::CSR));
/// ```
struct SparseInferenceOptions {
  /// Replace a Linear whose weight has at least this fraction of zeros
  /// (counted over the values SparseLinear would store: zeros inside stored
  /// blocks count as values), in [0, 1]. Unset: the measured crossover of the
  /// format and batch size (`sparse_linear_crossover`).
  TORCH_ARG(std::optional<double>, min_sparsity) = std::nullopt;
  /// The batch size the model will run at (>= 1): the crossover depends on it.
  TORCH_ARG(int64_t, batch_size) = 16;
  /// How each replacement holds its weight.
  TORCH_ARG(SparseLinearOptions, layer) = {};
};

/// The sparsity from which SparseLinear in `format` with `block_shape` ({1, 1}
/// for CSR) beats the dense Linear at `batch_size` on this library's
/// measurements (bench/README.md, "Sparse inference"), with a margin: always
/// above 0.5, so a half-sparse layer stays dense.
double sparse_linear_crossover(SparseFormat format, std::array<int64_t, 2> block_shape, int64_t batch_size);

/// Whether `to_sparse_inference` would replace `linear`: its weight is float32
/// on the CPU and its sparsity (over the values the chosen format stores)
/// reaches `options.min_sparsity()`, or the crossover. std::invalid_argument
/// for bad options (min_sparsity outside [0, 1], batch_size < 1, a bad layer
/// option).
bool sparse_linear_pays_off(const torch::nn::Linear& linear, const SparseInferenceOptions& options = {});

/// Replaces, inside Sequential, ModuleList and ModuleDict containers (also
/// nested ones, anywhere in `model`'s tree), each `torch::nn::Linear` child for
/// which `sparse_linear_pays_off` holds by a `SparseLinear` built from it, in
/// the same train/eval mode; returns the dotted names of those replaced (in
/// the tree's order, "0", "blocks.1.fc", ...). `model` itself is not replaced,
/// nor are SparseLinear layers already there.
///
/// A custom module's forward calls its members directly, so a Linear held
/// as a plain member of a custom module cannot be swapped from outside: such
/// layers are left dense (and logged as a warning when they would pay off).
/// To make a custom module convertible, hold the layer in a container
/// (`register_module("body", torch::nn::Sequential(...))`) or as a
/// `torch::nn::AnyModule` member that you replace yourself with
/// `torch::nn::AnyModule(SparseLinear(linear))` when `sparse_linear_pays_off`.
///
/// Example:
/// ```
/// torch::nn::Sequential net(torch::nn::Linear(784, 1024), torch::nn::ReLU(), torch::nn::Linear(1024, 10));
/// // ... prune net's first layer to 95 % zeros ...
/// auto replaced = sparsity::to_sparse_inference(*net);   // {"0"}
/// torch::NoGradGuard no_grad;
/// auto y = net->forward(x);
/// ```
std::vector<std::string> to_sparse_inference(torch::nn::Module& model, SparseInferenceOptions options = {});

}  // namespace sparsity
