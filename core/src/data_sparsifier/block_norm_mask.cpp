#include "block_norm_mask.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace sparsity::detail {

namespace {

// Total order of the reference's sorts: NaN after every number; equal keys by
// position (the reference's sort is unstable for large inputs, so its ties are
// arbitrary; ours are reproducible).
template <typename T>
inline bool key_less(T a, int64_t ia, T b, int64_t ib) {
  const bool a_nan = std::isnan(a);
  const bool b_nan = std::isnan(b);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a != b) return a < b;
  return ia < ib;
}

template <typename T>
inline T magnitude(T x, bool l2) {
  return l2 ? x * x : std::abs(x);
}

// Work per parallel chunk: about 64k elements, whatever the block shape.
int64_t grain_in_block_rows(int64_t elements_per_block_row) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, elements_per_block_row));
}

template <typename T>
class BlockNormMasker {
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
        l2_(p.l2),
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
      compute_norms();
      find_threshold(k);
    } else {
      select_all_ = true;
    }
    write_mask();
  }

 private:
  // Mean magnitude of each block over its elements inside the data, summed in
  // T row by row, left to right, as the reference's avg_pool2d does, so that
  // equal inputs give bit-equal norms.
  void compute_norms() {
    norms_.assign(static_cast<size_t>(block_rows_ * block_cols_), T(0));
    at::parallel_for(0, block_rows_, grain_in_block_rows(bh_ * cols_), [&](int64_t begin, int64_t end) {
      for (int64_t br = begin; br < end; ++br) {
        T* acc = norms_.data() + br * block_cols_;
        const int64_t r0 = br * bh_;
        const int64_t r1 = std::min(rows_, r0 + bh_);
        for (int64_t r = r0; r < r1; ++r) {
          const T* row = x_ + r * cols_;
          for (int64_t bc = 0; bc < block_cols_; ++bc) {
            const int64_t c0 = bc * bw_;
            const int64_t c1 = std::min(cols_, c0 + bw_);
            T sum = acc[bc];
            for (int64_t c = c0; c < c1; ++c) sum += magnitude(row[c], l2_);
            acc[bc] = sum;
          }
        }
        for (int64_t bc = 0; bc < block_cols_; ++bc) {
          const int64_t count = (r1 - r0) * (std::min(cols_, bc * bw_ + bw_) - bc * bw_);
          acc[bc] = acc[bc] / static_cast<T>(count);
        }
      }
    });
  }

  // Finds the k-th smallest block under key_less without sorting: a k-th value
  // selection among the numbers, then a scan for the position of the last tie.
  void find_threshold(int64_t k) {
    std::vector<T> numbers;
    numbers.reserve(norms_.size());
    for (T v : norms_)
      if (!std::isnan(v)) numbers.push_back(v);
    const auto count = static_cast<int64_t>(numbers.size());
    if (k > count) {
      // Every number, then NaN blocks by position.
      threshold_is_nan_ = true;
      int64_t nan_seen = 0;
      for (int64_t b = 0; b < static_cast<int64_t>(norms_.size()); ++b) {
        if (std::isnan(norms_[b]) && ++nan_seen == k - count) {
          last_selected_tie_ = b;
          break;
        }
      }
      return;
    }
    std::nth_element(numbers.begin(), numbers.begin() + (k - 1), numbers.end());
    threshold_ = numbers[k - 1];
    int64_t below = 0;
    for (T v : numbers) below += v < threshold_;
    numbers = {};
    int64_t ties_needed = k - below;
    for (int64_t b = 0; b < static_cast<int64_t>(norms_.size()); ++b) {
      if (norms_[b] == threshold_ && --ties_needed == 0) {
        last_selected_tie_ = b;
        break;
      }
    }
  }

  bool selected(int64_t b) const {
    if (select_all_) return true;
    const T v = norms_[b];
    if (threshold_is_nan_) return !std::isnan(v) || b <= last_selected_tie_;
    return v < threshold_ || (v == threshold_ && b <= last_selected_tie_);
  }

  void write_mask() {
    const int64_t block_size = bh_ * bw_;
    at::parallel_for(0, block_rows_, grain_in_block_rows(bh_ * cols_), [&](int64_t begin, int64_t end) {
      std::vector<T> keys(static_cast<size_t>(block_size));
      std::vector<int64_t> order(static_cast<size_t>(block_size));
      std::vector<uint8_t> zero(static_cast<size_t>(block_size));
      for (int64_t br = begin; br < end; ++br) {
        const int64_t r0 = br * bh_;
        const int64_t h = std::min(rows_, r0 + bh_) - r0;
        for (int64_t bc = 0; bc < block_cols_; ++bc) {
          const int64_t c0 = bc * bw_;
          const int64_t w = std::min(cols_, c0 + bw_) - c0;
          uint8_t* m = mask_ + r0 * cols_ + c0;
          if (!selected(br * block_cols_ + bc)) {
            for (int64_t i = 0; i < h; ++i) std::memset(m + i * cols_, 1, static_cast<size_t>(w));
          } else if (zeros_ >= block_size) {
            for (int64_t i = 0; i < h; ++i) std::memset(m + i * cols_, 0, static_cast<size_t>(w));
          } else {
            sparsify_block(x_ + r0 * cols_ + c0, h, w, m, keys, order, zero);
          }
        }
      }
    });
  }

  // Zeroes the `zeros_` smallest elements of one block. Positions past the
  // data's edge take part as NaN, as the reference's NaN padding does.
  void sparsify_block(const T* x, int64_t h, int64_t w, uint8_t* m, std::vector<T>& keys,
                      std::vector<int64_t>& order, std::vector<uint8_t>& zero) const {
    const int64_t n = bh_ * bw_;
    for (int64_t i = 0; i < bh_; ++i) {
      for (int64_t j = 0; j < bw_; ++j) {
        keys[i * bw_ + j] = (i < h && j < w) ? magnitude(x[i * cols_ + j], l2_)
                                             : std::numeric_limits<T>::quiet_NaN();
      }
    }
    if (n <= 32) {
      // Rank by counting: branch-light and faster than a sort for small blocks.
      for (int64_t a = 0; a < n; ++a) {
        int64_t rank = 0;
        for (int64_t b = 0; b < n; ++b) rank += key_less(keys[b], b, keys[a], a);
        zero[a] = rank < zeros_;
      }
    } else {
      for (int64_t a = 0; a < n; ++a) order[a] = a;
      std::nth_element(order.begin(), order.begin() + (zeros_ - 1), order.begin() + n,
                       [&](int64_t a, int64_t b) { return key_less(keys[a], a, keys[b], b); });
      std::fill(zero.begin(), zero.begin() + n, 0);
      for (int64_t a = 0; a < zeros_; ++a) zero[order[a]] = 1;
    }
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) m[i * cols_ + j] = zero[i * bw_ + j] ? 0 : 1;
  }

  const T* x_;
  const int64_t rows_, cols_, bh_, bw_, zeros_;
  const double level_;
  const bool l2_;
  uint8_t* mask_;
  const int64_t block_rows_, block_cols_;

  std::vector<T> norms_;
  bool select_all_ = false;
  bool threshold_is_nan_ = false;
  T threshold_ = T(0);
  int64_t last_selected_tie_ = -1;
};

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
    BlockNormMasker<double>(data.data_ptr<double>(), rows, cols, params, m).run();
  } else {
    TORCH_INTERNAL_ASSERT(data.scalar_type() == at::kFloat);
    BlockNormMasker<float>(data.data_ptr<float>(), rows, cols, params, m).run();
  }
}

}  // namespace sparsity::detail
