#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/lossy/activation_sparsity.h"
#include "sparsity/plugin/callback.h"

namespace sparsity {

/// Options of `LossySparsifierCallback`.
///
/// Example:
/// ```
/// LossySparsifierCallbackOptions().sharpness_factor(2.0).sharpness_period(1).eval_inputs(test_images)
/// ```
struct LossySparsifierCallbackOptions {
  /// Reads `sharpness_factor`, `sharpness_period`, `convert_to_hard` and
  /// `eval_batch_size` (all optional); other keys are an error listing these.
  static LossySparsifierCallbackOptions from_config(const Config& config);

  /// Every LossySparsifier's sharpness `a` is multiplied by this...
  TORCH_ARG(double, sharpness_factor) = 2.0;
  /// ...every this many epochs (the seed: 2 every epoch).
  TORCH_ARG(int64_t, sharpness_period) = 1;
  /// Replace the soft layers by hard ones with their learned ε at `on_fit_end`.
  TORCH_ARG(bool, convert_to_hard) = true;
  /// Inputs to measure activation sparsity on at each epoch end and at the end
  /// (the model must be a Sequential, see `measure_activation_sparsity`);
  /// undefined: not measured.
  TORCH_ARG(at::Tensor, eval_inputs) = {};
  TORCH_ARG(int64_t, eval_batch_size) = 256;
};

/// Drives the lossy sparsifier layers of a model during `Trainer::fit`: the
/// sharpness schedule at epoch ends, the conversion of every soft layer to a
/// hard one with its learned ε at `on_fit_end`, and the activation sparsity
/// (logged as `activation_sparsity` in metrics.csv, and per layer in the log).
/// The layers' sharpness is part of the callback's checkpoint state, so a
/// resumed run continues the schedule where it stopped.
///
/// Registered for `make_callback` as "LossySparsifierCallback", with the
/// options above (except `eval_inputs`) as arguments.
class LossySparsifierCallback : public Callback {
 public:
  explicit LossySparsifierCallback(LossySparsifierCallbackOptions options = {});

  /// The last activation sparsity measured, if any.
  const std::optional<ActivationSparsityReport>& report() const { return report_; }
  /// How many layers `on_fit_end` converted.
  int64_t converted() const { return converted_; }

  void on_train_start(Trainer& trainer, TrainingModule& module) override;
  void on_train_epoch_end(Trainer& trainer, TrainingModule& module) override;
  void on_fit_end(Trainer& trainer, TrainingModule& module) override;
  std::string name() const override { return "LossySparsifierCallback"; }

  c10::IValue state_dict() const override;
  void load_state_dict(const c10::IValue& state) override;
  /// A state of this callback: a dict whose "sharpness" is a list of floats.
  void check_state_dict(const c10::IValue& state) const override;

 private:
  void measure(TrainingModule& module, const char* when);

  LossySparsifierCallbackOptions options_;
  std::optional<ActivationSparsityReport> report_;
  std::vector<double> sharpness_;           ///< each soft layer's `a` at the last epoch end
  std::vector<double> resumed_sharpness_;   ///< from a checkpoint, applied at on_train_start
  int64_t converted_ = 0;
};

}  // namespace sparsity
