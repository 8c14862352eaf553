#pragma once

// Compact model files: the state of a module (parameters and buffers) with
// each floating tensor stored as a bitmask of its nonzeros plus their values.
// The file is a plain dict pickled in LibTorch's format (Python's torch.load
// reads it as tensors); docs/sparse_file.md has the layout and a Python decoder.

#include <torch/arg.h>

#include <string>

namespace torch {
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

namespace sparsity {

/// How `save_sparse` stores the values of floating tensors.
enum class SparseValueType {
  /// Exact: each tensor's values in its own dtype (float32, float64, float16,
  /// bfloat16), bit for bit: NaN payloads, infinities and denormals come
  /// back as they were. The one exception is the sign of zero: -0.0 (what a
  /// mask leaves on a pruned negative weight) is a zero and comes back +0.0.
  Float32,
  /// IEEE half precision: round to nearest even, relative error <= 2^-11 for
  /// normal values, absolute error <= 2^-25 below 2^-14. A finite value of
  /// magnitude > 65504 (which would become inf) is std::invalid_argument.
  Float16,
  /// Symmetric int8 per row (a row is `t[i]` for a tensor of 2 or more
  /// dimensions, the whole tensor otherwise): scale = max|row| / 127,
  /// code = round(x / scale) in [-127, 127], value = code * scale, so
  /// |error| <= max|row| / 254 (plus float32 rounding of the product). A
  /// non-finite value is std::invalid_argument.
  Int8,
};

/// "float32", "float16" or "int8": the file's "value_type" key.
const char* to_string(SparseValueType type);

/// Options for `save_sparse`.
///
/// Example:
/// ```
/// sparsity::save_sparse(*model, "model.sparse.pt",
///                       sparsity::SparseSaveOptions().value_type(sparsity::SparseValueType::Int8));
/// ```
struct SparseSaveOptions {
  /// The encoding of the values of floating tensors. Zeros are exact in every
  /// type: the mask holds them, not the values.
  TORCH_ARG(SparseValueType, value_type) = SparseValueType::Float32;
};

/// Writes the state of `module` (`named_parameters()` and `named_buffers()`,
/// recursive, dotted names; undefined tensors are skipped) to `path` as a
/// compact file (docs/sparse_file.md):
///
/// - a floating tensor is a bitmask of its nonzero elements (`x != 0`, so
///   -0.0 is a zero and NaN is not; element i of the row-major flattened tensor is bit i % 8 of byte
///   i / 8) plus those elements' values in `options.value_type()`, or its
///   values densely where that is smaller;
/// - any other tensor (integer and bool buffers) is stored as it is.
///
/// All values of one stored dtype share one flat storage (and all masks
/// another), each entry a view of it, so the file's overhead is about 1.2 KB
/// per file plus about 80 bytes per tensor. The write is atomic and the
/// file carries a checksum (`save_state_file`). Throws std::invalid_argument
/// naming the tensor for a value the value type cannot hold, and
/// std::runtime_error naming the path when it cannot be written.
///
/// Example:
/// ```
/// torch::nn::Linear layer(784, 128);
/// sparsity::save_sparse(*layer, "layer.sparse.pt");
/// sparsity::load_sparse(*layer, "layer.sparse.pt");
/// ```
void save_sparse(const torch::nn::Module& module, const std::string& path, SparseSaveOptions options = {});

/// Reads a file written by `save_sparse` into the existing parameters and
/// buffers of `module` (copied in place under no-grad; devices are kept).
/// Everything is read, decoded and checked first, so on any error the module
/// is unchanged: a missing, truncated or corrupt file and a file that is not a
/// compact file are std::runtime_error naming the path; a tensor the module
/// has and the file lacks, a tensor the file has and the module lacks, and a
/// shape or dtype that differs from the module's are std::invalid_argument
/// naming the path, the tensor and both shapes or dtypes.
void load_sparse(torch::nn::Module& module, const std::string& path);

}  // namespace sparsity
