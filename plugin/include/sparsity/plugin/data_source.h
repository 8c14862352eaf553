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

  /// The number of examples.
  int64_t size() const;
  int64_t batch_size() const { return batch_size_; }
  /// Batches per epoch.
  int64_t num_batches() const;
  /// The example order of `epoch` (a permutation when shuffling).
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
};

}  // namespace sparsity
