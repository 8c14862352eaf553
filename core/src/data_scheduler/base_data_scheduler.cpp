#include "sparsity/data_scheduler/base_data_scheduler.h"

#include <ATen/core/ivalue.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "../config_ivalue.h"
#include "sparsity/state_file.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/logging.h"

namespace sparsity {

namespace {

constexpr const char* kStateFormat = "sparsity.DataScheduler";
constexpr int64_t kStateVersion = 1;

c10::IValue to_ivalue(const std::map<std::string, double>& values) {
  auto dict = detail::new_state_dict();
  for (const auto& [name, value] : values) dict.insert(name, value);
  return dict;
}

std::map<std::string, double> values_from(const c10::IValue& value, const std::string& what) {
  std::map<std::string, double> out;
  for (const auto& item : detail::as_dict(value, what)) {
    const c10::IValue& v = item.value();
    if (!v.isDouble() && !v.isInt())
      throw std::invalid_argument(fmt::format("{}: '{}' is not a number", what, item.key().toStringRef()));
    out[item.key().toStringRef()] = v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
  }
  return out;
}

// `value` written to an integer key: rounded, and within int64 (llround of a
// value outside it is unspecified).
int64_t to_integer(double value, const std::string& key, const std::string& name) {
  constexpr double kLimit = 9223372036854775808.0;  // 2^63
  const double rounded = std::nearbyint(value);
  if (!(rounded >= -kLimit && rounded < kLimit)) {
    throw std::invalid_argument(fmt::format("scheduled {} = {} for '{}' is not representable as a 64-bit integer",
                                            key, value, name));
  }
  return static_cast<int64_t>(std::llround(value));
}

}  // namespace

BaseDataScheduler::BaseDataScheduler(BaseDataSparsifier& sparsifier, std::string schedule_param,
                                     int64_t last_epoch)
    : sparsifier_(sparsifier),
      schedule_param_(std::move(schedule_param)),
      last_epoch_(last_epoch),
      sparsifier_steps_at_start_(sparsifier.step_count()) {
  if (schedule_param_.empty()) throw std::invalid_argument("schedule_param must not be empty");
  record_new_names();
}

BaseDataScheduler::~BaseDataScheduler() = default;

double BaseDataScheduler::current_value(const std::string& name) const {
  return sparsifier_.data_group(name).get<double>(schedule_param_);
}

void BaseDataScheduler::record_new_names() {
  for (const auto& name : sparsifier_.names()) {
    if (base_param_.count(name) != 0) continue;
    if (!sparsifier_.data_group(name).contains(schedule_param_)) {
      throw std::invalid_argument(fmt::format("{}: data '{}' has no '{}' in its config {} to schedule", type_name(),
                                              name, schedule_param_, sparsifier_.data_group(name).to_string()));
    }
    base_param_[name] = current_value(name);
  }
}

void BaseDataScheduler::step() {
  if (step_count_ == 1 && sparsifier_.step_count() == sparsifier_steps_at_start_ && !order_warned_) {
    order_warned_ = true;
    logger()->warn(
        "{}.step() was called before the data sparsifier's first step(): call "
        "sparsifier.step() BEFORE scheduler.step(), or the first scheduled value is skipped",
        type_name());
  }
  if (last_epoch_ == std::numeric_limits<int64_t>::max() || step_count_ == std::numeric_limits<int64_t>::max()) {
    throw std::invalid_argument(fmt::format("{}: cannot step past last_epoch {} (step_count {}): the next would "
                                            "overflow a 64-bit integer",
                                            type_name(), last_epoch_, step_count_));
  }
  record_new_names();
  ++last_epoch_;
  std::vector<std::pair<std::string, Config>> updates;
  try {
    for (auto [name, value] : get_schedule_param()) {
      if (!sparsifier_.contains(name)) {
        throw std::invalid_argument(fmt::format("scheduled a value for unknown data '{}'", name));
      }
      if (std::isnan(value)) {
        throw std::invalid_argument(fmt::format("scheduled {} = nan for '{}'", schedule_param_, name));
      }
      // The reference lets levels leave [0, 1] (StepSL with gamma 2 reaches 8.0).
      if (schedule_param_ == "sparsity_level") value = std::clamp(value, 0.0, 1.0);
      Config config = sparsifier_.data_group(name);
      if (std::holds_alternative<int64_t>(config.at(schedule_param_).variant())) {
        config.set(schedule_param_, to_integer(value, schedule_param_, name));
      } else {
        config.set(schedule_param_, value);
      }
      sparsifier_.check_config(name, config);
      updates.emplace_back(name, std::move(config));
    }
  } catch (const std::exception& e) {
    --last_epoch_;
    throw std::invalid_argument(
        fmt::format("{} at epoch {}: {}", type_name(), last_epoch_ + 1, e.what()));
  }
  ++step_count_;
  for (auto& [name, config] : updates) sparsifier_.data_group(name) = std::move(config);
  last_param_.clear();
  for (const auto& name : sparsifier_.names())
    if (sparsifier_.data_group(name).contains(schedule_param_)) last_param_[name] = current_value(name);
  sparsifier_.set_mask_update_enabled(true);
}

c10::IValue BaseDataScheduler::state_dict() const {
  auto root = detail::new_state_dict();
  root.insert("format", std::string(kStateFormat));
  root.insert("version", kStateVersion);
  root.insert("type", type_name());
  root.insert("schedule_param", schedule_param_);
  root.insert("last_epoch", last_epoch_);
  root.insert("step_count", step_count_);
  root.insert("base_param", to_ivalue(base_param_));
  root.insert("last_param", to_ivalue(last_param_));
  root.insert("extra", detail::config_to_ivalue(extra_state()));
  return root;
}

void BaseDataScheduler::load_state_dict(const c10::IValue& state) {
  using detail::dict_field;
  const std::string what = type_name() + " state";
  const auto root = detail::as_dict(state, what);
  const c10::IValue& format = dict_field(root, "format", what);
  const c10::IValue& version = dict_field(root, "version", what);
  if (!format.isString() || format.toStringRef() != kStateFormat || !version.isInt() ||
      version.toInt() != kStateVersion)
    throw std::invalid_argument(fmt::format("{}: not a data scheduler state of version {}", what, kStateVersion));
  const c10::IValue& type = dict_field(root, "type", what);
  const c10::IValue& param = dict_field(root, "schedule_param", what);
  if (!type.isString() || type.toStringRef() != type_name() || !param.isString() ||
      param.toStringRef() != schedule_param_) {
    throw std::invalid_argument(fmt::format(
        "{}: the state is of a {} scheduling '{}', this is a {} scheduling '{}'", what,
        type.isString() ? type.toStringRef() : "?", param.isString() ? param.toStringRef() : "?", type_name(),
        schedule_param_));
  }
  const c10::IValue& last_epoch = dict_field(root, "last_epoch", what);
  const c10::IValue& step_count = dict_field(root, "step_count", what);
  if (!last_epoch.isInt() || !step_count.isInt())
    throw std::invalid_argument(fmt::format("{}: last_epoch and step_count must be integers", what));
  auto base = values_from(dict_field(root, "base_param", what), what + " base_param");
  auto last = values_from(dict_field(root, "last_param", what), what + " last_param");
  const Config extra = detail::config_from_ivalue(dict_field(root, "extra", what), what + " extra");

  // The scheduled values go back into the sparsifier too, so that a scheduler
  // built (and stepped once) after the sparsifier was restored does not leave
  // its construction-time values behind.
  std::vector<std::pair<std::string, Config>> updates;
  for (const auto& [name, value] : last) {
    if (!sparsifier_.contains(name)) continue;
    Config config = sparsifier_.data_group(name);
    if (config.contains(schedule_param_) && std::holds_alternative<int64_t>(config.at(schedule_param_).variant())) {
      config.set(schedule_param_, to_integer(value, schedule_param_, name));
    } else {
      config.set(schedule_param_, value);
    }
    sparsifier_.check_config(name, config);
    updates.emplace_back(name, std::move(config));
  }
  load_extra_state(extra);
  last_epoch_ = last_epoch.toInt();
  step_count_ = step_count.toInt();
  base_param_ = std::move(base);
  last_param_ = std::move(last);
  for (auto& [name, config] : updates) sparsifier_.data_group(name) = std::move(config);
}

void BaseDataScheduler::save(const std::string& path) const { save_state_file(path, state_dict()); }

void BaseDataScheduler::load(const std::string& path) {
  const c10::IValue state = load_state_file(path, type_name() + " state");
  try {
    load_state_dict(state);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot load {} state from '{}': {}", type_name(), path, e.what()));
  }
}

}  // namespace sparsity
