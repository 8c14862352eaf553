#include "sparsity/config_error.h"
#include "sparsity/data_scheduler/polynomial_decay_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

namespace {

void check(const PolynomialDecaySchedulerOptions& o) {
  const std::string who = "PolynomialDecayScheduler";
  if (o.end_step() <= o.begin_step())
    throw ConfigError(
        fmt::format("{}: end_step ({}) must be greater than begin_step ({})", who, o.end_step(), o.begin_step()),
        "end_step");
  if (o.frequency() < 1)
    throw ConfigError(fmt::format("{}: frequency must be >= 1, got {}", who, o.frequency()), "frequency");
  if (!(o.power() > 0) || !std::isfinite(o.power()))
    throw ConfigError(fmt::format("{}: power must be finite and > 0, got {}", who, o.power()), "power");
  if (!std::isfinite(o.initial_sparsity()))
    throw ConfigError(fmt::format("{}: initial_sparsity must be finite, got {}", who, o.initial_sparsity()),
                      "initial_sparsity");
  if (o.final_sparsity() && !std::isfinite(*o.final_sparsity()))
    throw ConfigError(fmt::format("{}: final_sparsity must be finite, got {}", who, *o.final_sparsity()),
                      "final_sparsity");
}

}  // namespace

const OptionFields<PolynomialDecaySchedulerOptions>& PolynomialDecaySchedulerOptions::fields() {
  using O = PolynomialDecaySchedulerOptions;
  static const OptionFields<O> table = {
      SPARSITY_OPTION_FIELD(O, initial_sparsity),
      OptionField<O>{"final_sparsity",
                     [](O& o, const Config& c, const std::string& k) { o.final_sparsity(c.get<double>(k)); },
                     // Absent when unset: each name's base value is the final one.
                     [](const O& o, Config& c, const std::string& k) {
                       if (o.final_sparsity()) c.set(k, *o.final_sparsity());
                     }},
      SPARSITY_OPTION_FIELD(O, begin_step),
      SPARSITY_OPTION_FIELD(O, end_step),
      SPARSITY_OPTION_FIELD(O, power),
      SPARSITY_OPTION_FIELD(O, frequency),
      SPARSITY_OPTION_FIELD(O, schedule_param),
      SPARSITY_OPTION_FIELD(O, last_epoch)};
  return table;
}

PolynomialDecaySchedulerOptions PolynomialDecaySchedulerOptions::from_config(const Config& config) {
  return options_from_config("PolynomialDecayScheduler", config, fields());
}

Config PolynomialDecaySchedulerOptions::to_config() const { return options_to_config(*this, fields()); }

PolynomialDecayScheduler::PolynomialDecayScheduler(BaseDataSparsifier& sparsifier,
                                                   PolynomialDecaySchedulerOptions options)
    : BaseDataScheduler(sparsifier, options.schedule_param(), options.last_epoch()), options_(std::move(options)) {
  check(options_);
  step();
}

std::map<std::string, double> PolynomialDecayScheduler::get_schedule_param() {
  const int64_t t = last_epoch();
  const int64_t begin = options_.begin_step(), end = options_.end_step();
  // Between begin and end the value only moves on pruning steps, as in TF MOT.
  // In 128 bits: t - begin and end - begin overflow int64 when the steps lie
  // far apart (begin_step = INT64_MIN, end_step = INT64_MAX).
  const __int128 elapsed = static_cast<__int128>(t) - begin;
  const __int128 span = static_cast<__int128>(end) - begin;
  const bool update = t <= begin || t >= end || elapsed % options_.frequency() == 0;
  const double p = std::clamp(static_cast<double>(elapsed) / static_cast<double>(span), 0.0, 1.0);
  std::map<std::string, double> values;
  for (const auto& [name, base] : base_param()) {
    if (!update) {
      values[name] = current_value(name);
      continue;
    }
    const double final_value = options_.final_sparsity().value_or(base);
    values[name] = final_value + (options_.initial_sparsity() - final_value) * std::pow(1.0 - p, options_.power());
  }
  return values;
}

Config PolynomialDecayScheduler::extra_state() const {
  Config state{{"initial_sparsity", options_.initial_sparsity()},
               {"begin_step", options_.begin_step()},
               {"end_step", options_.end_step()},
               {"power", options_.power()},
               {"frequency", options_.frequency()}};
  if (options_.final_sparsity()) state.set("final_sparsity", *options_.final_sparsity());
  return state;
}

void PolynomialDecayScheduler::load_extra_state(const Config& state) {
  PolynomialDecaySchedulerOptions loaded = options_;
  loaded.initial_sparsity(state.get<double>("initial_sparsity"))
      .begin_step(state.get<int64_t>("begin_step"))
      .end_step(state.get<int64_t>("end_step"))
      .power(state.get<double>("power"))
      .frequency(state.get<int64_t>("frequency"));
  loaded.final_sparsity(state.contains("final_sparsity") ? std::optional<double>(state.get<double>("final_sparsity"))
                                                        : std::nullopt);
  check(loaded);
  options_ = loaded;
}

}  // namespace sparsity
