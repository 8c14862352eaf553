#include "sparsity/plugin/data_source.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>

#include "sparsity/message_text.h"

namespace sparsity {

DataSource::DataSource(at::Tensor inputs, at::Tensor targets, int64_t batch_size, bool shuffle, uint64_t seed,
                       bool drop_last)
    : inputs_(std::move(inputs)),
      targets_(std::move(targets)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last) {
  if (!inputs_.defined() || !targets_.defined())
    throw std::invalid_argument(fmt::format("DataSource: the {} tensor is undefined",
                                            inputs_.defined() ? "targets" : "inputs"));
  if (inputs_.dim() == 0 || targets_.dim() == 0)
    throw std::invalid_argument(fmt::format(
        "DataSource: inputs and targets need a first dimension that indexes the examples; got inputs of shape {} "
        "and targets of shape {}",
        shape_text(inputs_), shape_text(targets_)));
  if (inputs_.size(0) != targets_.size(0))
    throw std::invalid_argument(fmt::format(
        "DataSource: inputs and targets must have the same number of examples (first dimension); got inputs of "
        "shape {} and targets of shape {}",
        shape_text(inputs_), shape_text(targets_)));
  if (inputs_.size(0) == 0)
    throw std::invalid_argument(fmt::format("DataSource: no examples (inputs of shape {}, targets of shape {})",
                                            shape_text(inputs_), shape_text(targets_)));
  if (batch_size_ < 1)
    throw std::invalid_argument(fmt::format("DataSource: batch_size must be at least 1, got {}", batch_size_));
  if (drop_last_ && inputs_.size(0) < batch_size_)
    throw std::invalid_argument(
        fmt::format("DataSource: drop_last with {} examples and batch_size {} leaves no batch", inputs_.size(0),
                    batch_size_));
}

int64_t DataSource::size() const { return inputs_.size(0); }

int64_t DataSource::shard_size() const {
  if (world_size_ == 1) return size();
  if (pad_) return (size() + world_size_ - 1) / world_size_;
  return size() / world_size_ + (rank_ < size() % world_size_ ? 1 : 0);
}

int64_t DataSource::num_batches() const {
  const int64_t n = shard_size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

DataSource DataSource::shard(int64_t rank, int64_t world_size, bool pad) const {
  constexpr int64_t kMaxWorldSize = 65536;
  if (world_size < 1 || world_size > kMaxWorldSize)
    throw std::invalid_argument(
        fmt::format("DataSource::shard: world_size {} is out of range [1, {}]", world_size, kMaxWorldSize));
  if (rank < 0 || rank >= world_size)
    throw std::invalid_argument(
        fmt::format("DataSource::shard: rank {} is out of range [0, {}) (world_size {})", rank, world_size, world_size));
  if (world_size_ != 1)
    throw std::invalid_argument("DataSource::shard: this DataSource is already a shard; shard the whole data");
  DataSource shard = *this;
  shard.rank_ = rank;
  shard.world_size_ = world_size;
  shard.pad_ = pad;
  if (drop_last_ && shard.shard_size() < batch_size_)
    throw std::invalid_argument(fmt::format(
        "DataSource::shard: drop_last with {} examples per rank (rank {} of {}) and batch_size {} leaves no batch",
        shard.shard_size(), rank, world_size, batch_size_));
  return shard;
}

std::vector<int64_t> DataSource::order(int64_t epoch) const {
  if (epoch < 0) throw std::invalid_argument(fmt::format("DataSource::order: epoch must be >= 0, got {}", epoch));
  std::vector<int64_t> order(static_cast<size_t>(size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (shuffle_) {
    // Its own generator, seeded from (seed, epoch): reproducible per epoch and
    // independent of LibTorch's global generator and of earlier epochs.
    const auto e = static_cast<uint64_t>(epoch);
    std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32), static_cast<uint32_t>(e),
                      static_cast<uint32_t>(e >> 32)};
    std::mt19937_64 generator(seq);
    std::shuffle(order.begin(), order.end(), generator);
  }
  if (world_size_ == 1) return order;
  // DistributedSampler: pad by repeating the start, then every world_size-th from rank.
  if (pad_) {
    const size_t total = static_cast<size_t>(shard_size() * world_size_);
    order.reserve(total);
    for (size_t i = 0; order.size() < total; ++i) {
      const int64_t repeated = order[i];
      order.push_back(repeated);
    }
  }
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(shard_size()));
  for (size_t i = static_cast<size_t>(rank_); i < order.size(); i += static_cast<size_t>(world_size_))
    mine.push_back(order[i]);
  return mine;
}

namespace {

// rows of `data` (CPU, contiguous), in that order, as a new contiguous tensor:
// index_select's result, with each row's first cache lines fetched a few rows
// ahead. The rows sit at random places in a data set larger than the caches,
// so without that every row starts with a wait on memory (index_select took
// 7 % of an epoch of bench/epoch_bench's MLP).
at::Tensor gather_rows(const at::Tensor& data, const int64_t* rows, int64_t count) {
  std::vector<int64_t> sizes = data.sizes().vec();
  sizes[0] = count;
  at::Tensor out = at::empty(sizes, data.options());
  const auto row_bytes = static_cast<size_t>(data.numel() / std::max<int64_t>(data.size(0), 1)) * data.element_size();
  const auto* src = static_cast<const char*>(data.data_ptr());
  auto* dst = static_cast<char*>(out.data_ptr());
  constexpr int64_t kAhead = 4;
  constexpr size_t kLine = 64;
  const size_t lines = std::min<size_t>((row_bytes + kLine - 1) / kLine, 8);
  const auto row = [&](int64_t i) { return src + static_cast<size_t>(rows[i]) * row_bytes; };
  const auto prefetch = [&](int64_t i) {
    for (size_t l = 0; l < lines; ++l) __builtin_prefetch(row(i) + l * kLine);
  };
  for (int64_t i = 0; i < std::min(count, kAhead); ++i) prefetch(i);
  for (int64_t i = 0; i < count; ++i) {
    if (i + kAhead < count) prefetch(i + kAhead);
    std::memcpy(dst + static_cast<size_t>(i) * row_bytes, row(i), row_bytes);
  }
  return out;
}

}  // namespace

Batch DataSource::batch(const std::vector<int64_t>& order, int64_t index) const {
  if (static_cast<int64_t>(order.size()) != shard_size())
    throw std::invalid_argument(fmt::format("DataSource::batch: the order has {} entries for {} examples",
                                            order.size(), shard_size()));
  if (index < 0 || index >= num_batches())
    throw std::out_of_range(
        fmt::format("DataSource::batch: batch {} is out of range (the epoch has {} batches)", index, num_batches()));
  const int64_t begin = index * batch_size_;
  const int64_t count = std::min(batch_size_, shard_size() - begin);
  const int64_t* rows = order.data() + begin;
  for (int64_t i = 0; i < count; ++i) {
    if (rows[i] < 0 || rows[i] >= size()) {
      throw std::out_of_range(fmt::format("DataSource::batch: order[{}] is {}, not an example index (0 to {})",
                                          begin + i, rows[i], size() - 1));
    }
  }
  if (inputs_.device().is_cpu() && inputs_.is_contiguous() && targets_.device().is_cpu() &&
      targets_.is_contiguous()) {
    return Batch(gather_rows(inputs_, rows, count), gather_rows(targets_, rows, count));
  }
  at::Tensor indices = at::tensor(c10::ArrayRef<int64_t>(rows, static_cast<size_t>(count)), at::kLong);
  const at::Tensor input_indices = indices.to(inputs_.device());
  const at::Tensor target_indices =
      targets_.device() == inputs_.device() ? input_indices : indices.to(targets_.device());
  return Batch(inputs_.index_select(0, input_indices), targets_.index_select(0, target_indices));
}

at::Tensor DataSource::stack(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty()) throw std::invalid_argument("DataSource::from_dataset: the dataset is empty");
  return at::stack(tensors);
}

}  // namespace sparsity
