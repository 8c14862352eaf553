#include "block_norm_mask.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <type_traits>
#include <vector>

namespace sparsity::detail {

namespace {

// The order of the reference's sorts, as unsigned integer keys: numbers by
// value, NaN after every number (+inf included), equal keys by position (the
// reference's sort is unstable for large inputs, so its ties are arbitrary;
// ours are reproducible).
//
// A number's key is its bit pattern made monotonic (sign flipped for
// positives, all bits flipped for negatives), with -0 folded onto +0, so that
// a < b <=> key(a) < key(b) and a == b <=> key(a) == key(b). Every NaN maps
// to the maximum key, above +inf's.
template <typename T>
using KeyOf = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <typename T>
inline KeyOf<T> order_key(T v) {
  using U = KeyOf<T>;
  static_assert(sizeof(U) == sizeof(T));
  constexpr int kTop = static_cast<int>(sizeof(U) * 8 - 1);
  constexpr U kSign = U{1} << kTop;
  U u;
  std::memcpy(&u, &v, sizeof u);
  // Without branches, so that loops over keys vectorize.
  const U flip = static_cast<U>(U{0} - (u >> kTop)) | kSign;  // all bits if negative, else the sign
  U key = u ^ flip;
  key = v == T(0) ? kSign : key;  // -0 and +0
  return std::isnan(v) ? std::numeric_limits<U>::max() : key;
}

template <bool L2, typename T>
inline T magnitude(T x) {
  if constexpr (L2) {
    return x * x;
  } else {
    return std::abs(x);
  }
}

// Work per parallel chunk: about 64k elements, whatever the block shape.
int64_t grain_in_block_rows(int64_t elements_per_block_row) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, elements_per_block_row));
}

template <typename T, bool L2>
class BlockNormMasker {
  using U = KeyOf<T>;

 public:
  BlockNormMasker(const T* x, int64_t rows, int64_t cols, const BlockNormMaskParams& p,
                  uint8_t* mask)
      : x_(x),
        rows_(rows),
        cols_(cols),
        bh_(p.block_height),
        bw_(p.block_width),
        zeros_(p.zeros_per_block),
        level_(p.sparsity_level),
        mask_(mask),
        block_rows_((rows + bh_ - 1) / bh_),
        block_cols_((cols + bw_ - 1) / bw_) {}

  void run() {
    const int64_t num_blocks = block_rows_ * block_cols_;
    const int64_t k = blocks_to_select(level_, num_blocks);
    if (k == 0 || zeros_ == 0) {
      std::memset(mask_, 1, static_cast<size_t>(rows_ * cols_));
      return;
    }
    if (k < num_blocks) {
      compute_norm_keys();
      find_threshold(k);
    } else {
      select_all_ = true;
    }
    write_mask();
  }

 private:
  // The order key of each block's norm: the mean magnitude over the block's
  // elements inside the data, summed in T row by row, left to right, as the
  // reference's avg_pool2d does, so that equal inputs give bit-equal norms.
  void compute_norm_keys() {
    keys_.resize(static_cast<size_t>(block_rows_ * block_cols_));
    // Blocks wholly inside the data's columns, and the width of the last one.
    const int64_t full_cols = cols_ / bw_;
    const int64_t last_width = cols_ - full_cols * bw_;
    at::parallel_for(0, block_rows_, grain_in_block_rows(bh_ * cols_), [&](int64_t begin, int64_t end) {
      std::vector<T> acc(static_cast<size_t>(block_cols_));
      for (int64_t br = begin; br < end; ++br) {
        std::fill(acc.begin(), acc.end(), T(0));
        const int64_t r0 = br * bh_;
        const int64_t r1 = std::min(rows_, r0 + bh_);
        for (int64_t r = r0; r < r1; ++r) {
          const T* row = x_ + r * cols_;
          switch (bw_) {
            case 1: accumulate_row<1>(row, acc.data(), full_cols); break;
            case 2: accumulate_row<2>(row, acc.data(), full_cols); break;
            case 3: accumulate_row<3>(row, acc.data(), full_cols); break;
            case 4: accumulate_row<4>(row, acc.data(), full_cols); break;
            case 8: accumulate_row<8>(row, acc.data(), full_cols); break;
            default: accumulate_row_any(row, acc.data(), full_cols); break;
          }
          if (last_width > 0) {
            T sum = acc[full_cols];
            for (int64_t c = full_cols * bw_; c < cols_; ++c) sum += magnitude<L2>(row[c]);
            acc[full_cols] = sum;
          }
        }
        const T full_count = static_cast<T>((r1 - r0) * bw_);
        for (int64_t bc = 0; bc < full_cols; ++bc) acc[bc] = acc[bc] / full_count;
        if (last_width > 0) acc[full_cols] = acc[full_cols] / static_cast<T>((r1 - r0) * last_width);
        U* out = keys_.data() + br * block_cols_;
        for (int64_t bc = 0; bc < block_cols_; ++bc) out[bc] = order_key(acc[bc]);
      }
    });
  }

  // Adds each element's magnitude of one row to its block's sum, for the
  // `blocks` blocks wholly inside the row, left to right within each block.
  // With the width known the compiler vectorizes across blocks.
  template <int BW>
  static void accumulate_row(const T* row, T* acc, int64_t blocks) {
    for (int64_t bc = 0; bc < blocks; ++bc) {
      T sum = acc[bc];
      for (int j = 0; j < BW; ++j) sum += magnitude<L2>(row[bc * BW + j]);
      acc[bc] = sum;
    }
  }

  void accumulate_row_any(const T* row, T* acc, int64_t blocks) const {
    for (int64_t bc = 0; bc < blocks; ++bc) {
      T sum = acc[bc];
      for (int64_t j = 0; j < bw_; ++j) sum += magnitude<L2>(row[bc * bw_ + j]);
      acc[bc] = sum;
    }
  }

  // Finds the k-th smallest block (1-based) under the key order without
  // sorting or copying: a radix selection of its key, digit by digit from the
  // most significant, then a scan for the position of the last selected tie.
  void find_threshold(int64_t k) {
    constexpr int kKeyBits = static_cast<int>(sizeof(U) * 8);
    constexpr int kDigitBits = 11;
    const int64_t n = static_cast<int64_t>(keys_.size());
    U prefix = 0;       // the digits of the threshold found so far
    U prefix_mask = 0;  // their bits
    int64_t below = 0;  // keys smaller than the threshold
    int64_t rank = k;   // the threshold's rank among keys matching prefix
    for (int shift = kKeyBits; shift > 0;) {
      const int bits = std::min(kDigitBits, shift);
      shift -= bits;
      const U digit_mask = static_cast<U>((U{1} << bits) - 1);
      const size_t bins = size_t{1} << bits;
      std::vector<int64_t> hist(bins, 0);
      std::mutex merge;
      at::parallel_for(0, n, int64_t{1} << 16, [&](int64_t begin, int64_t end) {
        std::vector<int64_t> local(bins, 0);
        const U* key = keys_.data();
        if (prefix_mask == 0) {
          for (int64_t b = begin; b < end; ++b) ++local[(key[b] >> shift) & digit_mask];
        } else {
          for (int64_t b = begin; b < end; ++b) {
            if ((key[b] & prefix_mask) == prefix) ++local[(key[b] >> shift) & digit_mask];
          }
        }
        std::lock_guard<std::mutex> lock(merge);
        for (size_t i = 0; i < bins; ++i) hist[i] += local[i];
      });
      size_t digit = 0;
      while (hist[digit] < rank) {
        rank -= hist[digit];
        below += hist[digit];
        ++digit;
      }
      prefix |= static_cast<U>(static_cast<U>(digit) << shift);
      prefix_mask |= static_cast<U>(digit_mask << shift);
    }
    threshold_ = prefix;
    // The threshold's ties are selected by position: the first k - below.
    int64_t ties_needed = k - below;
    for (int64_t b = 0; b < n; ++b) {
      if (keys_[b] == threshold_ && --ties_needed == 0) {
        last_selected_tie_ = b;
        break;
      }
    }
  }

  // Branch-free: whether a block is selected is as random as the data.
  bool selected(int64_t b) const {
    const U key = keys_[b];
    return (key < threshold_) | ((key == threshold_) & (b <= last_selected_tie_));
  }

  void write_mask() {
    const int64_t block_size = bh_ * bw_;
    at::parallel_for(0, block_rows_, grain_in_block_rows(bh_ * cols_), [&](int64_t begin, int64_t end) {
      // A selected block is zeroed whole, or loses its smallest elements
      // (`partial`); the others are kept.
      const bool partial = zeros_ < block_size;
      std::vector<uint8_t> keep(static_cast<size_t>(block_cols_));
      std::vector<int64_t> partial_blocks(static_cast<size_t>(block_cols_));
      std::vector<U> keys(static_cast<size_t>(block_size));
      std::vector<int64_t> order(static_cast<size_t>(block_size));
      for (int64_t br = begin; br < end; ++br) {
        const int64_t r0 = br * bh_;
        const int64_t h = std::min(rows_, r0 + bh_) - r0;
        int64_t num_partial = 0;
        for (int64_t bc = 0; bc < block_cols_; ++bc) {
          const bool sel = select_all_ || selected(br * block_cols_ + bc);
          keep[bc] = !sel | partial;
          partial_blocks[num_partial] = bc;
          num_partial += sel & partial;
        }
        // The block row's first row, then copies of it; the smallest elements
        // of the partial blocks are zeroed afterwards.
        uint8_t* first = mask_ + r0 * cols_;
        if (bw_ == 1) {
          std::memcpy(first, keep.data(), static_cast<size_t>(cols_));
        } else {
          for (int64_t bc = 0; bc < block_cols_; ++bc) {
            const int64_t c0 = bc * bw_;
            const int64_t w = std::min(cols_, c0 + bw_) - c0;
            const uint8_t v = keep[bc];
            for (int64_t j = 0; j < w; ++j) first[c0 + j] = v;
          }
        }
        for (int64_t i = 1; i < h; ++i) std::memcpy(first + i * cols_, first, static_cast<size_t>(cols_));
        for (int64_t p = 0; p < num_partial; ++p) {
          const int64_t c0 = partial_blocks[p] * bw_;
          const int64_t w = std::min(cols_, c0 + bw_) - c0;
          sparsify_block(x_ + r0 * cols_ + c0, h, w, first + c0, keys, order);
        }
      }
    });
  }

  // Zeroes the `zeros_` smallest elements of one block. Positions past the
  // data's edge take part as NaN, as the reference's NaN padding does.
  void sparsify_block(const T* x, int64_t h, int64_t w, uint8_t* m, std::vector<U>& keys,
                      std::vector<int64_t>& order) const {
    const int64_t n = bh_ * bw_;
    if (n <= 4) return sparsify_small_block<4>(x, h, w, m);
    if (n <= 8) return sparsify_small_block<8>(x, h, w, m);
    if (n <= 16) return sparsify_small_block<16>(x, h, w, m);
    if (n <= 32) return sparsify_small_block<32>(x, h, w, m);
    for (int64_t i = 0; i < bh_; ++i) {
      for (int64_t j = 0; j < bw_; ++j) {
        keys[i * bw_ + j] = (i < h && j < w) ? order_key(magnitude<L2>(x[i * cols_ + j])) : kNaNKey;
      }
    }
    for (int64_t a = 0; a < n; ++a) order[a] = a;
    std::nth_element(order.begin(), order.begin() + (zeros_ - 1), order.begin() + n,
                     [&](int64_t a, int64_t b) { return keys[a] < keys[b] || (keys[a] == keys[b] && a < b); });
    for (int64_t a = 0; a < zeros_; ++a) {
      const int64_t i = order[a] / bw_;
      const int64_t j = order[a] % bw_;
      if (i < h && j < w) m[i * cols_ + j] = 0;
    }
  }

  // The same for blocks of at most P elements: each element's rank by
  // counting, over P keys so that the loops have a fixed length. The keys past
  // the block (index >= bh * bw) are NaN too; being after every position of
  // the block, they change no rank that is used.
  template <int P>
  void sparsify_small_block(const T* x, int64_t h, int64_t w, uint8_t* m) const {
    std::array<U, P> key;
    key.fill(kNaNKey);
    for (int64_t i = 0; i < h; ++i) {
      for (int64_t j = 0; j < w; ++j) key[i * bw_ + j] = order_key(magnitude<L2>(x[i * cols_ + j]));
    }
    // Each pair compared once; of equal keys the first position ranks first.
    std::array<uint8_t, P> rank{};
    for (int a = 0; a < P; ++a) {
      for (int b = a + 1; b < P; ++b) {
        const bool b_first = key[b] < key[a];
        rank[a] += b_first;
        rank[b] += !b_first;
      }
    }
    for (int64_t i = 0; i < h; ++i) {
      for (int64_t j = 0; j < w; ++j) m[i * cols_ + j] = rank[i * bw_ + j] >= zeros_;
    }
  }

  static constexpr U kNaNKey = std::numeric_limits<U>::max();

  const T* x_;
  const int64_t rows_, cols_, bh_, bw_, zeros_;
  const double level_;
  uint8_t* mask_;
  const int64_t block_rows_, block_cols_;

  std::vector<U> keys_;  // order key of each block's norm
  bool select_all_ = false;
  U threshold_ = 0;
  int64_t last_selected_tie_ = -1;
};

template <typename T>
void run_masker(const T* x, int64_t rows, int64_t cols, const BlockNormMaskParams& params,
                uint8_t* mask) {
  if (params.l2) {
    BlockNormMasker<T, true>(x, rows, cols, params, mask).run();
  } else {
    BlockNormMasker<T, false>(x, rows, cols, params, mask).run();
  }
}

}  // namespace

int64_t blocks_to_select(double sparsity_level, int64_t num_blocks) {
  if (!(sparsity_level > 0.0) || num_blocks == 0) return 0;
  if (sparsity_level >= 1.0) return num_blocks;
  // nearbyint in the default rounding mode rounds half to even, as Python's round.
  const double k = std::nearbyint(sparsity_level * static_cast<double>(num_blocks));
  return std::clamp<int64_t>(static_cast<int64_t>(k), 0, num_blocks);
}

void block_norm_mask(const at::Tensor& data, int64_t rows, int64_t cols,
                     const BlockNormMaskParams& params, at::Tensor& mask) {
  TORCH_INTERNAL_ASSERT(data.is_contiguous() && data.device().is_cpu());
  TORCH_INTERNAL_ASSERT(mask.is_contiguous() && mask.scalar_type() == at::kByte);
  TORCH_INTERNAL_ASSERT(data.numel() == rows * cols && mask.numel() == rows * cols);
  if (rows * cols == 0) return;
  uint8_t* m = mask.data_ptr<uint8_t>();
  if (data.scalar_type() == at::kDouble) {
    run_masker<double>(data.data_ptr<double>(), rows, cols, params, m);
  } else {
    TORCH_INTERNAL_ASSERT(data.scalar_type() == at::kFloat);
    run_masker<float>(data.data_ptr<float>(), rows, cols, params, m);
  }
}

}  // namespace sparsity::detail
