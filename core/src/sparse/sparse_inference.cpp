#include "sparsity/sparse/sparse_inference.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

#include "../lossy/container_rewire.h"
#include "sparsity/logging.h"

namespace sparsity {

namespace {

using torch::nn::AnyModule;
using torch::nn::Module;

void check_options(const SparseInferenceOptions& options) {
  if (const auto& s = options.min_sparsity()) {
    if (!std::isfinite(*s) || *s < 0.0 || *s > 1.0) {
      throw std::invalid_argument(fmt::format("SparseInferenceOptions: min_sparsity must be in [0, 1], got {}", *s));
    }
  }
  if (options.batch_size() < 1) {
    throw std::invalid_argument(
        fmt::format("SparseInferenceOptions: batch_size must be >= 1, got {}", options.batch_size()));
  }
}

bool convertible(const torch::nn::LinearImpl& linear) {
  const auto& w = linear.weight;
  return w.defined() && w.dim() == 2 && w.scalar_type() == at::kFloat && w.device().is_cpu() &&
         (!linear.bias.defined() || (linear.bias.scalar_type() == at::kFloat && linear.bias.device().is_cpu()));
}

// The SparseLinear that would replace `linear`, when it pays off.
std::optional<SparseLinear> candidate(const std::shared_ptr<torch::nn::LinearImpl>& linear,
                                      const SparseInferenceOptions& options) {
  if (!convertible(*linear)) return std::nullopt;
  SparseLinear sparse(torch::nn::Linear(linear), options.layer());
  const int64_t total = sparse->in_features() * sparse->out_features();
  if (total == 0) return std::nullopt;
  const double stored_sparsity = 1.0 - static_cast<double>(sparse->stored_values()) / static_cast<double>(total);
  const double threshold = options.min_sparsity().has_value()
                               ? *options.min_sparsity()
                               : sparse_linear_crossover(sparse->format(), sparse->block_shape(), options.batch_size());
  if (stored_sparsity < threshold) return std::nullopt;
  if (!linear->is_training()) sparse->eval();
  return sparse;
}

struct Converter {
  const SparseInferenceOptions& options;
  std::vector<std::string> replaced;
  std::vector<std::string> skipped;

  void visit(Module& m, const std::string& prefix) {
    if (detail::is_container(m)) {
      detail::rewire(m, [&](const std::string& name, const std::shared_ptr<Module>& child,
                            const AnyModule*) -> std::optional<AnyModule> {
        const std::string path = detail::child_path(prefix, name);
        if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(child)) {
          if (auto sparse = candidate(linear, options)) {
            replaced.push_back(path);
            return AnyModule(*sparse);
          }
          return std::nullopt;
        }
        visit(*child, path);
        return std::nullopt;
      });
      return;
    }
    for (const auto& item : m.named_children()) {
      const std::string path = detail::child_path(prefix, item.key());
      if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(item.value())) {
        if (candidate(linear, options)) skipped.push_back(path);
      } else {
        visit(*item.value(), path);
      }
    }
  }
};

}  // namespace

double sparse_linear_crossover(SparseFormat format, std::array<int64_t, 2> block_shape, int64_t batch_size) {
  // From bench/sparse_linear_bench (bench/README.md, "Sparse inference"): the
  // sparse kernels cost about c_s per stored value and the dense Linear c_d
  // per weight, so the crossover density is c_d / c_s; at 50 % sparsity the
  // measured speedups put it at 0.45-0.55 for batches 8-64 and 0.2-0.3 for
  // 128 and more (OpenBLAS's GEMM is at its best there), and at batch 1 at
  // about 0.4 for small layers (784x128; OpenBLAS's GEMV is slow on larger
  // ones). Each figure below is the worst shape's crossover plus a margin
  // of about 0.05-0.1, and none is below 0.65, so a half-sparse layer stays
  // dense.
  const bool blocks = format == SparseFormat::BlockCSR && block_shape[0] * block_shape[1] == 4;
  if (batch_size < 8) return blocks ? 0.70 : 0.75;
  if (batch_size < 32) return 0.65;
  if (batch_size < 128) return 0.70;
  return 0.85;
}

bool sparse_linear_pays_off(const torch::nn::Linear& linear, const SparseInferenceOptions& options) {
  check_options(options);
  if (linear.is_empty()) throw std::invalid_argument("sparse_linear_pays_off: the Linear is empty (a null holder)");
  return candidate(linear.ptr(), options).has_value();
}

std::vector<std::string> to_sparse_inference(Module& model, SparseInferenceOptions options) {
  check_options(options);
  // Checks the layer options once, before anything is rewired.
  SparseLinear check(at::zeros({4, 4}), at::Tensor(), options.layer());
  Converter converter{options, {}, {}};
  converter.visit(model, "");
  if (!converter.skipped.empty()) {
    logger()->warn(
        "to_sparse_inference: {} sparse Linear layer(s) held directly by a custom module cannot be rewired "
        "from C++ (hold them in a container or an AnyModule, see sparse_inference.h): {}",
        converter.skipped.size(), fmt::join(converter.skipped, ", "));
  }
  return std::move(converter.replaced);
}

}  // namespace sparsity
