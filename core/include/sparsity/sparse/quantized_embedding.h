#pragma once

// Sparse, quantized embedding tables: the C++ counterpart of PyTorch's
// post_training_sparse_quantize (torch.ao.sparsity._experimental.data_sparsifier
// .quantization_utils) and an EmbeddingBag that reads the uint8 table directly.
// docs/sparse_file.md, "Embedding tables", has the formats and error bounds.

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/options/embedding.h>
#include <torch/nn/pimpl.h>

#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sparsity {

class BaseDataSparsifier;

/// The zero point of each row of a quantized table.
enum class ZeroPointKind {
  /// The reference's (`float_qparams_weight_only_qconfig`): scale =
  /// (max - min) / 255 of the row, zero point = -min / scale, a float. 0.0 is
  /// then in general not representable: a pruned entry comes back as up to
  /// scale / 2 away from 0.
  Float,
  /// Ours (the default): the range [min(row min, 0), max(row max, 0)], scale =
  /// its width / 255, zero point = round(-lo / scale), an integer code. 0.0 is
  /// the code `zero_point`, so pruned entries come back exactly 0.
  Integer,
};

/// A table quantized per row to uint8: value = (code - zero_point[row]) * scale[row].
///
/// Example:
/// ```
/// auto table = sparsity::QuantizedTable::quantize(torch::randn({1000, 64}));
/// at::Tensor approx = table.dequantize();  // |error| <= table.scales / 2, per row
/// ```
struct QuantizedTable {
  /// uint8 [rows, dim].
  at::Tensor codes;
  /// float32 [rows]; a row whose range is below float32's epsilon gets 1.
  at::Tensor scales;
  /// float32 [rows]: integer-valued in [0, 255] for ZeroPointKind::Integer.
  at::Tensor zero_points;

  /// Quantizes a 2-D floating table (std::invalid_argument naming its shape
  /// otherwise, or for a non-finite value). |error| <= scale / 2 for every
  /// element (plus float32 rounding).
  static QuantizedTable quantize(const at::Tensor& table, ZeroPointKind kind = ZeroPointKind::Integer);
  /// Quantizes `table` with these rows' scales and zero points (the
  /// reference's requantization when quantizing first).
  QuantizedTable requantize(const at::Tensor& table) const;
  /// A float32 [rows, dim] copy: (code - zero_point) * scale.
  at::Tensor dequantize() const;
  int64_t rows() const { return codes.size(0); }
  int64_t dim() const { return codes.size(1); }
};

/// Options for `post_training_sparse_quantize`.
///
/// Example:
/// ```
/// sparsity::SparseQuantizeOptions().sparsify_first(false).select_embeddings({"user_bag"});
/// ```
struct SparseQuantizeOptions {
  /// true: sparsify the float table, then quantize it. false: quantize, sparsify
  /// the dequantized table, requantize it with the first scales and zero points.
  TORCH_ARG(bool, sparsify_first) = true;
  /// The dotted names of the Embedding / EmbeddingBag submodules to process;
  /// none: all of them.
  TORCH_ARG(std::optional<std::vector<std::string>>, select_embeddings) = std::nullopt;
  TORCH_ARG(ZeroPointKind, zero_point) = ZeroPointKind::Integer;
};

/// Sparsifies and quantizes the weights of the `torch::nn::Embedding` and
/// `torch::nn::EmbeddingBag` submodules of `model` (found recursively; an
/// embedding's own children are not searched), as the reference does: each
/// weight is added to `sparsifier` under its dotted name with '.' replaced by
/// '_', then `step()` and `squash_mask()`; the weights are quantized per row to
/// uint8 before (`sparsify_first(false)`) or after. Returns the quantized
/// tables by dotted module name, in the model's order. With `sparsify_first`
/// the model's float weights are left sparsified in place (the squash writes
/// them), otherwise unchanged. An unknown or non-embedding name in
/// `select_embeddings`, and a sparsifier that already holds one of the data
/// names, are std::invalid_argument naming it.
///
/// Example:
/// ```
/// sparsity::DataNormSparsifier sparsifier(sparsity::DataNormSparsifierOptions().sparsity_level(0.8));
/// auto tables = sparsity::post_training_sparse_quantize(*model, sparsifier);
/// sparsity::QuantizedEmbeddingBag bag(tables.at(0).second, torch::nn::EmbeddingBagOptions(0, 0).mode(torch::kSum));
/// ```
std::vector<std::pair<std::string, QuantizedTable>> post_training_sparse_quantize(
    torch::nn::Module& model, BaseDataSparsifier& sparsifier, const SparseQuantizeOptions& options = {});

/// An `EmbeddingBag` over a `QuantizedTable`: it dequantizes the rows it
/// looks up, one at a time, never the whole table. Of the options it uses
/// `mode` (sum, mean, max), `include_last_offset` and `padding_idx`; the table
/// gives the sizes. The table is registered as the buffers "codes", "scales"
/// and "zero_points" (about a quarter of the float table's bytes).
///
/// Example:
/// ```
/// sparsity::QuantizedEmbeddingBag bag(sparsity::QuantizedTable::quantize(torch::randn({100, 16})),
///                                     torch::nn::EmbeddingBagOptions(100, 16).mode(torch::kSum));
/// auto out = bag(torch::tensor({1, 2, 4, 5, 4, 3, 2, 9}), torch::tensor({0, 4}));  // [2, 16]
/// ```
class QuantizedEmbeddingBagImpl : public torch::nn::Cloneable<QuantizedEmbeddingBagImpl> {
 public:
  /// std::invalid_argument when the table's parts disagree in shape or dtype.
  explicit QuantizedEmbeddingBagImpl(QuantizedTable table, torch::nn::EmbeddingBagOptions options = {0, 0});

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// As `torch::nn::EmbeddingBag::forward`: `input` 2-D [bags, n] (each row a
  /// bag; `offsets` undefined), or 1-D with 1-D `offsets` (bag b is
  /// input[offsets[b] : offsets[b + 1]]). int64 or int32 indices.
  /// `per_sample_weights` (input's shape, floating) only in sum mode. Returns
  /// float32 [bags, dim]; an empty bag gives zeros. Indices out of range,
  /// offsets that are not increasing from 0, and bad shapes are
  /// std::invalid_argument naming the value.
  at::Tensor forward(const at::Tensor& input, const at::Tensor& offsets = {},
                     const at::Tensor& per_sample_weights = {});

  /// The table (views of the buffers).
  QuantizedTable table() const { return {codes, scales, zero_points}; }

  torch::nn::EmbeddingBagOptions options;
  at::Tensor codes, scales, zero_points;
};

/// A `QuantizedEmbeddingBagImpl` holder.
TORCH_MODULE(QuantizedEmbeddingBag);

}  // namespace sparsity
