// The AVX-512F kernels of the transposed (batch >= 8) path, compiled for that
// target whatever the build's flags (the dispatcher checks the CPU first).
// A tile row of 64 columns is 4 zmm registers; each row runs its nonzeros two
// at a time into two sets of accumulators (summed at the end) so that twice
// as many independent FMA chains hide the latency. Only (1, 4) blocks at
// batch >= 32 and in <= 1024 are sent here (see sparse_kernels.cpp: the CSR
// and (4, 1) kernels below measured no faster than the AVX2 ones on this
// AVX-512 Xeon, and are kept for other CPUs and later tuning).
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
      const float* x0 = xt + static_cast<int64_t>(w.cols[k]) * bp + c0;
      const float* x1 = xt + static_cast<int64_t>(w.cols[k + 1]) * bp + c0;
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
      const float* x0 = xt + static_cast<int64_t>(w.cols[k]) * bp + c0;
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

// Rows of 4x1 blocks: one load of xt feeds the 4 output rows; two blocks a
// step into two sets of accumulators.
template <int NV, bool H>
SPARSITY_AVX512 void col4_tile(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                               __mmask16 last, const float* bias, float* yt, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    __m512 a[4][NV], b[4][NV];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      if (rr.accumulate) {
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) a[i][j] = load_col<NV, H>(yt + (4 * r + i) * bp + c0, j, last);
      } else {
        const __m512 bv = _mm512_set1_ps(bias != nullptr ? bias[4 * r + i] : 0.0f);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) a[i][j] = bv;
      }
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) b[i][j] = _mm512_setzero_ps();
    }
    int64_t k = rr.begin[r * rr.stride];
    const int64_t k1 = rr.end[r * rr.stride];
    for (; k + 2 <= k1; k += 2) {
      const float* x0 = xt + static_cast<int64_t>(w.cols[k]) * bp + c0;
      const float* x1 = xt + static_cast<int64_t>(w.cols[k + 1]) * bp + c0;
      __m512 xv0[NV], xv1[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        xv0[j] = load_col<NV, H>(x0, j, last);
        xv1[j] = load_col<NV, H>(x1, j, last);
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m512 v0 = _mm512_set1_ps(w.values[4 * k + i]);
        const __m512 v1 = _mm512_set1_ps(w.values[4 * k + 4 + i]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
          a[i][j] = _mm512_fmadd_ps(v0, xv0[j], a[i][j]);
          b[i][j] = _mm512_fmadd_ps(v1, xv1[j], b[i][j]);
        }
      }
    }
    if (k < k1) {
      const float* x0 = xt + static_cast<int64_t>(w.cols[k]) * bp + c0;
      __m512 xv0[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) xv0[j] = load_col<NV, H>(x0, j, last);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m512 v0 = _mm512_set1_ps(w.values[4 * k + i]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) a[i][j] = _mm512_fmadd_ps(v0, xv0[j], a[i][j]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) store_col<NV, H>(yt + (4 * r + i) * bp + c0, j, last, _mm512_add_ps(a[i][j], b[i][j]));
    }
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

template <int NV>
SPARSITY_AVX512 void col4_tile_h(bool half, const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp,
                                 int64_t c0, const float* bias, float* yt, int64_t r0, int64_t r1) {
  if (half) {
    col4_tile<NV, true>(w, rr, xt, bp, c0, 0x00FF, bias, yt, r0, r1);
  } else {
    col4_tile<NV, false>(w, rr, xt, bp, c0, 0xFFFF, bias, yt, r0, r1);
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
    if (w.br == 4) {
      // Two zmm at most per step (4 rows x 2 zmm x 2 sets = 16 accumulators).
      const int64_t width = std::min<int64_t>(32, left);
      const bool half = width % 16 == 8;
      if (width > 16) {
        col4_tile_h<2>(half, w, rr, xt, bp, c, bias, yt, r0, r1);
      } else {
        col4_tile_h<1>(half, w, rr, xt, bp, c, bias, yt, r0, r1);
      }
      c += width;
      continue;
    }
    const int64_t width = std::min<int64_t>(64, left);
    const bool half = width % 16 == 8;
    const int nv = static_cast<int>((width + 15) / 16);
    switch (nv * 2 + (w.bc == 4 ? 1 : 0)) {
      case 2: row_tile_h<1, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      case 3: row_tile_h<1, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      case 4: row_tile_h<2, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      case 5: row_tile_h<2, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      case 6: row_tile_h<3, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      case 7: row_tile_h<3, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      case 8: row_tile_h<4, 1>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
      default: row_tile_h<4, 4>(half, w, rr, xt, bp, c, bias, yt, r0, r1); break;
    }
    c += width;
  }
}

}  // namespace sparsity::detail
