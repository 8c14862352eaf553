#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sparsity {

/// One Linear or Conv2d layer of a `shrink`: its output units before and after.
struct ShrinkLayer {
  std::string path;   ///< the layer's name in the Sequential, e.g. "1"
  std::string type;   ///< e.g. "torch::nn::Linear"
  int64_t units_before = 0;
  int64_t units_after = 0;
};

/// What `shrink` removed.
struct ShrinkReport {
  /// Every Linear and Conv2d layer, in order (the last one's units are never removed).
  std::vector<ShrinkLayer> layers;
  int64_t parameters_before = 0;  ///< numel of all parameters of the model
  int64_t parameters_after = 0;   ///< numel of all parameters of the shrunk model
  /// Dead units kept because removing them would not be exact (a nonzero
  /// constant reaching a zero-padded Conv2d or a padded AvgPool2d), per layer path.
  std::vector<std::string> kept_for_exactness;

  /// Units removed over all layers.
  int64_t units_removed() const;
  /// One line per layer, e.g. "1 torch::nn::Linear: 128 -> 64 units", then the parameter counts.
  std::string to_string() const;
};

/// A shrunk model and what was removed.
struct ShrinkResult {
  torch::nn::Sequential model;
  ShrinkReport report;
};

/// Removes the pruned units of a Sequential MLP or CNN: a NEW dense Sequential
/// with fewer output features/filters in each Linear/Conv2d whose units are
/// dead, and the matching inputs of the next layers, whose outputs equal the
/// model's in eval mode up to float rounding. `model` is not modified.
///
/// A unit (a Linear row, a Conv2d filter) is dead when its weight slice is all
/// zero and its bias entry zero (or there is no bias), as `UnitNormSparsifier`
/// followed by `squash_mask` leaves it. What lies between two weighted layers
/// must act per channel: activations, Dropout/Dropout2d, MaxPool2d,
/// AvgPool2d, adaptive pools, BatchNorm1d/2d (sliced), Identity and
/// Flatten(1, -1) (a Linear after it loses the H*W columns of each removed
/// channel, H*W being its in_features / the channels). A dead unit still
/// carries a constant downstream (e.g. BatchNorm's beta - gamma*mean/sqrt(var+eps),
/// then the activation of it): that constant is folded into the next layer's
/// bias, which is exact for a Linear and for a Conv2d without zero padding.
/// Before a zero-padded Conv2d (or a count_include_pad AvgPool2d with padding)
/// a dead unit whose constant is not 0 is kept, and reported in
/// `kept_for_exactness`. The last Linear/Conv2d keeps all its outputs, and
/// whatever follows it is copied as it is. If every unit of a layer is dead,
/// the first one is kept, so that no layer is left empty.
///
/// A model that is not a Sequential, a layer between weighted layers that is
/// none of the above (or a grouped Conv2d, a BatchNorm without running stats,
/// a Flatten not over dims 1..-1, a Linear after Flatten whose in_features the
/// channels do not divide) is std::invalid_argument naming the layer's path
/// and type. The shrunk model has the model's training mode, dtype and device.
///
/// Example:
/// ```
/// auto result = sparsity::shrink(model);      // model: a torch::nn::Sequential
/// std::cout << result.report.to_string();
/// auto y = result.model->forward(x);          // == model->forward(x) in eval mode
/// ```
ShrinkResult shrink(const torch::nn::Sequential& model);
/// The same for any module: anything but a torch::nn::Sequential is
/// std::invalid_argument naming its type.
ShrinkResult shrink(const torch::nn::Module& model);

/// The numel of all parameters of `module`.
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace sparsity
