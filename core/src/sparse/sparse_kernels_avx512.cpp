// The AVX-512F kernels of the transposed (batch >= 8) path, compiled for that
// target whatever the build's flags (the dispatcher checks the CPU first).
// A tile row of 64 columns is 4 zmm registers; each row runs its nonzeros two
// at a time into two sets of accumulators (summed at the end) so that twice
// as many independent FMA chains hide the latency. CSR and (1, 4) blocks come
// here from the tiled path, and (1, 4) blocks at batch >= 32 with in <= 1024
// from the row-parallel one (see sparse_kernels.cpp, bench/README.md).
#include <immintrin.h>

#include <algorithm>

#include "sparse_kernels.h"

#define SPARSITY_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

namespace sparsity::detail {

namespace {

// Columns [16*j, 16*j + 16) of a tile row, the last one (j == NV - 1) masked
// to 8 columns when `half`.
template <int NV, bool H>
SPARSITY_AVX512 inline __m512 load_col(const float* p, int j, __mmask16 last) {
  return H && j == NV - 1 ? _mm512_maskz_loadu_ps(last, p + 16 * j) : _mm512_loadu_ps(p + 16 * j);
}

template <int NV, bool H>
SPARSITY_AVX512 inline void store_col(float* p, int j, __mmask16 last, __m512 v) {
  if (H && j == NV - 1) {
    _mm512_mask_storeu_ps(p + 16 * j, last, v);
  } else {
    _mm512_storeu_ps(p + 16 * j, v);
  }
}

// Rows of 1x1 (BC 1) or 1x4 (BC 4) blocks over NV zmm of columns.
template <int NV, int BC, bool H>
SPARSITY_AVX512 void row_tile(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                              __mmask16 last, const float* bias, float* yt, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    __m512 a[NV], b[NV];
    float* yo = yt + r * bp + c0;
    if (rr.accumulate) {
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) a[j] = load_col<NV, H>(yo, j, last);
    } else {
      const __m512 bv = _mm512_set1_ps(bias != nullptr ? bias[r] : 0.0f);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) a[j] = bv;
    }
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = _mm512_setzero_ps();
    int64_t k = rr.begin[r * rr.stride];
    const int64_t k1 = rr.end[r * rr.stride];
    for (; k + 2 <= k1; k += 2) {
      const float* x0 = xt + (w.cols[k] - rr.col0) * bp + c0;
      const float* x1 = xt + (w.cols[k + 1] - rr.col0) * bp + c0;
#pragma GCC unroll 4
      for (int i = 0; i < BC; ++i) {
        const __m512 v0 = _mm512_set1_ps(w.values[k * BC + i]);
        const __m512 v1 = _mm512_set1_ps(w.values[(k + 1) * BC + i]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
          a[j] = _mm512_fmadd_ps(v0, load_col<NV, H>(x0 + i * bp, j, last), a[j]);
          b[j] = _mm512_fmadd_ps(v1, load_col<NV, H>(x1 + i * bp, j, last), b[j]);
        }
      }
    }
    for (; k < k1; ++k) {
      const float* x0 = xt + (w.cols[k] - rr.col0) * bp + c0;
#pragma GCC unroll 4
      for (int i = 0; i < BC; ++i) {
        const __m512 v0 = _mm512_set1_ps(w.values[k * BC + i]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) a[j] = _mm512_fmadd_ps(v0, load_col<NV, H>(x0 + i * bp, j, last), a[j]);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) store_col<NV, H>(yo, j, last, _mm512_add_ps(a[j], b[j]));
  }
}

template <int NV, int BC>
SPARSITY_AVX512 void row_tile_h(bool half, const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp,
                                int64_t c0, const float* bias, float* yt, int64_t r0, int64_t r1) {
  if (half) {
    row_tile<NV, BC, true>(w, rr, xt, bp, c0, 0x00FF, bias, yt, r0, r1);
  } else {
    row_tile<NV, BC, false>(w, rr, xt, bp, c0, 0xFFFF, bias, yt, r0, r1);
  }
}

}  // namespace

SPARSITY_AVX512 void transposed_rows_avx512(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp,
                                            int64_t c0, int64_t c1, const float* bias, float* yt, int64_t r0,
                                            int64_t r1) {
  // Widths are multiples of 8: nv zmm, the last one half when the width is
  // an odd multiple of 8.
  for (int64_t c = c0; c < c1;) {
    const int64_t left = c1 - c;
    const int64_t width = std::min<int64_t>(64, left);
    const bool half = width % 16 == 8;
    const int nv = static_cast<int>((width + 15) / 16);
    if (w.bc == 4) {
      switch (nv) {
        case 1: row_tile_h<1, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
        case 2: row_tile_h<2, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
        case 3: row_tile_h<3, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
        default: row_tile_h<4, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      }
    } else {
      switch (nv) {
        case 1: row_tile_h<1, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
        case 2: row_tile_h<2, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
        case 3: row_tile_h<3, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
        default: row_tile_h<4, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      }
    }
    c += width;
  }
}

}  // namespace sparsity::detail
