#include "block_row_avx2.h"

#include "../runtime/portable_kernels.h"

#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace sparsity::detail {

namespace {

// The scalar order key of a norm >= 0 or NaN (see block_norm_mask.cpp).
inline uint32_t scalar_key(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const uint32_t flip = static_cast<uint32_t>(0u - (u >> 31)) | 0x80000000u;
  uint32_t key = u ^ flip;
  key = v == 0.0f ? 0x80000000u : key;
  return v != v ? 0xffffffffu : key;
}

// kLeftPack[bits]: the positions of bits' set bits, lowest first, padded.
struct LeftPackTable {
  uint8_t index[256][8];
  constexpr LeftPackTable() : index{} {
    for (unsigned bits = 0; bits < 256; ++bits) {
      int n = 0;
      for (int j = 0; j < 8; ++j) {
        if (bits & (1u << j)) index[bits][n++] = static_cast<uint8_t>(j);
      }
    }
  }
};
constexpr LeftPackTable kLeftPackTable{};
constexpr const uint8_t (&kLeftPack)[256][8] = kLeftPackTable.index;

}  // namespace

bool avx2_rows_enabled() {
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  return has_avx2 && !portable_kernels_requested();
}

// No FMA in the target: a fused multiply-add would round differently from
// the portable path's separate square and sum.
__attribute__((target("avx2"))) int64_t avx2_row_of_4_blocks(const float* row, int64_t blocks, bool l2,
                                                              uint32_t split, uint32_t lo, uint32_t width,
                                                              uint8_t* mask,
                                                              uint32_t* keys, uint32_t* block_ids,
                                                              uint32_t first_block, int64_t* used) {
  const __m256 abs_bits = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 quarter = _mm256_set1_ps(0.25f);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i split_v = _mm256_set1_epi32(static_cast<int>(split));
  const __m256i lo_v = _mm256_set1_epi32(static_cast<int>(lo));
  const __m256i width_v = _mm256_set1_epi32(static_cast<int>(width));
  const __m256i ones_bytes = _mm256_set1_epi32(0x01010101);
  // The transposition below leaves blocks in lane order 0 2 4 6 1 3 5 7.
  const __m256i block_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t n = *used;
  int64_t below = 0;
  int64_t b = 0;
  for (; b + 8 <= blocks; b += 8) {
    const float* x = row + 4 * b;
    __m256 a = _mm256_loadu_ps(x), c = _mm256_loadu_ps(x + 8), d = _mm256_loadu_ps(x + 16),
           e = _mm256_loadu_ps(x + 24);
    if (l2) {
      a = _mm256_mul_ps(a, a);
      c = _mm256_mul_ps(c, c);
      d = _mm256_mul_ps(d, d);
      e = _mm256_mul_ps(e, e);
    } else {
      a = _mm256_and_ps(a, abs_bits);
      c = _mm256_and_ps(c, abs_bits);
      d = _mm256_and_ps(d, abs_bits);
      e = _mm256_and_ps(e, abs_bits);
    }
    // Element j of each of the 8 blocks into x_j.
    const __m256 t0 = _mm256_unpacklo_ps(a, c), t1 = _mm256_unpackhi_ps(a, c);
    const __m256 t2 = _mm256_unpacklo_ps(d, e), t3 = _mm256_unpackhi_ps(d, e);
    const __m256 x0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 x1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 x2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 x3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    // Summed left to right, as the portable path and the reference.
    __m256 norm = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), x2), x3);
    norm = _mm256_mul_ps(norm, quarter);
    norm = _mm256_permutevar8x32_ps(norm, block_order);
    // A norm is +0, positive, +inf or NaN (of either sign, from squares):
    // the order key is the bits with the sign set, or all ones for NaN.
    __m256i key = _mm256_xor_si256(_mm256_castps_si256(norm), sign);
    key = _mm256_or_si256(key, _mm256_castps_si256(_mm256_cmp_ps(norm, norm, _CMP_UNORD_Q)));
    // Unsigned comparisons through max/min.
    const __m256i keep = _mm256_cmpeq_epi32(_mm256_max_epu32(key, split_v), key);
    const __m256i offset = _mm256_sub_epi32(key, lo_v);
    const __m256i in_window = _mm256_cmpeq_epi32(_mm256_min_epu32(offset, width_v), offset);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask + 4 * b), _mm256_and_si256(keep, ones_bytes));
    below += 8 - __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(keep))));
    // The window's keys and blocks packed to the front and stored whole,
    // without branches (few groups have any, at random): the caller leaves
    // room for 8 past the last.
    const auto window_bits = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(in_window)));
    const __m256i pack = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kLeftPack[window_bits])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys + n), _mm256_permutevar8x32_epi32(key, pack));
    const __m256i ids = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first_block + static_cast<uint32_t>(b))), pack);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(block_ids + n), ids);
    n += __builtin_popcount(window_bits);
  }
  for (; b < blocks; ++b) {
    float sum = 0.0f;
    for (int j = 0; j < 4; ++j) {
      const float v = row[4 * b + j];
      sum += l2 ? v * v : std::fabs(v);
    }
    const uint32_t key = scalar_key(sum * 0.25f);
    std::memset(mask + 4 * b, key >= split, 4);
    below += key < split;
    if (key - lo <= width) {
      keys[n] = key;
      block_ids[n] = first_block + static_cast<uint32_t>(b);
      ++n;
    }
  }
  *used = n;
  return below;
}

}  // namespace sparsity::detail
