#pragma once
// The kernels behind SparseLinear and SparseInputLinear (internal).
//
// A weight [out, in] is held as blocks of br x bc (1x1 is CSR, 1x4 and 4x1
// the block formats): block row r covers output rows br*r .. br*r + br - 1;
// its blocks are offsets[r] .. offsets[r+1] - 1, block k starting at input
// column cols[k], its br*bc values row-major at values + k*br*bc.

#include <cstdint>

namespace sparsity::detail {

struct BlockView {
  int br = 1;
  int bc = 1;
  int64_t in = 0;
  int64_t out = 0;
  const int64_t* offsets = nullptr;  // out / br + 1
  const int32_t* cols = nullptr;     // one per block
  const float* values = nullptr;     // br * bc per block
  int64_t block_rows() const { return out / br; }
};

/// The kernels that run: 0 portable, 1 AVX2+FMA, 2 AVX-512F for the
/// transposed kernel's CSR and (1, 4) rows (AVX2 elsewhere). The requested level (set_sparse_isa,
/// default 2) capped at what the CPU has; 0 where SPARSITY_PORTABLE_KERNELS
/// is set to anything but "" or "0".
int sparse_isa();
void set_sparse_isa(int isa);
int sparse_isa_supported();
inline bool sparse_avx2_enabled() { return sparse_isa() >= 1; }

/// y [batch, out] = x [batch, in] times the weight transposed, plus bias
/// (may be null). Picks the small-batch (gather) or the transposed (axpy)
/// kernels, the latter over batch tiles or over rows, and runs over
/// at::parallel_for.
void sparse_linear_forward(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y);

/// Batches from this size on go through the transposed kernel.
inline constexpr int64_t kTransposedBatch = 8;

/// The column panels of SparseInputLinear's Wᵀ: panel t holds output columns
/// [t*kInputTile, t*kInputTile + width_t) as a contiguous [in, width_t]
/// block at offset t*kInputTile*in.
inline constexpr int64_t kInputTile = 64;

/// y [batch, out_padded] = x [batch, in] times Wᵀ (in panels, above) plus
/// bias [out_padded], skipping the zeros of x. out_padded is a multiple of 8.
void input_sparse_forward(const float* x, int64_t batch, int64_t in, const float* wt, int64_t out_padded,
                          const float* bias, float* y);

// The row-range kernels (rows in block rows), portable and AVX2.
void small_rows_portable(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y,
                         int64_t r0, int64_t r1);
void small_rows_avx2(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y, int64_t r0,
                     int64_t r1);
// The blocks of block row r that a transposed kernel takes: begin[r*stride]
// to end[r*stride] (the row's blocks whose columns fall in one chunk of the
// inputs); with `accumulate` they add to yt, else they start from the bias.
// xt's first row is input column col0 (a chunk packed on its own).
struct RowRanges {
  const int64_t* begin;
  const int64_t* end;
  int64_t stride;
  bool accumulate;
  int64_t col0;
};
// xt [in - col0, bp] (bp a multiple of 8), yt [out, bp]; columns [c0, c1) of both.
void transposed_rows_portable(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                              int64_t c1, const float* bias, float* yt, int64_t r0, int64_t r1);
void transposed_rows_avx2(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                          int64_t c1, const float* bias, float* yt, int64_t r0, int64_t r1);
// CSR and (1, 4) blocks (br == 1): AVX-512 measured faster than AVX2 for
// both in the tiled path (bench/README.md); (4, 1) blocks stay on AVX2.
void transposed_rows_avx512(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                            int64_t c1, const float* bias, float* yt, int64_t r0, int64_t r1);
// One sample: y [c0, c1) (multiples of 8) from the nonzero inputs `nz` (n of them).
void input_sparse_cols_portable(const float* x, const int32_t* nz, int64_t n, const float* wt, int64_t out_padded,
                                const float* bias, float* y, int64_t c0, int64_t c1);
void input_sparse_cols_avx2(const float* x, const int32_t* nz, int64_t n, const float* wt, int64_t out_padded,
                            const float* bias, float* y, int64_t c0, int64_t c1);

// dst [cols, dst_stride] = src [rows, cols] transposed (8x8 AVX2 blocks).
void transpose_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst,
                    int64_t dst_stride);

}  // namespace sparsity::detail
