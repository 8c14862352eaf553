#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "sparsity/plugin/training_module.h"

namespace sparsity {

/// Batches of an in-memory data set for the Trainer: inputs and targets whose
/// first dimension indexes the examples. No data-loader template types to
/// spell; any LibTorch map dataset (e.g. torch::data::datasets::MNIST) is
/// materialized into one with `from_dataset`.
///
/// Shuffling is reproducible: epoch e of a DataSource with seed s always has
/// the same order, so a resumed run sees the batches an uninterrupted one would.
///
/// Example:
/// ```
/// sparsity::DataSource train(images, labels, /*batch_size=*/64);
/// auto mnist = sparsity::DataSource::from_dataset(
///     torch::data::datasets::MNIST("data/"), 64);
/// ```
class DataSource {
 public:
  DataSource(at::Tensor inputs, at::Tensor targets, int64_t batch_size = 64, bool shuffle = true,
             uint64_t seed = 0, bool drop_last = false);

  /// Stacks every example of a map dataset (anything with `size()` and
  /// `get(i)` returning a torch::data::Example<>) into one DataSource.
  template <class Dataset>
  static DataSource from_dataset(Dataset&& dataset, int64_t batch_size = 64, bool shuffle = true,
                                 uint64_t seed = 0) {
    const auto n = static_cast<int64_t>(dataset.size().value());
    std::vector<at::Tensor> inputs, targets;
    inputs.reserve(n);
    targets.reserve(n);
    for (int64_t i = 0; i < n; ++i) {
      auto example = dataset.get(static_cast<size_t>(i));
      inputs.push_back(example.data);
      targets.push_back(example.target);
    }
    return DataSource(stack(inputs), stack(targets), batch_size, shuffle, seed);
  }

  /// This rank's share of the data for data-parallel training, as PyTorch's
  /// `DistributedSampler` deals it: every rank draws the same order of all
  /// the examples for an epoch (the same seed), and rank r takes its entries
  /// r, r + world_size, r + 2 world_size, ... With `pad`, the order is first
  /// extended by repeating its start until its length is a multiple of
  /// world_size (DistributedSampler's `drop_last=False`), so every rank has
  /// ceil(size / world_size) examples and the same number of batches; without,
  /// the shares differ by at most one (for evaluation, where sums are reduced).
  /// The batch size stays per rank: a step of all ranks covers
  /// batch_size * world_size examples. Throws std::invalid_argument for a rank
  /// outside [0, world_size), or world_size outside [1, 65536].
  ///
  /// Example:
  /// ```
  /// // 5 examples, no shuffling, 2 ranks: rank 0 gets 0, 2, 4; rank 1 gets 1, 3, 0.
  /// sparsity::DataSource mine = train.shard(/*rank=*/1, /*world_size=*/2);
  /// ```
  DataSource shard(int64_t rank, int64_t world_size, bool pad = true) const;

  /// The number of examples in the data (all ranks' together).
  int64_t size() const;
  /// The examples of one epoch of this shard (`size()` when not sharded).
  int64_t shard_size() const;
  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }
  int64_t batch_size() const { return batch_size_; }
  /// Batches per epoch (of this shard).
  int64_t num_batches() const;
  /// The example order of `epoch` (a permutation when shuffling); of a shard,
  /// its part of that order (`shard_size()` entries).
  std::vector<int64_t> order(int64_t epoch) const;
  /// Batch `index` of an epoch whose order is `order`.
  Batch batch(const std::vector<int64_t>& order, int64_t index) const;

  const at::Tensor& inputs() const { return inputs_; }
  const at::Tensor& targets() const { return targets_; }

 private:
  static at::Tensor stack(const std::vector<at::Tensor>& tensors);

  at::Tensor inputs_, targets_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  int64_t rank_ = 0;
  int64_t world_size_ = 1;
  bool pad_ = true;
};

}  // namespace sparsity
