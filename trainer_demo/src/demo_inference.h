#pragma once
// The payoff of a sparse model at inference: its forward pass timed dense and
// after `to_sparse_inference`, on the model read back from its compact file.

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sparsity::demo {

/// Milliseconds per batch of a model's forward pass, dense and sparse.
struct InferenceTiming {
  /// The trained model as it is (dense Linear layers, OpenBLAS).
  double dense_ms = 0.0;
  /// The model read from its compact file (`load_sparse`) and converted by
  /// `to_sparse_inference`.
  double sparse_ms = 0.0;
  /// The layers `to_sparse_inference` replaced (dotted names).
  std::vector<std::string> replaced;
  /// dense_ms / sparse_ms: above 1 when the sparse model is faster.
  double speedup() const { return sparse_ms > 0.0 ? dense_ms / sparse_ms : 0.0; }
};

/// Times `model` (a Sequential) over `inputs` in batches of `batch_size`, the
/// best of `repeats` passes, then a copy of it filled from `compact_file` by
/// `load_sparse` and converted by `to_sparse_inference`. The copy's outputs
/// must equal the model's (1e-4 relative): std::runtime_error otherwise,
/// naming the largest difference. `model` itself is not changed.
InferenceTiming time_inference(torch::nn::Module& model, const std::string& compact_file, const at::Tensor& inputs,
                               int64_t batch_size = 256, int repeats = 5);

/// Milliseconds per batch of a model and of its shrunk copy, timed side by side.
struct ShrinkTiming {
  double dense_ms = 0.0;
  double shrunk_ms = 0.0;
};

/// Times `model` and `shrunk` (both Sequential; `shrink`'s result) over
/// `inputs` in batches of `batch_size`, the best of `repeats` passes each, in
/// eval mode. Their outputs must agree (1e-4 relative): std::runtime_error
/// otherwise, naming the largest difference. Neither model's mode is changed.
ShrinkTiming time_shrunk(torch::nn::Module& model, torch::nn::Module& shrunk, const at::Tensor& inputs,
                         int64_t batch_size = 256, int repeats = 5);

}  // namespace sparsity::demo
