#pragma once

#include <torch/arg.h>

#include <string>

#include "sparsity/data_scheduler/base_data_scheduler.h"
#include "sparsity/option_fields.h"

namespace sparsity {

/// Options for `StepSLScheduler`.
///
/// Example:
/// ```
/// StepSLScheduler scheduler(sparsifier, StepSLSchedulerOptions().step_size(2).gamma(0.5));
/// ```
struct StepSLSchedulerOptions {
  /// The config keys, in order: `step_size`, `gamma`, `schedule_param`, `last_epoch`.
  static const OptionFields<StepSLSchedulerOptions>& fields();
  /// Reads the keys of `fields()` (all optional); another key is a
  /// ConfigError listing them.
  static StepSLSchedulerOptions from_config(const Config& config);
  /// Every key of `fields()`: what from_config reads back to equal options.
  Config to_config() const;

  /// Epochs between two multiplications, >= 1.
  TORCH_ARG(int64_t, step_size) = 1;
  /// The factor, finite and >= 0.
  TORCH_ARG(double, gamma) = 2.0;
  TORCH_ARG(std::string, schedule_param) = "sparsity_level";
  TORCH_ARG(int64_t, last_epoch) = -1;
};

/// Every `step_size` epochs, multiplies the scheduled value of every name by
/// `gamma` (not at epoch 0). The scheduler of the reference's callback tests.
class StepSLScheduler : public BaseDataScheduler {
 public:
  StepSLScheduler(BaseDataSparsifier& sparsifier, StepSLSchedulerOptions options = {});
  const StepSLSchedulerOptions& options() const { return options_; }

 protected:
  std::map<std::string, double> get_schedule_param() override;
  Config extra_state() const override;
  void load_extra_state(const Config& state) override;
  std::string type_name() const override { return "StepSLScheduler"; }

 private:
  StepSLSchedulerOptions options_;
};

}  // namespace sparsity
