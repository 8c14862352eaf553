#include "activation_count.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <array>
#include <cmath>

namespace sparsity::detail {
namespace {

constexpr int64_t kGrain = 32768;

// Zeros and near zeros in one pass over contiguous CPU values.
template <typename T>
std::array<int64_t, 2> count_pass(const T* x, int64_t n, T tolerance) {
  using Counts = std::array<int64_t, 2>;
  return at::parallel_reduce(
      int64_t{0}, n, kGrain, Counts{0, 0},
      [&](int64_t begin, int64_t end, Counts acc) {
        int64_t zeros = 0, near = 0;
        for (int64_t i = begin; i < end; ++i) {
          const T magnitude = std::abs(x[i]);
          zeros += magnitude == T(0);
          near += magnitude <= tolerance;
        }
        return Counts{acc[0] + zeros, acc[1] + near};
      },
      [](const Counts& a, const Counts& b) { return Counts{a[0] + b[0], a[1] + b[1]}; });
}

}  // namespace

void count_activations(const at::Tensor& activations, double near_zero, LayerActivationSparsity& into) {
  torch::NoGradGuard no_grad;
  const at::Tensor x = activations.detach();
  const int64_t n = x.numel();
  int64_t zeros = 0;
  int64_t near = 0;
  if (x.device().is_cpu() && x.is_contiguous() &&
      (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "count_activations", [&] {
      const auto counts = count_pass<scalar_t>(x.data_ptr<scalar_t>(), n, static_cast<scalar_t>(near_zero));
      zeros = counts[0];
      near = counts[1];
    });
  } else {
    zeros = n - x.count_nonzero().item<int64_t>();
    near = x.abs().le(near_zero).sum().item<int64_t>();
  }
  const int64_t examples = x.dim() == 0 ? 1 : x.size(0);
  const int64_t per_example = examples == 0 ? 0 : n / examples;
  const auto element_bytes = static_cast<int64_t>(x.element_size());
  into.zeros += zeros;
  into.near_zero += near;
  into.elements += n;
  into.dense_bytes += n * element_bytes;
  into.sparse_bytes += examples * ((per_example + 7) / 8) + (n - zeros) * element_bytes;
}

void sum_layers(ActivationSparsityReport& report) {
  report.zeros = report.near_zero = report.elements = report.dense_bytes = report.sparse_bytes = 0;
  for (const auto& layer : report.layers) {
    report.zeros += layer.zeros;
    report.near_zero += layer.near_zero;
    report.elements += layer.elements;
    report.dense_bytes += layer.dense_bytes;
    report.sparse_bytes += layer.sparse_bytes;
  }
}

}  // namespace sparsity::detail
