#pragma once

// The DataNormSparsifier's mask rule, on raw memory.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace sparsity::detail {

struct BlockNormMaskParams {
  int64_t block_height = 1;
  int64_t block_width = 4;
  int64_t zeros_per_block = 4;
  double sparsity_level = 0.5;
  bool l2 = false;  ///< magnitude x*x instead of |x|
};

/// Writes into `mask` (contiguous uint8, `data`'s numel) the mask of `data`
/// (float or double, contiguous CPU, viewed as rows x cols):
/// 1. block norms: mean magnitude over each block's elements inside the data;
/// 2. the round-half-even(level * blocks) blocks of lowest norm are selected
///    (NaN norms count as the largest; equal norms go by lowest block index);
/// 3. in each selected block the `zeros_per_block` smallest elements (same
///    order, positions past the data's edge counting as NaN) get 0, all else 1.
/// `workspace` is scratch memory kept by the caller from call to call (a few
/// percent of the data), so that a step does not fault in fresh pages.
void block_norm_mask(const at::Tensor& data, int64_t rows, int64_t cols,
                     const BlockNormMaskParams& params, at::Tensor& mask,
                     std::vector<unsigned char>& workspace);

/// Calls `visit(keys, n)` with the order keys of the blocks of `data` (as
/// block_norm_mask takes it, and with the same block norms), a run of
/// consecutive blocks at a time, in block index order (block rows top to
/// bottom, each left to right), one call after another from the calling
/// thread. A key is the norm widened to double, as a uint64 whose unsigned
/// order is the norms' order (equal norms, equal keys; NaN the largest).
/// `buffer` holds the keys of one call: about 2^16 of them, or one block row
/// when rows are longer and cannot be cut.
void visit_block_norm_keys(const at::Tensor& data, int64_t rows, int64_t cols, const BlockNormMaskParams& params,
                           std::vector<uint64_t>& buffer, const std::function<void(const uint64_t*, int64_t)>& visit);

/// round-half-to-even(level * num_blocks) clamped to [0, num_blocks]: the
/// number of blocks a level selects (Python's `round`, as the reference).
int64_t blocks_to_select(double sparsity_level, int64_t num_blocks);

}  // namespace sparsity::detail
