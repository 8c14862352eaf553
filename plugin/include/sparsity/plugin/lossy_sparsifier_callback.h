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
#include "sparsity/option_fields.h"
#include "sparsity/plugin/sparsifying_callback.h"

namespace sparsity {

/// Options of `LossySparsifierCallback`.
///
/// Example:
/// ```
/// LossySparsifierCallbackOptions().sharpness_factor(2.0).sharpness_period(1).eval_inputs(test_images)
/// ```
struct LossySparsifierCallbackOptions {
  /// The config keys, in order: `name`, `sharpness_factor`,
  /// `sharpness_period`, `convert_to_hard`, `eval_on_validation`,
  /// `eval_batch_size`. `eval_inputs` has no Config form.
  static const OptionFields<LossySparsifierCallbackOptions>& fields();
  /// Reads the keys of `fields()` (all optional); another key is a
  /// ConfigError listing them.
  static LossySparsifierCallbackOptions from_config(const Config& config);
  /// Every key of `fields()`: what from_config reads back to equal options.
  Config to_config() const;

  /// The callback's `name()` (in logs and checkpoints); empty:
  /// "LossySparsifierCallback".
  TORCH_ARG(std::string, name) = "";
  /// Every LossySparsifier's sharpness `a` is multiplied by this...
  TORCH_ARG(double, sharpness_factor) = 2.0;
  /// ...every this many epochs (the seed: 2 every epoch).
  TORCH_ARG(int64_t, sharpness_period) = 1;
  /// Replace the soft layers by hard ones with their learned ε at `on_fit_end`.
  TORCH_ARG(bool, convert_to_hard) = true;
  /// Inputs to measure activation sparsity on at each epoch end and at the end
  /// (the model must be a Sequential): the inputs of its layers
  /// (`measure_activation_sparsity`), or, when some sparsifiers sit inside
  /// custom modules that walk cannot see (a residual block's slots), the
  /// outputs of every site (`measure_activation_sparsity_at_sites`); soft
  /// layers count as their hard threshold either way. Undefined: not measured.
  TORCH_ARG(at::Tensor, eval_inputs) = {};
  /// Without `eval_inputs`, measure on the inputs of the Trainer's validation
  /// data, when `fit` has some (the test set stays unseen).
  TORCH_ARG(bool, eval_on_validation) = true;
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
class LossySparsifierCallback : public SparsifyingCallback {
 public:
  explicit LossySparsifierCallback(LossySparsifierCallbackOptions options = {});

  /// The model whose layers it drove (converted to hard layers at the end
  /// with `convert_to_hard`); null before `on_train_start`.
  std::shared_ptr<torch::nn::Module> sparsified() const override { return model_; }
  bool changes_trained_model() const override { return true; }
  bool needs_lossy_layers() const override { return true; }
  Config to_config() const override { return options_.to_config(); }
  const LossySparsifierCallbackOptions& options() const { return options_; }

  /// The last activation sparsity measured, if any.
  const std::optional<ActivationSparsityReport>& report() const { return report_; }
  /// How many layers `on_fit_end` converted.
  int64_t converted() const { return converted_; }

  void on_train_start(Trainer& trainer, TrainingModule& module) override;
  void on_train_epoch_end(Trainer& trainer, TrainingModule& module) override;
  void on_fit_end(Trainer& trainer, TrainingModule& module) override;
  std::string name() const override { return options_.name().empty() ? "LossySparsifierCallback" : options_.name(); }

  c10::IValue state_dict() const override;
  void load_state_dict(const c10::IValue& state) override;
  /// A state of this callback: a dict whose "sharpness" is a list of floats.
  void check_state_dict(const c10::IValue& state) const override;

 private:
  void measure(TrainingModule& module, const char* when);
  /// What activation sparsity is measured on; undefined: not measured.
  at::Tensor eval_inputs(const Trainer& trainer) const;

  LossySparsifierCallbackOptions options_;
  std::shared_ptr<torch::nn::Module> model_;
  at::Tensor measured_on_;  ///< the inputs of the last measurement
  std::optional<ActivationSparsityReport> report_;
  std::vector<double> sharpness_;           ///< each soft layer's `a` at the last epoch end
  std::vector<double> resumed_sharpness_;   ///< from a checkpoint, applied at on_train_start
  int64_t converted_ = 0;
};

}  // namespace sparsity
