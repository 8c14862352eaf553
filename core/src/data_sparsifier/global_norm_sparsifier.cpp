#include "sparsity/data_sparsifier/global_norm_sparsifier.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "block_norm_mask.h"
#include "sparsity/config_error.h"

namespace sparsity {

namespace {

constexpr const char* kType = "GlobalNormSparsifier";

// DataNormSparsifier's option checks name their type; ours are the same
// checks, reported under this type's name.
std::string renamed(const std::string& message) {
  static const std::string base = "DataNormSparsifier";
  return message.rfind(base, 0) == 0 ? kType + message.substr(base.size()) : message;
}

template <typename F>
auto with_our_name(const F& f) {
  try {
    return f();
  } catch (const ConfigError& e) {
    throw ConfigError(renamed(e.message()), e.key_path(), e.at());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(renamed(e.what()));
  }
}

// One radix selection digit at a time: among the keys whose top `known` bits
// are `prefix`, the histogram of the next 16 bits finds the digit of the
// rank-th smallest key. Keys are fed once per digit, from wherever they are.
struct RadixSelect {
  static constexpr int kDigitBits = 16;

  uint64_t prefix = 0;
  int known = 0;          // bits of the wanted key found so far
  int64_t rank = 0;       // its rank (1-based) among the keys matching prefix
  int64_t matching = 0;   // how many keys match prefix
  std::vector<int64_t> hist;

  bool matches(uint64_t key) const { return known == 0 || (key >> (64 - known)) == prefix; }
  // Keys below every key that matches prefix.
  bool below(uint64_t key) const { return known != 0 && (key >> (64 - known)) < prefix; }
  void start() { hist.assign(size_t{1} << kDigitBits, 0); }
  // Adds keys[0, n) to the histogram: in parallel for long runs, each task
  // into its own histogram (ATen makes about one task per thread).
  void count(const uint64_t* keys, int64_t n) {
    constexpr int64_t kGrain = int64_t{1} << 18;
    const auto count_into = [&](std::vector<int64_t>& into, int64_t begin, int64_t end) {
      const int shift = 64 - known - kDigitBits;
      constexpr uint64_t kDigitMask = (uint64_t{1} << kDigitBits) - 1;
      for (int64_t i = begin; i < end; ++i) {
        if (matches(keys[i])) ++into[(keys[i] >> shift) & kDigitMask];
      }
    };
    if (n < 2 * kGrain || at::get_num_threads() == 1) return count_into(hist, 0, n);
    std::mutex merge;
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> local(hist.size(), 0);
      count_into(local, begin, end);
      std::lock_guard<std::mutex> lock(merge);
      for (size_t d = 0; d < hist.size(); ++d) hist[d] += local[d];
    });
  }
  void narrow() {
    size_t digit = 0;
    while (hist[digit] < rank) rank -= hist[digit++];
    matching = hist[digit];
    prefix = (prefix << kDigitBits) | digit;
    known += kDigitBits;
  }
};

// The 2-D view DataNormSparsifier works on: 0-D and 1-D data is one row, N-D
// data (dim 0, product of the others).
std::pair<int64_t, int64_t> matrix_view(const at::Tensor& data) {
  if (data.dim() <= 1) return {1, data.numel()};
  const int64_t rows = data.size(0);
  return {rows, rows == 0 ? data.numel() : data.numel() / rows};
}

// What a step knows about one name.
struct Ranked {
  std::string name;
  at::Tensor data;
  detail::BlockNormMaskParams params;  // block clipped to the data: the same norms, fewer index worries
  int64_t rows = 0, cols = 0, blocks = 0;
  int64_t below = 0;  // blocks whose norm is below the threshold
  int64_t ties = 0;   // blocks whose norm is the threshold
  size_t candidates_end = 0;  // one past its last key among the candidates (none: 0)
};

}  // namespace

GlobalNormSparsifier::GlobalNormSparsifier(DataNormSparsifierOptions options)
    : DataNormSparsifier(with_our_name([&] {
        (void)options.to_config();
        return options;
      })) {}

DataNormSparsifierOptions GlobalNormSparsifier::options_from_config(const Config& args) {
  return with_our_name([&] { return DataNormSparsifierOptions::from_config(args); });
}

void GlobalNormSparsifier::update_masks(const std::vector<std::string>& names) {
  if (names.empty()) return;
  // Everything is checked before any mask changes.
  // One level and one norm for all: what the names agree on. (Checked here,
  // not in add_data: a saved state or a scheduler's step may carry a level
  // other than the defaults', and the scheduler writes the names one by one.)
  const Config& first = data_group(names.front());
  const double level = first.get<double>("sparsity_level");
  const std::string norm = first.get_or<std::string>("norm", "L1");
  std::vector<Ranked> ranked;
  ranked.reserve(names.size());
  int64_t total = 0, largest = 0;
  for (const auto& name : names) {
    const Config& config = data_group(name);
    const double own = config.get<double>("sparsity_level");
    if (own != level) {
      throw std::invalid_argument(fmt::format("{}: data '{}' has sparsity_level {} and data '{}' {}; all data is "
                                              "ranked together at one level: set it on the sparsifier (or "
                                              "schedule it), not per data",
                                              kType, name, own, names.front(), level));
    }
    const std::string own_norm = config.get_or<std::string>("norm", "L1");
    if (own_norm != norm) {
      throw std::invalid_argument(fmt::format("{}: data '{}' has norm {} and data '{}' {}; all data is ranked by "
                                              "one norm",
                                              kType, name, own_norm, names.front(), norm));
    }
    Ranked r;
    r.name = name;
    r.data = get_data(name);
    validate_data(name, r.data, config);
    std::tie(r.rows, r.cols) = matrix_view(r.data);
    const auto shape = config.get<std::vector<int64_t>>("sparse_block_shape");
    r.params.block_height = std::min(shape[0], std::max<int64_t>(r.rows, 1));
    r.params.block_width = std::min(shape[1], std::max<int64_t>(r.cols, 1));
    r.params.l2 = norm_from_string(own_norm) == Norm::L2;
    r.blocks = (r.rows + r.params.block_height - 1) / r.params.block_height *
               ((r.cols + r.params.block_width - 1) / r.params.block_width);
    total += r.blocks;
    largest = std::max(largest, r.blocks);
    ranked.push_back(std::move(r));
  }

  // The keys of one tensor after the other, in insertion order, a chunk at a
  // time: no pass holds more than a chunk of them.
  const auto for_each_keys = [&](const auto& f) {
    for (Ranked& r : ranked) {
      at::Tensor input = r.data.detach();
      if (input.scalar_type() != at::kDouble) input = input.to(at::kFloat);
      input = input.to(at::kCPU).contiguous();
      detail::visit_block_norm_keys(input, r.rows, r.cols, r.params, keys_,
                                    [&](const uint64_t* keys, int64_t n) { f(r, keys, n); });
    }
  };

  const int64_t k = detail::blocks_to_select(level, total);
  if (k > 0 && k < total) {
    RadixSelect select;
    select.rank = k;
    select.matching = total;
    // Digits from the data until the keys left fit in about one tensor's
    // keys (usually after one digit); then the rest from those keys alone.
    const int64_t room = std::max<int64_t>(largest, int64_t{1} << RadixSelect::kDigitBits);
    while (select.known < 64 && select.matching > room) {
      select.start();
      for_each_keys([&](Ranked&, const uint64_t* keys, int64_t n) { select.count(keys, n); });
      select.narrow();
    }
    if (select.known == 64) {  // more than `room` equal keys
      for_each_keys([&](Ranked& r, const uint64_t* keys, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          r.below += keys[i] < select.prefix;
          r.ties += keys[i] == select.prefix;
        }
      });
    } else {
      candidates_.clear();
      candidates_.reserve(static_cast<size_t>(select.matching));  // no growth by doubling past the room
      for_each_keys([&](Ranked& r, const uint64_t* keys, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          if (select.matches(keys[i])) {
            candidates_.push_back(keys[i]);
          } else {
            r.below += select.below(keys[i]);
          }
        }
        r.candidates_end = candidates_.size();
      });
      while (select.known < 64) {
        select.start();
        select.count(candidates_.data(), static_cast<int64_t>(candidates_.size()));
        select.narrow();
      }
      size_t c = 0;
      for (size_t i = 0; i < ranked.size(); ++i) {
        for (; c < ranked[i].candidates_end; ++c) {
          ranked[i].below += candidates_[c] < select.prefix;
          ranked[i].ties += candidates_[c] == select.prefix;
        }
      }
    }
    // The threshold's ties go to the first in insertion order, then in block
    // order (which DataNormSparsifier's rule keeps within one tensor).
    int64_t ties_left = k;
    for (const Ranked& r : ranked) ties_left -= r.below;
    for (Ranked& r : ranked) {
      const int64_t taken = std::min(r.ties, ties_left);
      ties_left -= taken;
      r.below += taken;
    }
    TORCH_INTERNAL_ASSERT(ties_left == 0, "GlobalNormSparsifier: the threshold's ties do not add up");
  } else {
    for (Ranked& r : ranked) r.below = k == 0 ? 0 : r.blocks;
  }

  // Each tensor's share, as the level that selects exactly that many of its
  // blocks: round(share / blocks * blocks) is share again.
  for (const Ranked& r : ranked) {
    Config config = data_group(r.name);
    config.set("sparsity_level", r.blocks == 0 ? 0.0 : static_cast<double>(r.below) / static_cast<double>(r.blocks));
    update_mask(r.name, r.data, config);
  }
}

}  // namespace sparsity
