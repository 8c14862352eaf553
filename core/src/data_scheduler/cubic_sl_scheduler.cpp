#include "sparsity/config_error.h"
#include "sparsity/data_scheduler/cubic_sl_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

namespace {

void check(const CubicSLSchedulerOptions& o) {
  if (o.delta_t() < 1)
    throw ConfigError(fmt::format("CubicSLScheduler: delta_t must be >= 1, got {}", o.delta_t()), "delta_t");
  if (o.total_t() < 1)
    throw ConfigError(fmt::format("CubicSLScheduler: total_t must be >= 1, got {}", o.total_t()), "total_t");
  if (!std::isfinite(o.init_sl()))
    throw ConfigError(fmt::format("CubicSLScheduler: init_sl must be finite, got {}", o.init_sl()), "init_sl");
}

}  // namespace

const OptionFields<CubicSLSchedulerOptions>& CubicSLSchedulerOptions::fields() {
  using O = CubicSLSchedulerOptions;
  static const OptionFields<O> table = {
      SPARSITY_OPTION_FIELD(O, init_sl),
      SPARSITY_OPTION_FIELD(O, init_t),
      SPARSITY_OPTION_FIELD(O, delta_t),
      SPARSITY_OPTION_FIELD(O, total_t),
      SPARSITY_OPTION_FIELD(O, initially_zero),
      SPARSITY_OPTION_FIELD(O, schedule_param),
      SPARSITY_OPTION_FIELD(O, last_epoch)};
  return table;
}

CubicSLSchedulerOptions CubicSLSchedulerOptions::from_config(const Config& config) {
  return options_from_config("CubicSLScheduler", config, fields());
}

Config CubicSLSchedulerOptions::to_config() const { return options_to_config(*this, fields()); }

CubicSLScheduler::CubicSLScheduler(BaseDataSparsifier& sparsifier, CubicSLSchedulerOptions options)
    : BaseDataScheduler(sparsifier, options.schedule_param(), options.last_epoch()), options_(std::move(options)) {
  check(options_);
  step();
}

double CubicSLScheduler::sparsity_compute_fn(double s_0, double s_f, int64_t t, int64_t t_0, int64_t dt, int64_t n,
                                             bool initially_zero) {
  if (initially_zero && t < t_0) return 0.0;
  // In 128 bits: t - t_0 and n * dt overflow int64 for extreme options (init_t
  // = INT64_MIN, delta_t = total_t = INT64_MAX), and both are exact here.
  const __int128 elapsed = static_cast<__int128>(t) - t_0;
  const __int128 span = static_cast<__int128>(dt) * n;
  const double progress = static_cast<double>(elapsed) / static_cast<double>(span);
  const double s_t = s_f + (s_0 - s_f) * std::pow(1.0 - progress, 3);
  return std::clamp(s_t, std::min(s_0, s_f), std::max(s_0, s_f));
}

std::map<std::string, double> CubicSLScheduler::get_schedule_param() {
  const auto base = base_param();
  std::map<std::string, double> values;
  for (const auto& [name, s_f] : base) {
    values[name] = sparsity_compute_fn(options_.init_sl(), s_f, last_epoch(), options_.init_t(), options_.delta_t(),
                                       options_.total_t(), options_.initially_zero());
  }
  return values;
}

Config CubicSLScheduler::extra_state() const {
  return Config{{"init_sl", options_.init_sl()},
                {"init_t", options_.init_t()},
                {"delta_t", options_.delta_t()},
                {"total_t", options_.total_t()},
                {"initially_zero", options_.initially_zero()}};
}

void CubicSLScheduler::load_extra_state(const Config& state) {
  CubicSLSchedulerOptions loaded = options_;
  loaded.init_sl(state.get<double>("init_sl"))
      .init_t(state.get<int64_t>("init_t"))
      .delta_t(state.get<int64_t>("delta_t"))
      .total_t(state.get<int64_t>("total_t"))
      .initially_zero(state.get<bool>("initially_zero"));
  check(loaded);
  options_ = loaded;
}

}  // namespace sparsity
