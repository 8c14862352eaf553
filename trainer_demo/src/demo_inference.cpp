#include "demo_inference.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/nn/modules/container/sequential.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>

#include "sparsity/sparse/sparse_file.h"
#include "sparsity/sparse/sparse_inference.h"

namespace sparsity::demo {

namespace {

torch::nn::SequentialImpl& as_sequential(torch::nn::Module& model) {
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(&model);
  if (sequential == nullptr) {
    throw std::invalid_argument(fmt::format("time_inference: the model is a {}, not a Sequential", model.name()));
  }
  return *sequential;
}

// The outputs of one pass over `inputs`, and the best per-batch time of `repeats` passes.
std::pair<at::Tensor, double> timed_passes(torch::nn::SequentialImpl& model, const at::Tensor& inputs,
                                           int64_t batch_size, int repeats) {
  const int64_t n = inputs.size(0);
  const int64_t batches = (n + batch_size - 1) / batch_size;
  std::vector<at::Tensor> outputs;
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats; ++r) {
    outputs.clear();
    const auto start = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < n; first += batch_size) {
      outputs.push_back(model.forward(inputs.narrow(0, first, std::min(batch_size, n - first))));
    }
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return {at::cat(outputs), batches > 0 ? best / static_cast<double>(batches) : 0.0};
}

void check_same_outputs(const at::Tensor& expected, const at::Tensor& got, const std::string& what) {
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  const double difference = expected.numel() == 0 ? 0.0 : (expected - got).abs().max().item<double>();
  if (!(difference <= 1e-4 * scale)) {
    throw std::runtime_error(
        fmt::format("{} computes outputs up to {} away from the dense model's (largest output {})", what, difference,
                    scale));
  }
}

void check_timing_arguments(const char* who, int64_t batch_size, int repeats) {
  if (batch_size < 1 || repeats < 1) {
    throw std::invalid_argument(
        fmt::format("{}: batch_size {} and repeats {} must be at least 1", who, batch_size, repeats));
  }
}

}  // namespace

ShrinkTiming time_shrunk(torch::nn::Module& model, torch::nn::Module& shrunk, const at::Tensor& inputs,
                         int64_t batch_size, int repeats) {
  check_timing_arguments("time_shrunk", batch_size, repeats);
  torch::nn::SequentialImpl& dense = as_sequential(model);
  torch::nn::SequentialImpl& small = as_sequential(shrunk);
  const bool model_training = model.is_training(), shrunk_training = shrunk.is_training();
  model.eval();
  shrunk.eval();
  at::NoGradGuard no_grad;
  auto [dense_out, dense_ms] = timed_passes(dense, inputs, batch_size, repeats);
  auto [shrunk_out, shrunk_ms] = timed_passes(small, inputs, batch_size, repeats);
  model.train(model_training);
  shrunk.train(shrunk_training);
  check_same_outputs(dense_out, shrunk_out, "time_shrunk: the shrunk model");
  return ShrinkTiming{dense_ms, shrunk_ms};
}

InferenceTiming time_inference(torch::nn::Module& model, const std::string& compact_file, const at::Tensor& inputs,
                               int64_t batch_size, int repeats) {
  check_timing_arguments("time_inference", batch_size, repeats);
  torch::nn::SequentialImpl& dense = as_sequential(model);
  const std::shared_ptr<torch::nn::Module> copy = model.clone();
  load_sparse(*copy, compact_file);
  InferenceTiming timing;
  timing.replaced = to_sparse_inference(*copy, SparseInferenceOptions().batch_size(batch_size));

  const bool was_training = model.is_training();
  model.eval();
  copy->eval();
  at::NoGradGuard no_grad;
  auto [dense_out, dense_ms] = timed_passes(dense, inputs, batch_size, repeats);
  auto [sparse_out, sparse_ms] = timed_passes(as_sequential(*copy), inputs, batch_size, repeats);
  model.train(was_training);
  timing.dense_ms = dense_ms;
  timing.sparse_ms = sparse_ms;

  check_same_outputs(dense_out, sparse_out,
                     fmt::format("time_inference: the sparse-inference model read from '{}'", compact_file));
  return timing;
}

}  // namespace sparsity::demo
