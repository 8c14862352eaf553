#pragma once

#include <torch/arg.h>

#include <optional>
#include <string>

#include "sparsity/data_scheduler/base_data_scheduler.h"
#include "sparsity/option_fields.h"

namespace sparsity {

/// Options for `PolynomialDecayScheduler` (names as TF Model Optimization's
/// `PolynomialDecay`).
///
/// Example:
/// ```
/// PolynomialDecayScheduler scheduler(sparsifier, PolynomialDecaySchedulerOptions()
///                                                    .initial_sparsity(0.0)
///                                                    .final_sparsity(0.8)
///                                                    .begin_step(0)
///                                                    .end_step(20));
/// ```
struct PolynomialDecaySchedulerOptions {
  /// The config keys, in order: `initial_sparsity`, `final_sparsity` (absent: each name's base value), `begin_step`, `end_step`, `power`, `frequency`, `schedule_param`, `last_epoch`.
  static const OptionFields<PolynomialDecaySchedulerOptions>& fields();
  /// Reads the keys of `fields()` (all optional); another key is a
  /// ConfigError listing them.
  static PolynomialDecaySchedulerOptions from_config(const Config& config);
  /// Every key of `fields()`: what from_config reads back to equal options.
  Config to_config() const;

  TORCH_ARG(double, initial_sparsity) = 0.0;
  /// The value reached at `end_step`; by default each name's base value.
  TORCH_ARG(std::optional<double>, final_sparsity) = std::nullopt;
  TORCH_ARG(int64_t, begin_step) = 0;
  /// > begin_step.
  TORCH_ARG(int64_t, end_step) = 100;
  /// > 0; 3 is the cubic schedule.
  TORCH_ARG(double, power) = 3.0;
  /// The value changes every `frequency` steps from `begin_step` on, >= 1.
  TORCH_ARG(int64_t, frequency) = 1;
  TORCH_ARG(std::string, schedule_param) = "sparsity_level";
  TORCH_ARG(int64_t, last_epoch) = -1;
};

/// s_t = s_f + (s_i - s_f) (1 - p)^power with p = (t - begin) / (end - begin)
/// clamped to [0, 1]; updated at `begin_step` and every `frequency` steps after
/// it, until `end_step`. Before `begin_step` the value is `initial_sparsity`.
class PolynomialDecayScheduler : public BaseDataScheduler {
 public:
  PolynomialDecayScheduler(BaseDataSparsifier& sparsifier, PolynomialDecaySchedulerOptions options = {});
  const PolynomialDecaySchedulerOptions& options() const { return options_; }

 protected:
  std::map<std::string, double> get_schedule_param() override;
  Config extra_state() const override;
  void load_extra_state(const Config& state) override;
  std::string type_name() const override { return "PolynomialDecayScheduler"; }

 private:
  PolynomialDecaySchedulerOptions options_;
};

}  // namespace sparsity
