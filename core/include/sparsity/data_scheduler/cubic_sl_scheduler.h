#pragma once

#include <torch/arg.h>

#include <string>

#include "sparsity/data_scheduler/base_data_scheduler.h"
#include "sparsity/option_fields.h"

namespace sparsity {

/// Options for `CubicSLScheduler` (names as `torch.ao.pruning`'s `CubicSL`).
///
/// Example:
/// ```
/// // From 0 to each name's base level over 10 steps of 1 epoch, starting at epoch 2.
/// CubicSLScheduler scheduler(sparsifier,
///                            CubicSLSchedulerOptions().init_t(2).delta_t(1).total_t(10));
/// ```
struct CubicSLSchedulerOptions {
  /// The config keys, in order: `init_sl`, `init_t`, `delta_t`, `total_t`, `initially_zero`, `schedule_param`, `last_epoch`.
  static const OptionFields<CubicSLSchedulerOptions>& fields();
  /// Reads the keys of `fields()` (all optional); another key is a
  /// ConfigError listing them.
  static CubicSLSchedulerOptions from_config(const Config& config);
  /// Every key of `fields()`: what from_config reads back to equal options.
  Config to_config() const;

  /// s_0: the value at `init_t`.
  TORCH_ARG(double, init_sl) = 0.0;
  /// t_0: the epoch the schedule starts.
  TORCH_ARG(int64_t, init_t) = 0;
  /// Δt: epochs per pruning step, >= 1.
  TORCH_ARG(int64_t, delta_t) = 10;
  /// n: the number of pruning steps, >= 1; the final value is reached at
  /// t_0 + n·Δt.
  TORCH_ARG(int64_t, total_t) = 100;
  /// 0 (instead of s_0) before t_0.
  TORCH_ARG(bool, initially_zero) = false;
  TORCH_ARG(std::string, schedule_param) = "sparsity_level";
  TORCH_ARG(int64_t, last_epoch) = -1;
};

/// Gradual pruning (Zhu & Gupta, 2017): the value of each name goes from
/// `init_sl` to its base value s_f along
/// s_t = s_f + (s_0 - s_f) (1 - (t - t_0) / (n Δt))³, clamped between s_0 and
/// s_f: fast at first, slower as it approaches s_f.
class CubicSLScheduler : public BaseDataScheduler {
 public:
  CubicSLScheduler(BaseDataSparsifier& sparsifier, CubicSLSchedulerOptions options = {});
  const CubicSLSchedulerOptions& options() const { return options_; }

  /// The schedule's value at epoch t (the reference's `sparsity_compute_fn`,
  /// except that the clamp also holds when s_0 > s_f).
  static double sparsity_compute_fn(double s_0, double s_f, int64_t t, int64_t t_0, int64_t dt, int64_t n,
                                    bool initially_zero = false);

 protected:
  std::map<std::string, double> get_schedule_param() override;
  Config extra_state() const override;
  void load_extra_state(const Config& state) override;
  std::string type_name() const override { return "CubicSLScheduler"; }

 private:
  CubicSLSchedulerOptions options_;
};

}  // namespace sparsity
