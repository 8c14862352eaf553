#pragma once
// The data of a demo run: training, validation and test splits as tensors.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "run_config.h"

namespace sparsity::demo {

/// Inputs [N, 1, H, W] float32, targets [N] int64, for each split. The
/// validation split is empty (0 rows) when `validation_split` is 0.
struct DemoData {
  at::Tensor train_inputs, train_targets;
  at::Tensor validation_inputs, validation_targets;
  at::Tensor test_inputs, test_targets;
  int64_t classes = 0;
  /// e.g. "Fashion-MNIST (/usr/share/datasets/fashion-mnist): 54000 train, 6000 validation, 10000 test".
  std::string description;

  bool has_validation() const { return validation_inputs.defined() && validation_inputs.size(0) > 0; }
};

/// Loads (Fashion-MNIST, an IDX directory) or generates (synthetic) the data
/// `config` describes, applies `train_limit`, and holds out a validation
/// split chosen by a permutation seeded with `seed`. A missing or malformed
/// file is a std::runtime_error naming it (and how to install Fashion-MNIST or
/// switch to the synthetic set), and so are test images of another size than
/// the training images (naming both files and sizes): the model is built for
/// the training images' size.
DemoData load_demo_data(const DataConfig& config, uint64_t seed);

/// The synthetic set alone: `classes` random prototype images (seeded), each
/// example its class's prototype plus Gaussian noise, labels cycling through
/// the classes.
DemoData make_synthetic_data(const SyntheticDataConfig& config, uint64_t seed);

}  // namespace sparsity::demo
