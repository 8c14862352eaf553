#include "sparsity/config_error.h"
#include "sparsity/data_scheduler/step_sl_scheduler.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

namespace {

void check(const StepSLSchedulerOptions& o) {
  if (o.step_size() < 1)
    throw ConfigError(fmt::format("StepSLScheduler: step_size must be >= 1, got {}", o.step_size()), "step_size");
  if (!std::isfinite(o.gamma()) || o.gamma() < 0)
    throw ConfigError(fmt::format("StepSLScheduler: gamma must be finite and >= 0, got {}", o.gamma()), "gamma");
}

}  // namespace

const OptionFields<StepSLSchedulerOptions>& StepSLSchedulerOptions::fields() {
  using O = StepSLSchedulerOptions;
  static const OptionFields<O> table = {
      SPARSITY_OPTION_FIELD(O, step_size),
      SPARSITY_OPTION_FIELD(O, gamma),
      SPARSITY_OPTION_FIELD(O, schedule_param),
      SPARSITY_OPTION_FIELD(O, last_epoch)};
  return table;
}

StepSLSchedulerOptions StepSLSchedulerOptions::from_config(const Config& config) {
  return options_from_config("StepSLScheduler", config, fields());
}

Config StepSLSchedulerOptions::to_config() const { return options_to_config(*this, fields()); }

StepSLScheduler::StepSLScheduler(BaseDataSparsifier& sparsifier, StepSLSchedulerOptions options)
    : BaseDataScheduler(sparsifier, options.schedule_param(), options.last_epoch()), options_(std::move(options)) {
  check(options_);
  step();
}

std::map<std::string, double> StepSLScheduler::get_schedule_param() {
  const bool multiply = last_epoch() != 0 && last_epoch() % options_.step_size() == 0;
  std::map<std::string, double> values;
  for (const auto& name : sparsifier().names())
    values[name] = current_value(name) * (multiply ? options_.gamma() : 1.0);
  return values;
}

Config StepSLScheduler::extra_state() const {
  return Config{{"step_size", options_.step_size()}, {"gamma", options_.gamma()}};
}

void StepSLScheduler::load_extra_state(const Config& state) {
  StepSLSchedulerOptions loaded = options_;
  loaded.step_size(state.get<int64_t>("step_size")).gamma(state.get<double>("gamma"));
  check(loaded);
  options_ = loaded;
}

}  // namespace sparsity
