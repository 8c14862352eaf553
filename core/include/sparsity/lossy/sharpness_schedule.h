#pragma once

#include <torch/arg.h>

#include <cstdint>

namespace torch::nn {
class Module;
}

namespace sparsity {

/// Multiplies the sharpness `a` of every LossySparsifier in `model` by
/// `factor` (> 0 and finite, else std::invalid_argument naming it); returns
/// how many.
///
/// Example:
/// ```
/// int64_t changed = sparsity::multiply_sharpness(*net, 2.0);  // every a doubled
/// ```
int64_t multiply_sharpness(torch::nn::Module& model, double factor);

/// Options of `SharpnessSchedule`: `a` multiplied by `factor` every `period`
/// epochs (the seed: 2 every epoch).
///
/// Example:
/// ```
/// sparsity::SharpnessSchedule schedule(sparsity::SharpnessScheduleOptions().factor(2.0).period(1));
/// for (int64_t epoch = 0; epoch < epochs; ++epoch) { train_one_epoch(); schedule.epoch_end(*net, epoch); }
/// ```
struct SharpnessScheduleOptions {
  /// What every layer's `a` is multiplied by; > 0 and finite.
  TORCH_ARG(double, factor) = 2.0;
  /// Every this many epochs; >= 1.
  TORCH_ARG(int64_t, period) = 1;
};

/// The sharpness schedule of the lossy sparsifier layers, called at each
/// epoch end: the one implementation, which `LossySparsifierCallback` uses too.
class SharpnessSchedule {
 public:
  /// std::invalid_argument naming the value for factor <= 0 or not finite, or
  /// period < 1.
  explicit SharpnessSchedule(SharpnessScheduleOptions options = {});
  /// Call when 0-based `epoch` ends: multiplies when (epoch + 1) % period == 0.
  /// Returns whether it did.
  bool epoch_end(torch::nn::Module& model, int64_t epoch) const;
  /// The options it was constructed with.
  const SharpnessScheduleOptions& options() const { return options_; }

 private:
  SharpnessScheduleOptions options_;
};

}  // namespace sparsity
