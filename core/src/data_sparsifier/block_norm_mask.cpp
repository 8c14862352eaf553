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

template <typename T, bool L2>
class BlockNormMasker {
  using U = KeyOf<T>;
  static constexpr int kKeyBits = static_cast<int>(sizeof(U) * 8);
  static constexpr int kBinBits = 16;
  static constexpr size_t kBins = size_t{1} << kBinBits;
  using Bin = uint16_t;

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
        block_cols_((cols + bw_ - 1) / bw_),
        full_cols_(cols / bw_),
        last_width_(cols - (cols / bw_) * bw_) {}

  void run() {
    const int64_t num_blocks = block_rows_ * block_cols_;
    const int64_t k = blocks_to_select(level_, num_blocks);
    if (k == 0 || zeros_ == 0) {
      std::memset(mask_, 1, static_cast<size_t>(rows_ * cols_));
      return;
    }
    plan_slots(num_blocks);
    if (k < num_blocks) {
      place_bins();
      predict_window(k, num_blocks);
      compute_bins();
      find_bin(k);
      if (!take_recorded_candidates()) collect_candidates();
      find_threshold(candidates_.data(), static_cast<int64_t>(candidates_.size()), rank_in_bin_);
    } else {
      select_all_ = true;
    }
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

  // The bins most likely to hold the k-th key, from a sample of blocks spread
  // over the data: pass A keeps the exact keys of the blocks in them, which
  // spares pass C when the k-th key's bin is among them (it almost always is;
  // when not, or when too many blocks fall in them, pass C runs).
  void predict_window(int64_t k, int64_t num_blocks) {
    constexpr int64_t kSample = 4096;
    const int64_t n = std::min(num_blocks, kSample);
    std::vector<Bin> sample(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = (2 * i + 1) * num_blocks / (2 * n);
      sample[i] = bin_of(block_key(b / block_cols_, b % block_cols_));
    }
    std::sort(sample.begin(), sample.end());
    const double p = static_cast<double>(k) / static_cast<double>(num_blocks);
    const double margin = 4.0 * std::sqrt(static_cast<double>(n) * p * (1.0 - p)) + 2.0;
    const auto at = [&](double r) { return sample[std::clamp<int64_t>(static_cast<int64_t>(r), 0, n - 1)]; };
    window_lo_ = at(std::floor(p * n - margin));
    window_hi_ = at(std::ceil(p * n + margin));
    const int64_t in_window = std::upper_bound(sample.begin(), sample.end(), window_hi_) -
                              std::lower_bound(sample.begin(), sample.end(), window_lo_);
    // Expected blocks per slot in the window, with room for the sample's error.
    const int64_t expected = in_window * num_blocks / n;
    const int64_t cap = num_blocks / 8 + 1;
    record_ = expected <= cap;
    record_capacity_ = std::min<int64_t>(2 * expected / slots_ + 1024, cap) + block_cols_;
    recorded_.assign(static_cast<size_t>(slots_), {});
  }

  // Pass A. Each block's norm is the mean magnitude over its elements inside
  // the data, summed in T row by row, left to right, as the reference's
  // avg_pool2d does, so that equal inputs give bit-equal norms.
  void compute_bins() {
    histograms_.assign(static_cast<size_t>(slots_) * kBins, 0);
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      std::vector<T> acc(static_cast<size_t>(block_cols_));
      std::vector<Bin> bins(static_cast<size_t>(block_cols_));
      std::vector<U> keys(static_cast<size_t>(block_cols_));
      uint32_t* hist = histograms_.data() + s * static_cast<int64_t>(kBins);
      Recorded& rec = recorded_[s];
      bool recording = record_;
      if (recording) {
        rec.keys.resize(static_cast<size_t>(record_capacity_));
        rec.blocks.resize(static_cast<size_t>(record_capacity_));
      }
      int64_t used = 0;
      for (int64_t br = begin; br < end; ++br) {
        block_row_norms(br, acc.data());
        for (int64_t bc = 0; bc < block_cols_; ++bc) keys[bc] = order_key(acc[bc]);
        for (int64_t bc = 0; bc < block_cols_; ++bc) bins[bc] = bin_of(keys[bc]);
        for (int64_t bc = 0; bc < block_cols_; ++bc) ++hist[bins[bc]];
        std::memcpy(bin_bytes(br), bins.data(), static_cast<size_t>(block_cols_) * sizeof(Bin));
        if (!recording) continue;
        if (used + block_cols_ > record_capacity_) {  // more than the sample said: give up
          recording = false;
          rec.overflow = true;
          continue;
        }
        // Appended without branches: written always, kept when in the window.
        U* rk = rec.keys.data();
        uint32_t* rx = rec.blocks.data();
        const auto first_block = static_cast<uint32_t>((br - begin) * block_cols_);
        for (int64_t bc = 0; bc < block_cols_; ++bc) {
          rk[used] = keys[bc];
          rx[used] = first_block + static_cast<uint32_t>(bc);
          used += (bins[bc] >= window_lo_) & (bins[bc] <= window_hi_);
        }
      }
      if (record_) {
        rec.keys.resize(static_cast<size_t>(used));
        rec.blocks.resize(static_cast<size_t>(used));
      }
    });
  }

  // The candidates from pass A's recordings, when they hold the selected bin.
  bool take_recorded_candidates() {
    const bool usable = record_ && window_lo_ <= selected_bin_ && selected_bin_ <= window_hi_ &&
                        std::none_of(recorded_.begin(), recorded_.end(), [](const Recorded& r) { return r.overflow; });
    if (usable) {
      candidates_.resize(static_cast<size_t>(slot_offsets_.back()));
      candidate_blocks_.resize(candidates_.size());
      for_each_slot([&](int64_t s, int64_t begin, int64_t) {
        U* out = candidates_.data() + slot_offsets_[s];
        int64_t* out_block = candidate_blocks_.data() + slot_offsets_[s];
        const Recorded& rec = recorded_[s];
        for (size_t i = 0; i < rec.keys.size(); ++i) {
          if (bin_of(rec.keys[i]) == selected_bin_) {
            *out++ = rec.keys[i];
            *out_block++ = begin * block_cols_ + rec.blocks[i];
          }
        }
      });
    }
    recorded_ = {};
    return usable;
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
    candidates_.resize(static_cast<size_t>(slot_offsets_.back()));
    candidate_blocks_.resize(candidates_.size());
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      std::vector<Bin> bins(static_cast<size_t>(block_cols_));
      U* out = candidates_.data() + slot_offsets_[s];
      int64_t* out_block = candidate_blocks_.data() + slot_offsets_[s];
      for (int64_t br = begin; br < end; ++br) {
        std::memcpy(bins.data(), bin_bytes(br), static_cast<size_t>(block_cols_) * sizeof(Bin));
        for (int64_t bc = 0; bc < block_cols_; ++bc) {
          if (bins[bc] == selected_bin_) {
            *out++ = block_key(br, bc);
            *out_block++ = br * block_cols_ + bc;
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
    return key < threshold_ || (key == threshold_ && c <= last_selected_tie_);
  }

  // Pass B.
  void write_mask() {
    const int64_t block_size = bh_ * bw_;
    // A selected block is zeroed whole, or loses its smallest elements
    // (`partial`); the others are kept.
    const bool partial = zeros_ < block_size;
    for_each_slot([&](int64_t s, int64_t begin, int64_t end) {
      std::vector<Bin> bins(static_cast<size_t>(block_cols_));
      std::vector<uint8_t> keep(static_cast<size_t>(block_cols_));
      std::vector<int64_t> partial_blocks(static_cast<size_t>(block_cols_));
      std::vector<U> keys(static_cast<size_t>(block_size));
      std::vector<int64_t> order(static_cast<size_t>(block_size));
      int64_t c = select_all_ ? 0 : slot_offsets_[s];
      const int64_t c_end = select_all_ ? 0 : slot_offsets_[s + 1];
      for (int64_t br = begin; br < end; ++br) {
        const int64_t r0 = br * bh_;
        const int64_t h = std::min(rows_, r0 + bh_) - r0;
        if (select_all_) {
          std::fill(keep.begin(), keep.end(), uint8_t{0});
        } else {
          std::memcpy(bins.data(), bin_bytes(br), static_cast<size_t>(block_cols_) * sizeof(Bin));
          // Below the selected bin: selected; in it or above: kept, until the
          // candidates (the blocks in it, in order) say otherwise.
          const Bin b = selected_bin_;
          for (int64_t bc = 0; bc < block_cols_; ++bc) keep[bc] = bins[bc] >= b;
          const int64_t row_end = (br + 1) * block_cols_;
          for (; c < c_end && candidate_blocks_[c] < row_end; ++c) {
            if (candidate_selected(c)) keep[candidate_blocks_[c] - br * block_cols_] = 0;
          }
        }
        int64_t num_partial = 0;
        if (partial) {
          for (int64_t bc = 0; bc < block_cols_; ++bc) {
            partial_blocks[num_partial] = bc;
            num_partial += !keep[bc];
          }
          std::fill(keep.begin(), keep.end(), uint8_t{1});
        }
        // The block row's first row, then copies of it; the smallest elements
        // of the partial blocks are zeroed afterwards.
        uint8_t* first = mask_ + r0 * cols_;
        write_first_row(keep.data(), first);
        for (int64_t i = 1; i < h; ++i) std::memcpy(first + i * cols_, first, static_cast<size_t>(cols_));
        for (int64_t p = 0; p < num_partial; ++p) {
          const int64_t c0 = partial_blocks[p] * bw_;
          const int64_t w = std::min(cols_, c0 + bw_) - c0;
          sparsify_block(x_ + r0 * cols_ + c0, h, w, first + c0, keys, order);
        }
      }
    });
  }

  void write_first_row(const uint8_t* keep, uint8_t* first) const {
    if (bw_ == 1) {
      std::memcpy(first, keep, static_cast<size_t>(cols_));
      return;
    }
    int64_t bc = 0;
    if (bw_ == 4) {
      for (; bc < full_cols_; ++bc) {
        const uint32_t v = uint32_t{keep[bc]} * 0x01010101u;
        std::memcpy(first + bc * 4, &v, 4);
      }
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
  const int64_t block_rows_, block_cols_;
  const int64_t full_cols_;   // blocks wholly inside the data's columns
  const int64_t last_width_;  // the width of the last, partial one (0: none)

  int64_t slots_ = 1;
  struct Recorded {  // pass A's keys of the blocks in the predicted window
    std::vector<U> keys;
    std::vector<uint32_t> blocks;  // from the slot's first block (fewer than 2^32)
    bool overflow = false;
  };
  Bin window_lo_ = 0, window_hi_ = 0;
  bool record_ = false;
  int64_t record_capacity_ = 0;
  std::vector<Recorded> recorded_;
  bool bins_in_mask_ = false;
  std::vector<Bin> separate_bins_;      // when the mask has no room for them
  std::vector<uint32_t> histograms_;    // kBins per slot
  std::vector<int64_t> slot_offsets_;   // each slot's first candidate
  Bin selected_bin_ = 0;
  int64_t rank_in_bin_ = 0;
  std::vector<U> candidates_;  // exact keys of the selected bin, in block order
  std::vector<int64_t> candidate_blocks_;  // and their block indices
  bool select_all_ = false;
  U threshold_ = 0;
  int64_t last_selected_tie_ = -1;  // in candidates_
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
    run_masker<double>(data.data_ptr<double>(), rows, cols, params, m);
  } else {
    TORCH_INTERNAL_ASSERT(data.scalar_type() == at::kFloat);
    run_masker<float>(data.data_ptr<float>(), rows, cols, params, m);
  }
}

}  // namespace sparsity::detail
