#pragma once
// Sparse CPU inference for Linear layers: the weight held as CSR or block-CSR
// and multiplied by AVX2+FMA kernels (portable ones on other CPUs).

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <iosfwd>

namespace sparsity {

/// How `SparseLinear` holds its weight.
enum class SparseFormat {
  /// Block-CSR when the zeros lie in whole (1, 4) or (4, 1) blocks (or a
  /// block shape is given), else CSR.
  Auto,
  /// Compressed sparse rows, 32-bit column indices: any pattern.
  CSR,
  /// Compressed rows of (1, 4) or (4, 1) blocks; a block with any nonzero is
  /// stored whole (zeros included).
  BlockCSR,
};

/// A block's {rows, columns}.
using BlockShape = std::array<int64_t, 2>;

/// "auto", "csr" or "block_csr".
const char* sparse_format_name(SparseFormat format);

/// Options for `SparseLinear`.
///
/// Example:
/// ```
/// sparsity::SparseLinear a(linear);                                   // detected format
/// sparsity::SparseLinear b(linear, sparsity::SparseLinearOptions().format(sparsity::SparseFormat::CSR));
/// sparsity::SparseLinear c(linear, sparsity::SparseLinearOptions().block_shape({1, 4}));  // (1, 4) blocks
/// ```
///
/// A 2:4 (N:M) weight is best left to the detection (CSR): (1, 4) blocks
/// store it whole and measured up to 2x slower than CSR (bench/README.md);
/// from batch 16 on both are at best even with dense.
struct SparseLinearOptions {
  /// The storage format. `Auto` with `block_shape` {0, 0} detects one (see
  /// `block_shape`); `Auto` with a block shape means BlockCSR of that shape.
  TORCH_ARG(SparseFormat, format) = SparseFormat::Auto;
  /// {0, 0}: detect: (4, 1), then (1, 4), when every zero lies in whole blocks
  /// of that shape (and the weight's sizes divide by it): block-CSR; else CSR
  /// (with `format` BlockCSR: (1, 4) blocks holding the zeros they contain).
  /// Otherwise {1, 4} or {4, 1} (the weight's in_features resp. out_features
  /// must divide by 4); {1, 1} means CSR. Anything else is an
  /// std::invalid_argument.
  TORCH_ARG(BlockShape, block_shape) = {0, 0};
};

/// A Linear layer for inference with a sparse weight: y = x·Wᵀ + b, with W
/// held in CSR or block-CSR form (`SparseLinearOptions`) and multiplied by
/// kernels that skip its zeros: for batches under 8 a gather dot product per
/// output row, from 8 on an axpy of rows of xᵀ into tiles of yᵀ (64 columns;
/// 16 for (4, 1) blocks, whose one load of xᵀ feeds 4 output rows). AVX-512F
/// (that axpy kernel, (1, 4) blocks at batch >= 32 and in_features <= 1024)
/// and AVX2+FMA (the rest) where the CPU has them, else
/// portable C++; `set_sparse_kernel_isa` and SPARSITY_PORTABLE_KERNELS=1
/// choose a lower level. Rows are split over at::parallel_for.
///
/// float32 on CPU only, and inference only: an input that requires grad while
/// GradMode is enabled is an std::invalid_argument, as are other dtypes and
/// devices. The result equals the dense layer's within float rounding (the
/// sums run in another order).
///
/// The weight lives in buffers ("offsets" int64, "cols" int32, "values" and
/// "bias" float32), so `clone()` and the state dict carry it; `reset()`
/// registers them where they are missing (there is nothing to re-initialize).
///
/// Example:
/// ```
/// torch::nn::Linear dense(1024, 1024);
/// // ... train, prune to 90 % zeros ...
/// sparsity::SparseLinear sparse(dense);
/// torch::NoGradGuard no_grad;
/// auto y = sparse(torch::randn({16, 1024}));   // == dense(x) within rounding
/// sparse->format();                             // SparseFormat::CSR (unstructured zeros)
/// ```
class SparseLinearImpl : public torch::nn::Cloneable<SparseLinearImpl> {
 public:
  /// A sparse copy of `dense`'s weight and bias (which must be float32 on
  /// CPU: std::invalid_argument otherwise, as for bad options).
  explicit SparseLinearImpl(const torch::nn::Linear& dense, SparseLinearOptions options = {});
  /// The same from a weight [out, in] and an optional bias [out].
  explicit SparseLinearImpl(const at::Tensor& weight, const at::Tensor& bias = {}, SparseLinearOptions options = {});

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// y = input·Wᵀ + b for input [..., in_features] (any leading dims, any
  /// strides, batch 0 too): a new tensor [..., out_features].
  at::Tensor forward(const at::Tensor& input);

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  /// The weight's nonzeros.
  int64_t nnz() const { return nnz_; }
  /// The values stored: nnz() plus the zeros inside stored blocks.
  int64_t stored_values() const;
  /// The fraction of the weight that is zero, in [0, 1].
  double weight_sparsity() const;
  /// The format in use: CSR or BlockCSR (never Auto).
  SparseFormat format() const { return format_; }
  /// The block shape in use: {1, 1} for CSR, {1, 4} or {4, 1}.
  std::array<int64_t, 2> block_shape() const { return block_; }
  bool has_bias() const { return has_bias_; }
  /// The dense weight [out, in] rebuilt.
  at::Tensor dense_weight() const;
  /// The bias [out] (zeros when the layer had none).
  const at::Tensor& bias() const { return bias_; }

  /// The options as given (format Auto and block_shape {0, 0} stay so).
  SparseLinearOptions options;

 private:
  void build(const at::Tensor& weight, const at::Tensor& bias);

  int64_t in_ = 0;
  int64_t out_ = 0;
  int64_t nnz_ = 0;
  bool has_bias_ = false;
  SparseFormat format_ = SparseFormat::CSR;
  std::array<int64_t, 2> block_ = {1, 1};
  at::Tensor offsets_;
  at::Tensor cols_;
  at::Tensor values_;
  at::Tensor bias_;
};

/// A `SparseLinearImpl` holder: `SparseLinear sparse(dense_linear);`.
TORCH_MODULE(SparseLinear);

/// A Linear layer for inputs that are mostly zero (the output of a
/// `LossyHardSparsifier`, a ReLU): per sample it lists the nonzero inputs and
/// adds up only their rows of Wᵀ (the dense weight, transposed once and held
/// as the 1-D buffer "weight_t": panels of 64 output columns, each [in, 64],
/// out rounded up to 8), in AVX2 registers 64 outputs at a time, one panel
/// over the whole batch before the next. Its cost falls with the input's sparsity, whatever the
/// weight's. Same rules as `SparseLinear`: float32 CPU, inference only,
/// input [..., in_features], equal to the dense layer within rounding.
///
/// Example:
/// ```
/// torch::nn::Sequential net(torch::nn::Linear(784, 1024),
///                           sparsity::LossyHardSparsifier(sparsity::LossySparsifierOptions().eps(0.5)),
///                           sparsity::SparseInputLinear(torch::nn::Linear(1024, 10)));
/// ```
class SparseInputLinearImpl : public torch::nn::Cloneable<SparseInputLinearImpl> {
 public:
  /// Copies `dense`'s weight and bias (float32 on CPU, else std::invalid_argument).
  explicit SparseInputLinearImpl(const torch::nn::Linear& dense);
  explicit SparseInputLinearImpl(const at::Tensor& weight, const at::Tensor& bias = {});

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// y = input·Wᵀ + b, skipping each sample's zero inputs.
  at::Tensor forward(const at::Tensor& input);

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  /// The dense weight [out, in].
  at::Tensor dense_weight() const;

 private:
  void build(const at::Tensor& weight, const at::Tensor& bias);

  int64_t in_ = 0;
  int64_t out_ = 0;
  bool has_bias_ = false;
  at::Tensor weight_t_;
  at::Tensor bias_;
};

/// A `SparseInputLinearImpl` holder.
TORCH_MODULE(SparseInputLinear);

/// The kernels SparseLinear and SparseInputLinear run on: portable C++,
/// AVX2+FMA, or AVX-512F (used where it measured faster: SparseLinear's
/// batch kernel for (1, 4) blocks at batch >= 32 and in_features <= 1024, 16
/// columns a register; AVX2 for the rest).
enum class SparseKernelIsa { Portable = 0, Avx2 = 1, Avx512 = 2 };
/// Asks for at most `isa` (default Avx512); what runs is that capped at what
/// the CPU has (`sparse_kernel_isa_supported()`), and Portable while the
/// environment variable SPARSITY_PORTABLE_KERNELS is set to anything but ""
/// or "0". Process-wide; meant for tests and benchmarks.
void set_sparse_kernel_isa(SparseKernelIsa isa);
/// What runs now (the request capped as above).
SparseKernelIsa sparse_kernel_isa();
/// The most this CPU has.
SparseKernelIsa sparse_kernel_isa_supported();
/// set_sparse_kernel_isa(Portable) (true) or (Avx512) (false, the default).
void set_portable_sparse_kernels(bool portable);
/// Whether the AVX2+FMA (or AVX-512) kernels run now.
bool sparse_kernels_use_avx2();

}  // namespace sparsity
