#pragma once

// The DataNormSparsifier's default case, (1, 4) blocks of float zeroed whole,
// with AVX2 when the CPU has it: one pass over a row of blocks that computes
// the norms and keys, writes the mask of the blocks outside the sampled
// window, and records those inside it. Bit-identical to the portable path.

#include <cstdint>

namespace sparsity::detail {

/// Whether the AVX2 row kernel may run: the CPU has AVX2 and the
/// environment variable SPARSITY_PORTABLE_KERNELS is unset, empty or "0"
/// (set, it makes tests and benchmarks run the portable code).
bool avx2_rows_enabled();

/// One row of `blocks` (1, 4) blocks of `row` (4 * blocks floats): block b's
/// norm is (((|x0| + |x1|) + |x2|) + |x3|) * 0.25 (squares instead of |x|
/// when `l2`), its key the order key of that norm. Writes mask[4b..4b+3] =
/// (key >= split); appends (key, first_block + b) to keys/block_ids at
/// `*used` when key - lo <= width (unsigned), and may write up to 8 entries
/// past the last it appends. Returns how many keys are below split.
/// Call only when avx2_rows_enabled().
int64_t avx2_row_of_4_blocks(const float* row, int64_t blocks, bool l2, uint32_t split, uint32_t lo, uint32_t width,
                             uint8_t* mask, uint32_t* keys, uint32_t* block_ids, uint32_t first_block,
                             int64_t* used);

}  // namespace sparsity::detail
