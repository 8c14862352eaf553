#include "block_norm_mask.h"

#include "block_row_avx2.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
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
  return v != v ? std::numeric_limits<U>::max() : key;  // NaN
}

template <bool L2, typename T>
inline T magnitude(T x) {
  if constexpr (L2) {
    return x * x;
  } else {
    return std::abs(x);
  }
}

template <typename T, bool L2>
class BlockNormMasker {
  using U = KeyOf<T>;
  static constexpr int kKeyBits = static_cast<int>(sizeof(U) * 8);
  static constexpr int kBinBits = 16;
  static constexpr size_t kBins = size_t{1} << kBinBits;
  using Bin = uint16_t;

 public:
  BlockNormMasker(const T* x, int64_t rows, int64_t cols, const BlockNormMaskParams& p,
                  uint8_t* mask, std::vector<unsigned char>& workspace)
      : x_(x),
        rows_(rows),
        cols_(cols),
        bh_(p.block_height),
        bw_(p.block_width),
        zeros_(p.zeros_per_block),
        level_(p.sparsity_level),
        mask_(mask),
        workspace_(workspace),
        block_rows_((rows + bh_ - 1) / bh_),
        block_cols_((cols + bw_ - 1) / bw_),
        full_cols_(cols / bw_),
        last_width_(cols - (cols / bw_) * bw_) {}

  // The norm keys of block rows [begin, end), in block index order, into
  // out, as the norms widened to double: widening is exact and keeps order
  // and equality, so data of both precisions rank together and each ranks as
  // run() ranks it.
  void norm_keys(int64_t begin, int64_t end, uint64_t* out) const {
    // Tasks of at least 2^16 elements: a small tensor (most of a model's)
    // runs inline, where a parallel region would cost more than its work.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, bh_ * cols_));
    at::parallel_for(begin, end, grain, [&](int64_t task_begin, int64_t task_end) {
      std::vector<T> acc(static_cast<size_t>(block_cols_));
      for (int64_t br = task_begin; br < task_end; ++br) {
        block_row_norms(br, acc.data());
        uint64_t* row = out + (br - begin) * block_cols_;
        for (int64_t bc = 0; bc < block_cols_; ++bc) row[bc] = order_key(static_cast<double>(acc[bc]));
      }
    });
  }
  int64_t block_rows() const { return block_rows_; }
  int64_t block_cols() const { return block_cols_; }

  void run() {
    const int64_t num_blocks = block_rows_ * block_cols_;
    const int64_t k = blocks_to_select(level_, num_blocks);
    if (k == 0 || zeros_ == 0) {
      std::memset(mask_, 1, static_cast<size_t>(rows_ * cols_));
      return;
    }
    plan_slots(num_blocks);
    if (k == num_blocks) {
      select_all_ = true;
      write_mask();
      return;
    }
    // One pass when a sample predicts the k-th key's neighbourhood well, which
    // is almost always; otherwise (a miss, or huge ties at the k-th key) the
    // three passes over bins.
    if (predict_window(k, num_blocks) && write_mask_outside_window(k)) return;
    place_bins();
    compute_bins();
    find_bin(k);
    collect_candidates();
    find_threshold(candidates_, slot_offsets_.back(), rank_in_bin_);
    write_mask();
  }

 private:
  // Slots: contiguous ranges of block rows, one task each, with their own
  // histogram (uint32 counts, so a slot holds fewer than 2^32 blocks).
  void plan_slots(int64_t num_blocks) {
    const int64_t by_size = num_blocks / (int64_t{1} << 31) + 1;
    slots_ = std::clamp<int64_t>(std::max<int64_t>(at::get_num_threads(), by_size), 1, block_rows_);
  }
  int64_t slot_begin(int64_t s) const { return block_rows_ * s / slots_; }

  template <typename F>
  void for_each_slot(const F& f) const {
    at::parallel_for(0, slots_, 1, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) f(s, slot_begin(s), slot_begin(s + 1));
    });
  }

  void place_bins() {
    const int64_t last_rows = rows_ - (block_rows_ - 1) * bh_;
    const int64_t room = std::min(bh_, last_rows) * cols_;
    bins_in_mask_ = block_cols_ * static_cast<int64_t>(sizeof(Bin)) <= room;
    if (!bins_in_mask_) separate_bins_.resize(static_cast<size_t>(block_rows_ * block_cols_));
  }
  unsigned char* bin_bytes(int64_t br) {
    return bins_in_mask_ ? mask_ + br * bh_ * cols_
                         : reinterpret_cast<unsigned char*>(separate_bins_.data() + br * block_cols_);
  }

  // The keys most likely to surround the k-th, from a sample of blocks spread
  // evenly over the data: the sample's order statistics 4 standard deviations
  // either side of the k-th's expected rank. False when the window would hold
  // too many blocks (huge ties at the k-th key): the bins handle those.
  bool predict_window(int64_t k, int64_t num_blocks) {
    // More samples narrow the window (fewer blocks to record and fix up) but
    // cost a cache miss each: about one per 512 blocks, within [4096, 16384].
    const int64_t n = std::min(num_blocks, std::clamp<int64_t>(num_blocks / 512, 4096, 16384));
    std::vector<U> sample(static_cast<size_t>(n));
    const auto sampled_block = [&](int64_t i) { return (2 * i + 1) * num_blocks / (2 * n); };
    at::parallel_for(0, n, 1024, [&](int64_t begin, int64_t end) {
      // Each sample is a cache miss: requested some way ahead, they overlap.
      constexpr int64_t kAhead = 16;
      for (int64_t i = begin; i < std::min(end, begin + kAhead); ++i) prefetch_block(sampled_block(i));
      for (int64_t i = begin; i < end; ++i) {
        if (i + kAhead < end) prefetch_block(sampled_block(i + kAhead));
        const int64_t b = sampled_block(i);
        sample[i] = block_key(b / block_cols_, b % block_cols_);
      }
    });
    const double p = static_cast<double>(k) / static_cast<double>(num_blocks);
    // 3.5 standard deviations each way: a miss (about 1 step in 2000) costs
    // the three passes, a wider window costs every step.
    const double margin = 3.5 * std::sqrt(static_cast<double>(n) * p * (1.0 - p)) + 2.0;
    const auto rank = [&](double r) { return std::clamp<int64_t>(static_cast<int64_t>(r), 0, n - 1); };
    const int64_t lo = rank(std::floor(p * static_cast<double>(n) - margin));
    const int64_t mid = rank(std::round(p * static_cast<double>(n)));
    const int64_t hi = rank(std::ceil(p * static_cast<double>(n) + margin));
    // Three order statistics, not a sort.
    std::nth_element(sample.begin(), sample.begin() + mid, sample.end());
    std::nth_element(sample.begin(), sample.begin() + lo, sample.begin() + mid);
    std::nth_element(sample.begin() + mid + 1, sample.begin() + std::max(hi, mid + 1), sample.end());
    window_lo_ = sample[lo];
    window_split_ = sample[mid];
    window_hi_ = sample[std::max(hi, mid)];
    const int64_t in_window = std::count_if(sample.begin(), sample.end(), [&](U key) {
      return window_lo_ <= key && key <= window_hi_;
    });
    const int64_t expected = in_window * num_blocks / n;
    if (expected > num_blocks / 8 + 1) return false;
    // Room per slot for twice the expected share: more means the sample lied.
    window_capacity_ = 2 * expected / slots_ + 1024 + block_cols_;
    return true;
  }

  // The single pass: each block's norm key decides its mask at once, by the
  // sample's estimate of the k-th key (the split): below it selected, at or
  // above it kept. The keys and positions of the blocks in the window are
  // recorded; the exact k-th key is selected among them, and the few blocks
  // between the split and it, now known to be on the wrong side, rewritten.
  // False, with the mask unfinished, when the window missed the k-th key or
  // held more blocks than it has room for.
  bool write_mask_outside_window(int64_t k) {
    reserve_candidates(slots_ * window_capacity_);
    // Per slot: blocks below the window's low end, window blocks recorded.
    std::vector<int64_t> below(static_cast<size_t>(slots_), 0), used(static_cast<size_t>(slots_), 0);
    std::atomic<bool> overflow{false};
    const U split = window_split_, window_lo = window_lo_, window_width = window_hi_ - window_lo_;
    // The default case, (1, 4) blocks zeroed whole, has a vector kernel.
    const bool avx2_rows = std::is_same_v<T, float> && bh_ == 1 && bw_ == 4 && last_width_ == 0 &&
                           zeros_ == 4 && avx2_rows_enabled();
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      BlockRowScratch scratch(*this);
      std::vector<T> acc(static_cast<size_t>(block_cols_));
      std::vector<U> row_keys(static_cast<size_t>(block_cols_));
      std::vector<uint8_t> in_window(static_cast<size_t>((block_cols_ + 7) / 8 * 8), 0);
      U* const rk = candidates_ + s * window_capacity_;
      uint32_t* const rx = candidate_blocks_ + s * window_capacity_;
      int64_t n = 0, below_split = 0;
      for (int64_t br = begin; br < end; ++br) {
        if (n + block_cols_ > window_capacity_ || overflow.load(std::memory_order_relaxed)) {
          overflow = true;
          return;
        }
        const auto first_block = static_cast<uint32_t>((br - begin) * block_cols_);
        if constexpr (std::is_same_v<T, float>) {
          if (avx2_rows) {
            below_split += avx2_row_of_4_blocks(x_ + br * cols_, block_cols_, L2, split, window_lo, window_width,
                                                mask_ + br * cols_, rk, rx, first_block, &n);
            continue;
          }
        }
        block_row_norms(br, acc.data());
        to_keys(acc.data(), row_keys.data(), block_cols_);
        below_split += classify(row_keys.data(), split, window_lo, window_width, scratch.keep.data(),
                                in_window.data(), block_cols_);
        write_block_row(br, scratch);
        // The window's blocks appended, eight flags at a time (most are 0).
        const U* keys = row_keys.data();
        const uint8_t* window = in_window.data();
        for (int64_t g = 0; g < block_cols_; g += 8) {
          uint64_t any;
          std::memcpy(&any, window + g, sizeof any);
          if (any == 0) continue;
          for (int64_t bc = g; bc < std::min(g + 8, block_cols_); ++bc) {
            rk[n] = keys[bc];
            rx[n] = first_block + static_cast<uint32_t>(bc);
            n += window[bc];
          }
        }
      }
      // Below the split are the blocks below the window and those of the
      // window below the split.
      int64_t window_below_split = 0;
      for (int64_t c = 0; c < n; ++c) window_below_split += rk[c] < split;
      below[s] = below_split - window_below_split;
      used[s] = n;
    });
    if (overflow) return false;
    int64_t below_total = 0;
    slot_offsets_.assign(static_cast<size_t>(slots_) + 1, 0);
    for (int64_t s = 0; s < slots_; ++s) {
      below_total += below[s];
      slot_offsets_[s + 1] = slot_offsets_[s] + used[s];
    }
    if (k <= below_total || k > below_total + slot_offsets_.back()) return false;
    // The slots' recordings moved together, in block order.
    for (int64_t s = 1; s < slots_; ++s) {
      std::memmove(candidates_ + slot_offsets_[s], candidates_ + s * window_capacity_,
                   static_cast<size_t>(used[s]) * sizeof(U));
      std::memmove(candidate_blocks_ + slot_offsets_[s], candidate_blocks_ + s * window_capacity_,
                   static_cast<size_t>(used[s]) * sizeof(uint32_t));
    }
    find_threshold(candidates_, slot_offsets_.back(), k - below_total);
    rewrite_misjudged_blocks(split);
    return true;
  }

  // The window's blocks that the split put on the wrong side of the k-th key.
  void rewrite_misjudged_blocks(U split) {
    const bool partial = zeros_ < bh_ * bw_;
    for_each_slot([&](int64_t s, int64_t begin, int64_t) {
      // Listed first, without branches (whether a window block is selected
      // is a coin toss), then rewritten with their mask requested ahead:
      // they are few and scattered, each a cache miss.
      const int64_t first = slot_offsets_[s];
      uint32_t* const misjudged = misjudged_ + first;
      int64_t count = 0;
      for (int64_t c = first; c < slot_offsets_[s + 1]; ++c) {
        misjudged[count] = static_cast<uint32_t>(c - first);
        count += candidate_selected(c) != (candidates_[c] < split);
      }
      const auto origin = [&](int64_t i) {  // block misjudged[i]'s first row and column
        const int64_t block = begin * block_cols_ + candidate_blocks_[first + misjudged[i]];
        return std::pair<int64_t, int64_t>{block / block_cols_ * bh_, block % block_cols_ * bw_};
      };
      constexpr int64_t kAhead = 16;
      BlockRowScratch scratch(*this);
      for (int64_t i = 0; i < count; ++i) {
        if (i + kAhead < count) {
          const auto [r, c] = origin(i + kAhead);
          __builtin_prefetch(mask_ + r * cols_ + c, 1);
        }
        const bool selected = candidate_selected(first + misjudged[i]);
        const auto [r0, c0] = origin(i);
        const int64_t h = std::min(rows_, r0 + bh_) - r0;
        const int64_t w = std::min(cols_, c0 + bw_) - c0;
        uint8_t* m = mask_ + r0 * cols_ + c0;
        // Kept: ones. Selected: zeros, or ones less the smallest elements.
        const int fill = (!selected || partial) ? 1 : 0;
        for (int64_t row = 0; row < h; ++row) std::memset(m + row * cols_, fill, static_cast<size_t>(w));
        if (selected && partial) sparsify_block(x_ + r0 * cols_ + c0, h, w, m, scratch.element_keys, scratch.order);
      }
    });
  }

  // Points candidates_, candidate_blocks_ and misjudged_ at room for n each
  // in the workspace, grown when needed: kept from step to step, its pages
  // are not faulted in again.
  void reserve_candidates(int64_t n) {
    const auto count = static_cast<size_t>(n);
    const size_t bytes = count * (sizeof(U) + 2 * sizeof(uint32_t));
    if (workspace_.size() < bytes) {
      workspace_.clear();
      workspace_.shrink_to_fit();
      workspace_.resize(bytes);
    }
    // operator new's alignment suits U; the uint32_t arrays follow the keys.
    candidates_ = reinterpret_cast<U*>(workspace_.data());
    candidate_blocks_ = reinterpret_cast<uint32_t*>(candidates_ + count);
    misjudged_ = candidate_blocks_ + count;
  }

  // The order keys of n norms. (Separate loops with restricted pointers
  // vectorize: a uint8_t store may alias anything.)
  static void to_keys(const T* __restrict norms, U* __restrict keys, int64_t n) {
    for (int64_t i = 0; i < n; ++i) keys[i] = order_key(norms[i]);
  }

  // Per key: keep (at or above the split), in the window (between its
  // ends); returns how many are below the split.
  static int64_t classify(const U* __restrict keys, U split, U lo, U width, uint8_t* __restrict keep,
                          uint8_t* __restrict in_window, int64_t n) {
    uint32_t below = 0;  // n < 2^32: a row
    for (int64_t i = 0; i < n; ++i) {
      keep[i] = keys[i] >= split;
      below += keys[i] < split;
    }
    for (int64_t i = 0; i < n; ++i) in_window[i] = static_cast<U>(keys[i] - lo) <= width;
    return below;
  }

  // Pass A of the bins' path: the top 16 bits of each block's norm key (its
  // bin) into the mask's memory, counted in a histogram per slot.
  // Each block's norm is the mean magnitude over its elements inside the
  // data, summed in T row by row, left to right, as the reference's
  // avg_pool2d does, so that equal inputs give bit-equal norms.
  void compute_bins() {
    histograms_.assign(static_cast<size_t>(slots_) * kBins, 0);
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      std::vector<T> acc(static_cast<size_t>(block_cols_));
      std::vector<Bin> bins(static_cast<size_t>(block_cols_));
      uint32_t* hist = histograms_.data() + s * static_cast<int64_t>(kBins);
      for (int64_t br = begin; br < end; ++br) {
        block_row_norms(br, acc.data());
        for (int64_t bc = 0; bc < block_cols_; ++bc) bins[bc] = bin_of(order_key(acc[bc]));
        for (int64_t bc = 0; bc < block_cols_; ++bc) ++hist[bins[bc]];
        std::memcpy(bin_bytes(br), bins.data(), static_cast<size_t>(block_cols_) * sizeof(Bin));
      }
    });
  }

  static Bin bin_of(U key) { return static_cast<Bin>(key >> (kKeyBits - kBinBits)); }

  // The norms of one block row's blocks into acc.
  void block_row_norms(int64_t br, T* acc) const {
    std::fill(acc, acc + block_cols_, T(0));
    const int64_t r0 = br * bh_;
    const int64_t r1 = std::min(rows_, r0 + bh_);
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = x_ + r * cols_;
      switch (bw_) {
        case 1: accumulate_row<1>(row, acc, full_cols_); break;
        case 2: accumulate_row<2>(row, acc, full_cols_); break;
        case 3: accumulate_row<3>(row, acc, full_cols_); break;
        case 4: accumulate_row<4>(row, acc, full_cols_); break;
        case 8: accumulate_row<8>(row, acc, full_cols_); break;
        default: accumulate_row_any(row, acc, full_cols_); break;
      }
      if (last_width_ > 0) {
        T sum = acc[full_cols_];
        for (int64_t c = full_cols_ * bw_; c < cols_; ++c) sum += magnitude<L2>(row[c]);
        acc[full_cols_] = sum;
      }
    }
    divide(acc, full_cols_, (r1 - r0) * bw_);
    if (last_width_ > 0) divide(acc + full_cols_, 1, (r1 - r0) * last_width_);
  }

  // x / count, as a product when count is a power of two: the same value,
  // since scaling by a power of two rounds identically, and much cheaper.
  static void divide(T* acc, int64_t n, int64_t count) {
    const T c = static_cast<T>(count);
    if ((count & (count - 1)) == 0) {
      const T inverse = T(1) / c;
      for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] * inverse;
    } else {
      for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] / c;
    }
  }

  // Asks for the first row of block b's data in the cache.
  void prefetch_block(int64_t b) const {
    __builtin_prefetch(x_ + (b / block_cols_) * bh_ * cols_ + (b % block_cols_) * bw_);
  }

  // The norm key of one block, exactly as block_row_norms computes it.
  U block_key(int64_t br, int64_t bc) const {
    const int64_t r0 = br * bh_;
    const int64_t r1 = std::min(rows_, r0 + bh_);
    const int64_t c0 = bc * bw_;
    const int64_t c1 = std::min(cols_, c0 + bw_);
    T sum = T(0);
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = c0; c < c1; ++c) sum += magnitude<L2>(x_[r * cols_ + c]);
    }
    T norm = sum;
    divide(&norm, 1, (r1 - r0) * (c1 - c0));
    return order_key(norm);
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

  // The bin of the k-th smallest key, the keys below it, and its rank in it.
  void find_bin(int64_t k) {
    std::vector<int64_t> total(kBins, 0);
    for (int64_t s = 0; s < slots_; ++s) {
      const uint32_t* hist = histograms_.data() + s * static_cast<int64_t>(kBins);
      for (size_t b = 0; b < kBins; ++b) total[b] += hist[b];
    }
    int64_t rank = k;
    size_t bin = 0;
    while (total[bin] < rank) rank -= total[bin++];
    selected_bin_ = static_cast<Bin>(bin);
    rank_in_bin_ = rank;
    // Where each slot's candidates go in the compact array: in block order.
    slot_offsets_.assign(static_cast<size_t>(slots_) + 1, 0);
    for (int64_t s = 0; s < slots_; ++s)
      slot_offsets_[s + 1] = slot_offsets_[s] + histograms_[s * static_cast<int64_t>(kBins) + bin];
    histograms_ = {};
  }

  // Pass C: the exact keys of the blocks in the selected bin.
  void collect_candidates() {
    reserve_candidates(slot_offsets_.back());
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      std::vector<Bin> bins(static_cast<size_t>(block_cols_));
      U* out = candidates_ + slot_offsets_[s];
      uint32_t* out_block = candidate_blocks_ + slot_offsets_[s];
      for (int64_t br = begin; br < end; ++br) {
        std::memcpy(bins.data(), bin_bytes(br), static_cast<size_t>(block_cols_) * sizeof(Bin));
        for (int64_t bc = 0; bc < block_cols_; ++bc) {
          if (bins[bc] == selected_bin_) {
            *out++ = block_key(br, bc);
            *out_block++ = static_cast<uint32_t>((br - begin) * block_cols_ + bc);
          }
        }
      }
    });
  }

  // Finds the k-th smallest of keys[0, n) (1-based) without sorting or
  // copying: a radix selection of its key, digit by digit from the most
  // significant, then a scan for the position of the last selected tie.
  void find_threshold(const U* keys, int64_t n, int64_t k) {
    constexpr int kDigitBits = 11;
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
        if (prefix_mask == 0) {
          for (int64_t b = begin; b < end; ++b) ++local[(keys[b] >> shift) & digit_mask];
        } else {
          for (int64_t b = begin; b < end; ++b) {
            if ((keys[b] & prefix_mask) == prefix) ++local[(keys[b] >> shift) & digit_mask];
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
      if (keys[b] == threshold_ && --ties_needed == 0) {
        last_selected_tie_ = b;
        break;
      }
    }
  }

  // Whether candidate c (an index into candidates_) is selected.
  bool candidate_selected(int64_t c) const {
    const U key = candidates_[c];
    return (key < threshold_) | ((key == threshold_) & (c <= last_selected_tie_));  // no branches
  }

  // One slot's buffers for writing block rows.
  struct BlockRowScratch {
    explicit BlockRowScratch(const BlockNormMasker& m)
        : keep(static_cast<size_t>(m.block_cols_)),
          partial_blocks(static_cast<size_t>(m.block_cols_)),
          element_keys(static_cast<size_t>(m.bh_ * m.bw_)),
          order(static_cast<size_t>(m.bh_ * m.bw_)),
          expanded(static_cast<size_t>(m.full_cols_)) {}
    std::vector<uint8_t> keep;  // per block of the row: 1 kept, 0 selected
    std::vector<int64_t> partial_blocks;
    std::vector<U> element_keys;
    std::vector<int64_t> order;
    std::vector<uint32_t> expanded;  // a row's mask words, for 4-wide blocks
  };

  // Writes block row br's mask rows from scratch.keep: a selected block is
  // zeroed whole, or loses its smallest elements when zeros_ < its size.
  void write_block_row(int64_t br, BlockRowScratch& scratch) const {
    const int64_t r0 = br * bh_;
    const int64_t h = std::min(rows_, r0 + bh_) - r0;
    std::vector<uint8_t>& keep = scratch.keep;
    int64_t num_partial = 0;
    if (zeros_ < bh_ * bw_) {
      for (int64_t bc = 0; bc < block_cols_; ++bc) {
        scratch.partial_blocks[num_partial] = bc;
        num_partial += !keep[bc];
      }
      std::fill(keep.begin(), keep.end(), uint8_t{1});
    }
    // The block row's first row, then copies of it; the smallest elements
    // of the partial blocks are zeroed afterwards.
    uint8_t* first = mask_ + r0 * cols_;
    write_first_row(keep.data(), scratch.expanded, first);
    for (int64_t i = 1; i < h; ++i) std::memcpy(first + i * cols_, first, static_cast<size_t>(cols_));
    for (int64_t p = 0; p < num_partial; ++p) {
      const int64_t c0 = scratch.partial_blocks[p] * bw_;
      const int64_t w = std::min(cols_, c0 + bw_) - c0;
      sparsify_block(x_ + r0 * cols_ + c0, h, w, first + c0, scratch.element_keys, scratch.order);
    }
  }

  // Pass B of the bins' path (or every block selected).
  void write_mask() {
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      BlockRowScratch scratch(*this);
      std::vector<Bin> bins(static_cast<size_t>(block_cols_));
      std::vector<uint8_t>& keep = scratch.keep;
      int64_t c = select_all_ ? 0 : slot_offsets_[s];
      const int64_t c_end = select_all_ ? 0 : slot_offsets_[s + 1];
      for (int64_t br = begin; br < end; ++br) {
        if (select_all_) {
          std::fill(keep.begin(), keep.end(), uint8_t{0});
        } else {
          std::memcpy(bins.data(), bin_bytes(br), static_cast<size_t>(block_cols_) * sizeof(Bin));
          // Below the selected bin: selected; in it or above: kept, until the
          // candidates (the blocks in it, in order) say otherwise.
          const Bin b = selected_bin_;
          for (int64_t bc = 0; bc < block_cols_; ++bc) keep[bc] = bins[bc] >= b;
          const int64_t row_begin = (br - begin) * block_cols_;
          for (; c < c_end && candidate_blocks_[c] < row_begin + block_cols_; ++c) {
            if (candidate_selected(c)) keep[candidate_blocks_[c] - row_begin] = 0;
          }
        }
        write_block_row(br, scratch);
      }
    });
  }

  void write_first_row(const uint8_t* keep, std::vector<uint32_t>& expanded, uint8_t* first) const {
    if (bw_ == 1) {
      std::memcpy(first, keep, static_cast<size_t>(cols_));
      return;
    }
    int64_t bc = 0;
    if (bw_ == 4) {
      // Four copies of each byte, built in whole words so that it vectorizes.
      uint32_t* words = expanded.data();
      for (; bc < full_cols_; ++bc) words[bc] = uint32_t{keep[bc]} * 0x01010101u;
      std::memcpy(first, words, static_cast<size_t>(full_cols_) * 4);
    }
    for (; bc < block_cols_; ++bc) {
      const int64_t c0 = bc * bw_;
      const int64_t w = std::min(cols_, c0 + bw_) - c0;
      std::memset(first + c0, keep[bc], static_cast<size_t>(w));
    }
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
  std::vector<unsigned char>& workspace_;  // the caller's, kept from call to call
  const int64_t block_rows_, block_cols_;
  const int64_t full_cols_;   // blocks wholly inside the data's columns
  const int64_t last_width_;  // the width of the last, partial one (0: none)

  int64_t slots_ = 1;
  U window_lo_ = 0, window_hi_ = 0;  // the keys predicted around the k-th
  U window_split_ = 0;               // the k-th's estimate
  int64_t window_capacity_ = 0;      // window blocks a slot may record
  bool bins_in_mask_ = false;
  std::vector<Bin> separate_bins_;      // when the mask has no room for them
  std::vector<uint32_t> histograms_;    // kBins per slot
  std::vector<int64_t> slot_offsets_;   // each slot's first candidate
  Bin selected_bin_ = 0;
  int64_t rank_in_bin_ = 0;
  // The exact keys of the window's or the selected bin's blocks, in block
  // order, slot_offsets_[s] the first of slot s; and those blocks' indices
  // from their slot's first block.
  U* candidates_ = nullptr;
  uint32_t* candidate_blocks_ = nullptr;
  uint32_t* misjudged_ = nullptr;  // window blocks to rewrite, per slot from its first
  bool select_all_ = false;
  U threshold_ = 0;
  int64_t last_selected_tie_ = -1;  // in candidates_
};

template <typename T>
void run_masker(const T* x, int64_t rows, int64_t cols, const BlockNormMaskParams& params,
                uint8_t* mask, std::vector<unsigned char>& workspace) {
  if (params.l2) {
    BlockNormMasker<T, true>(x, rows, cols, params, mask, workspace).run();
  } else {
    BlockNormMasker<T, false>(x, rows, cols, params, mask, workspace).run();
  }
}
}  // namespace

void visit_block_norm_keys(const at::Tensor& data, int64_t rows, int64_t cols, const BlockNormMaskParams& params,
                           std::vector<uint64_t>& buffer, const std::function<void(const uint64_t*, int64_t)>& visit) {
  TORCH_INTERNAL_ASSERT(data.is_contiguous() && data.device().is_cpu());
  TORCH_INTERNAL_ASSERT(data.numel() == rows * cols);
  if (rows * cols == 0) return;
  // One-row blocks that tile each row are runs of the flat data whatever the
  // row length: long rows (1-D data) are cut into shorter ones, so that a
  // chunk of whole block rows stays small.
  constexpr int64_t kChunkBlocks = int64_t{1} << 16;
  if (params.block_height == 1 && cols % params.block_width == 0 && cols / params.block_width > kChunkBlocks) {
    const int64_t blocks_per_row = cols / params.block_width;
    for (int64_t g = (blocks_per_row + kChunkBlocks - 1) / kChunkBlocks; g <= blocks_per_row; ++g) {
      if (blocks_per_row % g == 0) {
        rows *= g;
        cols /= g;
        break;
      }
    }
  }
  const auto run = [&](auto* x) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(x)>>;
    const auto each_chunk = [&](const auto& masker) {
      const int64_t block_cols = masker.block_cols();
      const int64_t chunk_rows = std::max<int64_t>(1, kChunkBlocks / block_cols);
      buffer.resize(static_cast<size_t>(std::min(masker.block_rows(), chunk_rows) * block_cols));
      for (int64_t br = 0; br < masker.block_rows(); br += chunk_rows) {
        const int64_t end = std::min(masker.block_rows(), br + chunk_rows);
        masker.norm_keys(br, end, buffer.data());
        visit(buffer.data(), (end - br) * block_cols);
      }
    };
    std::vector<unsigned char> unused;
    if (params.l2) {
      each_chunk(BlockNormMasker<T, true>(x, rows, cols, params, nullptr, unused));
    } else {
      each_chunk(BlockNormMasker<T, false>(x, rows, cols, params, nullptr, unused));
    }
  };
  if (data.scalar_type() == at::kDouble) {
    run(data.data_ptr<double>());
  } else {
    TORCH_INTERNAL_ASSERT(data.scalar_type() == at::kFloat);
    run(data.data_ptr<float>());
  }
}

int64_t blocks_to_select(double sparsity_level, int64_t num_blocks) {
  if (!(sparsity_level > 0.0) || num_blocks == 0) return 0;
  if (sparsity_level >= 1.0) return num_blocks;
  // nearbyint in the default rounding mode rounds half to even, as Python's round.
  const double k = std::nearbyint(sparsity_level * static_cast<double>(num_blocks));
  return std::clamp<int64_t>(static_cast<int64_t>(k), 0, num_blocks);
}

void block_norm_mask(const at::Tensor& data, int64_t rows, int64_t cols,
                     const BlockNormMaskParams& params, at::Tensor& mask,
                     std::vector<unsigned char>& workspace) {
  TORCH_INTERNAL_ASSERT(data.is_contiguous() && data.device().is_cpu());
  TORCH_INTERNAL_ASSERT(mask.is_contiguous() && mask.scalar_type() == at::kByte);
  TORCH_INTERNAL_ASSERT(data.numel() == rows * cols && mask.numel() == rows * cols);
  if (rows * cols == 0) return;
  // With one-row blocks that tile each row, blocks are runs of the flat data
  // in block-index order whatever the row length: longer rows (a multiple of
  // cols) give the same mask with less work per row.
  if (params.block_height == 1 && cols % params.block_width == 0) {
    constexpr int64_t kLongRow = 16384;
    for (int64_t g = std::min(rows, std::max<int64_t>(1, kLongRow / cols)); g > 1; --g) {
      if (rows % g == 0) {
        rows /= g;
        cols *= g;
        break;
      }
    }
  }
  uint8_t* m = mask.data_ptr<uint8_t>();
  if (data.scalar_type() == at::kDouble) {
    run_masker<double>(data.data_ptr<double>(), rows, cols, params, m, workspace);
  } else {
    TORCH_INTERNAL_ASSERT(data.scalar_type() == at::kFloat);
    run_masker<float>(data.data_ptr<float>(), rows, cols, params, m, workspace);
  }
}

}  // namespace sparsity::detail
