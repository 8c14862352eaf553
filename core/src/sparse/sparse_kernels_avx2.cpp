// The AVX2+FMA kernels, compiled for that target whatever the build's flags
// (the dispatcher checks the CPU first).
#include <immintrin.h>

#include "sparse_kernels.h"

#define SPARSITY_AVX2 __attribute__((target("avx2,fma")))

namespace sparsity::detail {

namespace {

SPARSITY_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One sample, one CSR row: a gather dot product, 16 values a step.
SPARSITY_AVX2 inline float csr_dot(const float* xb, const int32_t* cols, const float* values, int64_t k0,
                                   int64_t k1) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t k = k0;
  for (; k + 16 <= k1; k += 16) {
    const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cols + k));
    const __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cols + k + 8));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + k), _mm256_i32gather_ps(xb, i0, 4), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + k + 8), _mm256_i32gather_ps(xb, i1, 4), a1);
  }
  if (k + 8 <= k1) {
    const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cols + k));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + k), _mm256_i32gather_ps(xb, i0, 4), a0);
    k += 8;
  }
  if (k < k1) {
    // The last 1-7 through masked loads (which read nothing past the mask)
    // and a masked gather.
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k1 - k)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i i0 = _mm256_maskload_epi32(cols + k, mask);
    const __m256 v0 = _mm256_maskload_ps(values + k, mask);
    const __m256 x0 = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xb, i0, _mm256_castsi256_ps(mask), 4);
    a1 = _mm256_fmadd_ps(v0, x0, a1);
  }
  return hsum(_mm256_add_ps(a0, a1));
}

// One sample, one row of 1x4 blocks: two blocks a step.
SPARSITY_AVX2 inline float row4_dot(const float* xb, const int32_t* cols, const float* values, int64_t k0,
                                    int64_t k1) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t k = k0;
  for (; k + 4 <= k1; k += 4) {
    const __m256 x0 = _mm256_loadu2_m128(xb + cols[k + 1], xb + cols[k]);
    const __m256 x1 = _mm256_loadu2_m128(xb + cols[k + 3], xb + cols[k + 2]);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 4 * k), x0, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 4 * k + 8), x1, a1);
  }
  for (; k + 2 <= k1; k += 2) {
    const __m256 x0 = _mm256_loadu2_m128(xb + cols[k + 1], xb + cols[k]);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 4 * k), x0, a0);
  }
  float sum = hsum(_mm256_add_ps(a0, a1));
  if (k < k1) {
    const float* xc = xb + cols[k];
    const float* v = values + 4 * k;
    sum += v[0] * xc[0] + v[1] * xc[1] + v[2] * xc[2] + v[3] * xc[3];
  }
  return sum;
}

// One sample, one row of 4x1 blocks: the 4 outputs, two blocks a step.
SPARSITY_AVX2 inline __m128 col4_dot(const float* xb, const int32_t* cols, const float* values, int64_t k0,
                                     int64_t k1) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t k = k0;
  for (; k + 4 <= k1; k += 4) {
    const __m256 x0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(xb[cols[k]])),
                                           _mm_set1_ps(xb[cols[k + 1]]), 1);
    const __m256 x1 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(xb[cols[k + 2]])),
                                           _mm_set1_ps(xb[cols[k + 3]]), 1);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 4 * k), x0, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 4 * k + 8), x1, a1);
  }
  for (; k + 2 <= k1; k += 2) {
    const __m256 x0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(xb[cols[k]])),
                                           _mm_set1_ps(xb[cols[k + 1]]), 1);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + 4 * k), x0, a0);
  }
  const __m256 acc = _mm256_add_ps(a0, a1);
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  if (k < k1) sum = _mm_fmadd_ps(_mm_loadu_ps(values + 4 * k), _mm_set1_ps(xb[cols[k]]), sum);
  return sum;
}

// Rows of 1x1 (bc 1) or 1x4 (bc 4) blocks over NV vectors of columns.
template <int NV, int BC>
SPARSITY_AVX2 void row_tile(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                            const float* bias, float* yt, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    __m256 acc[NV];
    float* yo = yt + r * bp + c0;
    if (rr.accumulate) {
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[j] = _mm256_loadu_ps(yo + 8 * j);
    } else {
      const __m256 b = _mm256_set1_ps(bias != nullptr ? bias[r] : 0.0f);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[j] = b;
    }
    const int64_t k1 = rr.end[r * rr.stride];
    for (int64_t k = rr.begin[r * rr.stride]; k < k1; ++k) {
      const float* xr = xt + (w.cols[k] - rr.col0) * bp + c0;
#pragma GCC unroll 4
      for (int i = 0; i < BC; ++i) {
        const __m256 v = _mm256_broadcast_ss(w.values + k * BC + i);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[j] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + i * bp + 8 * j), acc[j]);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) _mm256_storeu_ps(yo + 8 * j, acc[j]);
  }
}

// Rows of 4x1 blocks: one load of xt feeds the 4 output rows.
template <int NV>
SPARSITY_AVX2 void col4_tile(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                             const float* bias, float* yt, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    __m256 acc[4][NV];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      if (rr.accumulate) {
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_loadu_ps(yt + (4 * r + i) * bp + c0 + 8 * j);
      } else {
        const __m256 b = _mm256_set1_ps(bias != nullptr ? bias[4 * r + i] : 0.0f);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = b;
      }
    }
    const int64_t k1 = rr.end[r * rr.stride];
    for (int64_t k = rr.begin[r * rr.stride]; k < k1; ++k) {
      const float* xr = xt + (w.cols[k] - rr.col0) * bp + c0;
      __m256 xv[NV];
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) xv[j] = _mm256_loadu_ps(xr + 8 * j);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m256 v = _mm256_broadcast_ss(w.values + 4 * k + i);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(v, xv[j], acc[i][j]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      float* yo = yt + (4 * r + i) * bp + c0;
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) _mm256_storeu_ps(yo + 8 * j, acc[i][j]);
    }
  }
}

template <int BC>
SPARSITY_AVX2 void row_tiles(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0, int64_t nv,
                             const float* bias, float* yt, int64_t r0, int64_t r1) {
  switch (nv) {
    case 1: return row_tile<1, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    case 2: return row_tile<2, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    case 3: return row_tile<3, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    case 4: return row_tile<4, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    case 5: return row_tile<5, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    case 6: return row_tile<6, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    case 7: return row_tile<7, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
    default: return row_tile<8, BC>(w, rr, xt, bp, c0, bias, yt, r0, r1);
  }
}

template <int NV>
SPARSITY_AVX2 void input_tile(const float* x, const int32_t* nz, int64_t n, const float* wt, int64_t out_padded,
                              const float* bias, float* y, int64_t c0) {
  __m256 acc[NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) acc[j] = _mm256_loadu_ps(bias + c0 + 8 * j);
  for (int64_t t = 0; t < n; ++t) {
    const __m256 v = _mm256_broadcast_ss(x + nz[t]);
    const float* row = wt + static_cast<int64_t>(nz[t]) * out_padded + c0;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[j] = _mm256_fmadd_ps(v, _mm256_loadu_ps(row + 8 * j), acc[j]);
  }
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) _mm256_storeu_ps(y + c0 + 8 * j, acc[j]);
}

}  // namespace

SPARSITY_AVX2 void small_rows_avx2(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y,
                                   int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k0 = w.offsets[r], k1 = w.offsets[r + 1];
    for (int64_t b = 0; b < batch; ++b) {
      const float* xb = x + b * w.in;
      float* yb = y + b * w.out;
      if (w.br == 4) {
        __m128 sum = col4_dot(xb, w.cols, w.values, k0, k1);
        if (bias != nullptr) sum = _mm_add_ps(sum, _mm_loadu_ps(bias + 4 * r));
        _mm_storeu_ps(yb + 4 * r, sum);
      } else {
        const float dot = w.bc == 4 ? row4_dot(xb, w.cols, w.values, k0, k1) : csr_dot(xb, w.cols, w.values, k0, k1);
        yb[r] = dot + (bias != nullptr ? bias[r] : 0.0f);
      }
    }
  }
}

SPARSITY_AVX2 void transposed_rows_avx2(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp,
                                        int64_t c0, int64_t c1, const float* bias, float* yt, int64_t r0, int64_t r1) {
  const int64_t nv = (c1 - c0) / 8;
  if (w.br == 4) {
    // 16 columns (8 accumulators for the 4 rows) at a time, then the last 8.
    int64_t c = c0;
    for (; c + 16 <= c1; c += 16) col4_tile<2>(w, rr, xt, bp, c, bias, yt, r0, r1);
    if (c < c1) col4_tile<1>(w, rr, xt, bp, c, bias, yt, r0, r1);
  } else if (w.bc == 4) {
    row_tiles<4>(w, rr, xt, bp, c0, nv, bias, yt, r0, r1);
  } else {
    row_tiles<1>(w, rr, xt, bp, c0, nv, bias, yt, r0, r1);
  }
}

SPARSITY_AVX2 void input_sparse_cols_avx2(const float* x, const int32_t* nz, int64_t n, const float* wt,
                                          int64_t out_padded, const float* bias, float* y, int64_t c0, int64_t c1) {
  switch ((c1 - c0) / 8) {
    case 1: return input_tile<1>(x, nz, n, wt, out_padded, bias, y, c0);
    case 2: return input_tile<2>(x, nz, n, wt, out_padded, bias, y, c0);
    case 3: return input_tile<3>(x, nz, n, wt, out_padded, bias, y, c0);
    case 4: return input_tile<4>(x, nz, n, wt, out_padded, bias, y, c0);
    case 5: return input_tile<5>(x, nz, n, wt, out_padded, bias, y, c0);
    case 6: return input_tile<6>(x, nz, n, wt, out_padded, bias, y, c0);
    case 7: return input_tile<7>(x, nz, n, wt, out_padded, bias, y, c0);
    default: return input_tile<8>(x, nz, n, wt, out_padded, bias, y, c0);
  }
}

}  // namespace sparsity::detail

namespace sparsity::detail {

namespace {

SPARSITY_AVX2 inline void transpose8x8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m256 r0 = _mm256_loadu_ps(src + 0 * src_stride), r1 = _mm256_loadu_ps(src + 1 * src_stride);
  __m256 r2 = _mm256_loadu_ps(src + 2 * src_stride), r3 = _mm256_loadu_ps(src + 3 * src_stride);
  __m256 r4 = _mm256_loadu_ps(src + 4 * src_stride), r5 = _mm256_loadu_ps(src + 5 * src_stride);
  __m256 r6 = _mm256_loadu_ps(src + 6 * src_stride), r7 = _mm256_loadu_ps(src + 7 * src_stride);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst + 0 * dst_stride, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(dst + 1 * dst_stride, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(dst + 2 * dst_stride, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(dst + 3 * dst_stride, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(dst + 4 * dst_stride, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(dst + 5 * dst_stride, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(dst + 6 * dst_stride, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(dst + 7 * dst_stride, _mm256_permute2f128_ps(s3, s7, 0x31));
}

}  // namespace

SPARSITY_AVX2 void transpose_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst,
                                  int64_t dst_stride) {
  const int64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int64_t i = 0; i < rows8; i += 8) {
    for (int64_t j = 0; j < cols8; j += 8) transpose8x8(src + i * src_stride + j, src_stride, dst + j * dst_stride + i, dst_stride);
    for (int64_t j = cols8; j < cols; ++j) {
      for (int64_t k = i; k < i + 8; ++k) dst[j * dst_stride + k] = src[k * src_stride + j];
    }
  }
  for (int64_t k = rows8; k < rows; ++k) {
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_stride + k] = src[k * src_stride + j];
  }
}

}  // namespace sparsity::detail
