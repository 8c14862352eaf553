#include "sparsity/sparse/sparse_linear.h"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <vector>

#include "sparse_kernels.h"
#include "sparsity/message_text.h"

namespace sparsity {

namespace {

std::string shape_pair(const std::array<int64_t, 2>& shape) { return fmt::format("{{{}, {}}}", shape[0], shape[1]); }

void check_parameter(const char* who, const char* what, const at::Tensor& t) {
  if (t.scalar_type() != at::kFloat) {
    throw std::invalid_argument(
        fmt::format("{}: the {} must be float32, got {}", who, what, c10::toString(t.scalar_type())));
  }
  if (!t.device().is_cpu()) {
    throw std::invalid_argument(fmt::format("{}: the {} must be on the CPU, got {}", who, what, t.device().str()));
  }
  if (t.layout() != at::kStrided) {
    throw std::invalid_argument(fmt::format("{}: the {} must be a dense (strided) tensor", who, what));
  }
}

void check_weight(const char* who, const at::Tensor& weight, const at::Tensor& bias) {
  if (!weight.defined()) throw std::invalid_argument(fmt::format("{}: the weight is undefined", who));
  check_parameter(who, "weight", weight);
  if (weight.dim() != 2) {
    throw std::invalid_argument(fmt::format("{}: the weight must be [out, in], got {}", who, shape_text(weight)));
  }
  if (weight.size(1) > std::numeric_limits<int32_t>::max()) {
    throw std::invalid_argument(
        fmt::format("{}: in_features {} does not fit the 32-bit column indices", who, weight.size(1)));
  }
  if (bias.defined()) {
    check_parameter(who, "bias", bias);
    if (bias.dim() != 1 || bias.size(0) != weight.size(0)) {
      throw std::invalid_argument(fmt::format("{}: the bias must be [{}] for a weight {}, got {}", who,
                                              weight.size(0), shape_text(weight), shape_text(bias)));
    }
  }
}

// The input as [batch, in] contiguous float32, after the checks; out_sizes
// is left empty when the result needs no reshaping.
at::Tensor input_matrix(const char* who, const at::Tensor& input, int64_t in, std::vector<int64_t>& out_sizes,
                        int64_t out) {
  if (!input.defined()) throw std::invalid_argument(fmt::format("{}: the input is undefined", who));
  if (input.scalar_type() != at::kFloat) {
    throw std::invalid_argument(
        fmt::format("{}: the input must be float32, got {}", who, c10::toString(input.scalar_type())));
  }
  if (!input.device().is_cpu()) {
    throw std::invalid_argument(fmt::format("{}: the input must be on the CPU, got {}", who, input.device().str()));
  }
  if (input.layout() != at::kStrided) {
    throw std::invalid_argument(fmt::format("{}: the input must be a dense (strided) tensor", who));
  }
  if (input.dim() < 1 || input.size(-1) != in) {
    throw std::invalid_argument(fmt::format("{}: the input must be [..., {}], got {}", who, in, shape_text(input)));
  }
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    throw std::invalid_argument(fmt::format(
        "{}: inference only, but the input {} requires grad; run it under torch::NoGradGuard or pass "
        "input.detach()",
        who, shape_text(input)));
  }
  // A contiguous [batch, in] input as it is (no view to make and undo:
  // at batch 1 those cost as much as a small layer's product).
  if (input.dim() == 2 && input.is_contiguous()) return input;
  out_sizes = input.sizes().vec();
  out_sizes.back() = out;
  const int64_t batch = c10::multiply_integers(input.sizes().begin(), input.sizes().end() - 1);
  return input.reshape({batch, in}).contiguous();
}

// t's data, through a contiguous copy kept in `keep` when t is not.
template <class T>
const T* contiguous_data(const at::Tensor& t, at::Tensor& keep) {
  if (t.is_contiguous()) return t.data_ptr<T>();
  keep = t.contiguous();
  return keep.data_ptr<T>();
}

// The weight [out, in] as blocks [out/br, in/bc, br, bc].
at::Tensor blocked(const at::Tensor& weight, int64_t br, int64_t bc) {
  const int64_t out = weight.size(0), in = weight.size(1);
  return weight.reshape({out / br, br, in / bc, bc}).permute({0, 2, 1, 3}).contiguous();
}

// Whether every block of br x bc is all zero or all nonzero.
bool zeros_in_whole_blocks(const at::Tensor& weight, int64_t br, int64_t bc) {
  if (weight.size(0) % br != 0 || weight.size(1) % bc != 0) return false;
  const at::Tensor nonzero = blocked(weight, br, bc).ne(0).flatten(2);
  return at::equal(nonzero.any(2), nonzero.all(2));
}

}  // namespace

const char* sparse_format_name(SparseFormat format) {
  switch (format) {
    case SparseFormat::Auto: return "auto";
    case SparseFormat::CSR: return "csr";
    case SparseFormat::BlockCSR: return "block_csr";
  }
  return "?";
}

SparseLinearImpl::SparseLinearImpl(const torch::nn::Linear& dense, SparseLinearOptions options_)
    : options(options_) {
  if (dense.is_empty()) throw std::invalid_argument("SparseLinear: the Linear is empty (a null holder)");
  build(dense->weight, dense->bias);
}

SparseLinearImpl::SparseLinearImpl(const at::Tensor& weight, const at::Tensor& bias, SparseLinearOptions options_)
    : options(options_) {
  build(weight, bias);
}

void SparseLinearImpl::build(const at::Tensor& weight_in, const at::Tensor& bias_in) {
  static const char* who = "SparseLinear";
  check_weight(who, weight_in, bias_in);
  at::NoGradGuard no_grad;
  const at::Tensor weight = weight_in.detach().contiguous();
  out_ = weight.size(0);
  in_ = weight.size(1);
  const auto shape = options.block_shape();
  const bool none = shape[0] == 0 && shape[1] == 0;
  const bool csr_shape = shape[0] == 1 && shape[1] == 1;
  const bool block_shape = (shape[0] == 1 && shape[1] == 4) || (shape[0] == 4 && shape[1] == 1);
  if (!none && !csr_shape && !block_shape) {
    throw std::invalid_argument(fmt::format(
        "SparseLinear: block_shape must be {{0, 0}} (detect), {{1, 1}}, {{1, 4}} or {{4, 1}}, got {}",
        shape_pair(shape)));
  }
  std::array<int64_t, 2> use = {1, 1};
  switch (options.format()) {
    case SparseFormat::CSR:
      if (block_shape) {
        throw std::invalid_argument(fmt::format(
            "SparseLinear: format CSR takes block_shape {{0, 0}} or {{1, 1}}, got {}", shape_pair(shape)));
      }
      break;
    case SparseFormat::BlockCSR:
      if (csr_shape) {
        throw std::invalid_argument("SparseLinear: format BlockCSR takes block_shape {0, 0}, {1, 4} or {4, 1}, got {1, 1}");
      }
      [[fallthrough]];
    case SparseFormat::Auto:
      if (block_shape) {
        use = shape;
      } else if (none) {
        if (zeros_in_whole_blocks(weight, 4, 1)) {
          use = {4, 1};
        } else if (zeros_in_whole_blocks(weight, 1, 4)) {
          use = {1, 4};
        } else if (options.format() == SparseFormat::BlockCSR) {
          if (in_ % 4 == 0) {
            use = {1, 4};
          } else if (out_ % 4 == 0) {
            use = {4, 1};
          } else {
            throw std::invalid_argument(fmt::format(
                "SparseLinear: format BlockCSR needs out or in features divisible by 4, got a weight {}",
                shape_text(weight)));
          }
        }
      }
      break;
  }
  if (out_ % use[0] != 0 || in_ % use[1] != 0) {
    throw std::invalid_argument(fmt::format("SparseLinear: block_shape {} does not tile the weight {}",
                                            shape_pair(use), shape_text(weight)));
  }
  block_ = use;
  format_ = use[0] * use[1] == 1 ? SparseFormat::CSR : SparseFormat::BlockCSR;
  const int64_t br = use[0], bc = use[1];
  const at::Tensor blocks = blocked(weight, br, bc);  // [nbr, nbc, br, bc]
  const at::Tensor keep = blocks.ne(0).flatten(2).any(2);
  const int64_t nbr = out_ / br;
  offsets_ = at::zeros({nbr + 1}, at::kLong);
  if (nbr > 0) offsets_.slice(0, 1).copy_(keep.sum(1, false, at::kLong).cumsum(0));
  cols_ = (keep.nonzero().select(1, 1) * bc).to(at::kInt).contiguous();
  values_ = blocks.masked_select(keep.view({keep.size(0), keep.size(1), 1, 1}).expand_as(blocks)).contiguous();
  nnz_ = weight.ne(0).sum().item<int64_t>();
  has_bias_ = bias_in.defined();
  bias_ = has_bias_ ? bias_in.detach().to(at::kFloat).contiguous().clone() : at::zeros({out_}, at::kFloat);
  reset();
}

void SparseLinearImpl::reset() {
  // Nothing to re-initialize: the buffers are registered once (again in a
  // clone, whose copy constructor shares the original's tensors: fresh ones).
  if (named_buffers(false).contains("values")) return;
  offsets_ = register_buffer("offsets", offsets_.clone());
  cols_ = register_buffer("cols", cols_.clone());
  values_ = register_buffer("values", values_.clone());
  bias_ = register_buffer("bias", bias_.clone());
}

void SparseLinearImpl::pretty_print(std::ostream& stream) const {
  stream << fmt::format("sparsity::SparseLinear(in_features={}, out_features={}, format={}, block_shape={}, nnz={}, "
                        "sparsity={:.4f}, bias={})",
                        in_, out_, sparse_format_name(format_), shape_pair(block_), nnz_, weight_sparsity(),
                        has_bias_ ? "true" : "false");
}

int64_t SparseLinearImpl::stored_values() const { return values_.numel(); }

double SparseLinearImpl::weight_sparsity() const {
  const int64_t total = in_ * out_;
  return total == 0 ? 0.0 : 1.0 - static_cast<double>(nnz_) / static_cast<double>(total);
}

at::Tensor SparseLinearImpl::forward(const at::Tensor& input) {
  std::vector<int64_t> sizes;
  const at::Tensor x = input_matrix("SparseLinear", input, in_, sizes, out_);
  at::Tensor y = at::empty({x.size(0), out_}, x.options());
  // The buffers are contiguous unless someone replaced them (contiguous()
  // goes through the dispatcher: at batch 1 that shows).
  at::Tensor keep[4];
  detail::BlockView view;
  view.br = static_cast<int>(block_[0]);
  view.bc = static_cast<int>(block_[1]);
  view.in = in_;
  view.out = out_;
  view.offsets = contiguous_data<int64_t>(offsets_, keep[0]);
  view.cols = contiguous_data<int32_t>(cols_, keep[1]);
  view.values = contiguous_data<float>(values_, keep[2]);
  const float* bias = has_bias_ ? contiguous_data<float>(bias_, keep[3]) : nullptr;
  detail::sparse_linear_forward(view, x.data_ptr<float>(), x.size(0), bias, y.data_ptr<float>());
  return sizes.empty() ? y : y.view(sizes);
}

at::Tensor SparseLinearImpl::dense_weight() const {
  at::Tensor weight = at::zeros({out_, in_}, at::kFloat);
  const at::Tensor offsets = offsets_.contiguous(), cols = cols_.contiguous(), values = values_.contiguous();
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int32_t* col = cols.data_ptr<int32_t>();
  const float* val = values.data_ptr<float>();
  float* w = weight.data_ptr<float>();
  const int64_t br = block_[0], bc = block_[1];
  for (int64_t r = 0; r < out_ / br; ++r) {
    for (int64_t k = off[r]; k < off[r + 1]; ++k) {
      for (int64_t i = 0; i < br; ++i) {
        for (int64_t j = 0; j < bc; ++j) w[(r * br + i) * in_ + col[k] + j] = val[k * br * bc + i * bc + j];
      }
    }
  }
  return weight;
}

SparseInputLinearImpl::SparseInputLinearImpl(const torch::nn::Linear& dense) {
  if (dense.is_empty()) throw std::invalid_argument("SparseInputLinear: the Linear is empty (a null holder)");
  build(dense->weight, dense->bias);
}

SparseInputLinearImpl::SparseInputLinearImpl(const at::Tensor& weight, const at::Tensor& bias) { build(weight, bias); }

void SparseInputLinearImpl::build(const at::Tensor& weight, const at::Tensor& bias) {
  check_weight("SparseInputLinear", weight, bias);
  at::NoGradGuard no_grad;
  out_ = weight.size(0);
  in_ = weight.size(1);
  const int64_t padded = (out_ + 7) / 8 * 8;
  weight_t_ = at::zeros({in_ * padded}, at::kFloat);
  const at::Tensor w = weight.detach().contiguous();
  const float* src = w.data_ptr<float>();
  float* dst = weight_t_.data_ptr<float>();
  for (int64_t o = 0; o < out_; ++o) {
    const int64_t c0 = o / detail::kInputTile * detail::kInputTile;
    const int64_t width = std::min(detail::kInputTile, padded - c0);
    float* panel = dst + c0 * in_ + (o - c0);
    for (int64_t i = 0; i < in_; ++i) panel[i * width] = src[o * in_ + i];
  }
  bias_ = at::zeros({padded}, at::kFloat);
  has_bias_ = bias.defined();
  if (has_bias_) bias_.narrow(0, 0, out_).copy_(bias.detach());
  reset();
}

void SparseInputLinearImpl::reset() {
  if (named_buffers(false).contains("weight_t")) return;
  weight_t_ = register_buffer("weight_t", weight_t_.clone());
  bias_ = register_buffer("bias", bias_.clone());
}

void SparseInputLinearImpl::pretty_print(std::ostream& stream) const {
  stream << fmt::format("sparsity::SparseInputLinear(in_features={}, out_features={}, bias={})", in_, out_,
                        has_bias_ ? "true" : "false");
}

at::Tensor SparseInputLinearImpl::forward(const at::Tensor& input) {
  std::vector<int64_t> sizes;
  const at::Tensor x = input_matrix("SparseInputLinear", input, in_, sizes, out_);
  const at::Tensor wt = weight_t_.contiguous(), bias = bias_.contiguous();
  const int64_t padded = bias.size(0);
  at::Tensor y = at::empty({x.size(0), padded}, x.options());
  detail::input_sparse_forward(x.data_ptr<float>(), x.size(0), in_, wt.data_ptr<float>(), padded,
                               bias.data_ptr<float>(), y.data_ptr<float>());
  if (padded != out_) y = y.narrow(1, 0, out_).contiguous();
  return sizes.empty() ? y : y.view(sizes);
}

at::Tensor SparseInputLinearImpl::dense_weight() const {
  at::Tensor weight = at::empty({out_, in_}, at::kFloat);
  const int64_t padded = bias_.size(0);
  const at::Tensor wt = weight_t_.contiguous();
  const float* src = wt.data_ptr<float>();
  float* dst = weight.data_ptr<float>();
  for (int64_t o = 0; o < out_; ++o) {
    const int64_t c0 = o / detail::kInputTile * detail::kInputTile;
    const int64_t width = std::min(detail::kInputTile, padded - c0);
    const float* panel = src + c0 * in_ + (o - c0);
    for (int64_t i = 0; i < in_; ++i) dst[o * in_ + i] = panel[i * width];
  }
  return weight;
}

void set_sparse_kernel_isa(SparseKernelIsa isa) { detail::set_sparse_isa(static_cast<int>(isa)); }

SparseKernelIsa sparse_kernel_isa() { return static_cast<SparseKernelIsa>(detail::sparse_isa()); }

SparseKernelIsa sparse_kernel_isa_supported() { return static_cast<SparseKernelIsa>(detail::sparse_isa_supported()); }

void set_portable_sparse_kernels(bool portable) {
  set_sparse_kernel_isa(portable ? SparseKernelIsa::Portable : SparseKernelIsa::Avx512);
}

bool sparse_kernels_use_avx2() { return detail::sparse_avx2_enabled(); }

}  // namespace sparsity
