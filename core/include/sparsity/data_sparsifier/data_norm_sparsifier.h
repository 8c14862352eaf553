#pragma once

#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

/// The norm a block's and an element's magnitude is measured with.
enum class Norm {
  L1,  ///< |x|
  L2,  ///< x * x
};

/// "L1" or "L2".
const char* to_string(Norm norm);
/// Parses "L1" or "L2"; anything else is std::invalid_argument naming the value.
Norm norm_from_string(const std::string& text);

/// Options for `DataNormSparsifier`: the defaults of every data group.
///
/// Example:
/// ```
/// DataNormSparsifier sparsifier(DataNormSparsifierOptions()
///                                   .sparsity_level(0.7)
///                                   .sparse_block_shape({1, 4})
///                                   .zeros_per_block(2)
///                                   .norm(Norm::L2));
/// ```
struct DataNormSparsifierOptions {
  /// (height, width).
  using BlockShape = std::array<int64_t, 2>;

  /// The options as the sparsifier's default config: keys `sparsity_level`,
  /// `sparse_block_shape`, `zeros_per_block` (resolved), `norm` ("L1"/"L2").
  /// Throws std::invalid_argument on a bad value.
  Config to_config() const;
  /// Reads those keys (all optional); an unknown key, a wrong type or a bad
  /// value is std::invalid_argument naming it and listing the accepted keys.
  static DataNormSparsifierOptions from_config(const Config& config);

  /// Fraction of blocks to sparsify: round-half-to-even(level * blocks) blocks
  /// with the lowest norm. <= 0 sparsifies none, >= 1 all.
  TORCH_ARG(double, sparsity_level) = 0.5;
  /// (height, width) of the blocks that tile the data from index (0, 0).
  TORCH_ARG(BlockShape, sparse_block_shape) = {1, 4};
  /// Zeros in each sparsified block (its smallest elements); defaults to the
  /// block size, i.e. whole blocks are zeroed.
  TORCH_ARG(std::optional<int64_t>, zeros_per_block) = std::nullopt;
  TORCH_ARG(Norm, norm) = Norm::L1;
};

/// Zeroes the blocks of data with the lowest mean magnitude. The C++
/// counterpart of `torch.ao.pruning`'s `DataNormSparsifier`, with the same masks
/// bit for bit on 1-D and 2-D data, and these improvements (see
/// docs/data_sparsifier.md): masks keep the data's shape (1-D data and (r, 1)
/// columns included), N-D data is treated as (dim 0, product of the others),
/// ties between equal norms are broken by the lowest index, and the mask is
/// computed per block with a k-th value selection instead of full sorts.
///
/// Every option is also a per-data config key, so `add_data(name, t,
/// Config().set("sparsity_level", 0.9))` sparsifies one tensor more.
class DataNormSparsifier : public BaseDataSparsifier {
 public:
  explicit DataNormSparsifier(DataNormSparsifierOptions options = {});

 protected:
  void update_mask(const std::string& name, const at::Tensor& data, const Config& config) override;
  void validate_data(const std::string& name, const at::Tensor& data,
                     const Config& config) const override;

 private:
  // step()'s scratch memory (a few percent of the largest data), kept so that
  // later steps do not fault in fresh pages.
  std::vector<unsigned char> step_workspace_;
};

}  // namespace sparsity
