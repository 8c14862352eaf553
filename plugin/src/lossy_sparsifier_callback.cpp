#include "sparsity/plugin/lossy_sparsifier_callback.h"

#include <ATen/core/ivalue.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cmath>
#include <functional>
#include <stdexcept>

#include "sparsity/config_error.h"
#include "sparsity/logging.h"
#include "sparsity/lossy/activation_sparsity.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/plugin/trainer.h"
#include "sparsity/state_file.h"

namespace sparsity {

namespace {

void check(const LossySparsifierCallbackOptions& o) {
  if (!std::isfinite(o.sharpness_factor()) || o.sharpness_factor() <= 0) {
    throw ConfigError(fmt::format("LossySparsifierCallback: sharpness_factor must be finite and > 0, got {}",
                                  o.sharpness_factor()),
                      "sharpness_factor");
  }
  if (o.sharpness_period() < 1) {
    throw ConfigError(
        fmt::format("LossySparsifierCallback: sharpness_period must be >= 1, got {}", o.sharpness_period()),
        "sharpness_period");
  }
  if (o.eval_batch_size() < 1) {
    throw ConfigError(
        fmt::format("LossySparsifierCallback: eval_batch_size must be >= 1, got {}", o.eval_batch_size()),
        "eval_batch_size");
  }
}

std::vector<double> sharpness_of(torch::nn::Module& model) {
  std::vector<double> values;
  for (const auto& layer : sparsifier_layers(model)) values.push_back(layer->a());
  return values;
}

}  // namespace

const OptionFields<LossySparsifierCallbackOptions>& LossySparsifierCallbackOptions::fields() {
  using O = LossySparsifierCallbackOptions;
  static const OptionFields<O> table = {
      SPARSITY_OPTION_FIELD(O, name),          SPARSITY_OPTION_FIELD(O, sharpness_factor),
      SPARSITY_OPTION_FIELD(O, sharpness_period), SPARSITY_OPTION_FIELD(O, convert_to_hard),
      SPARSITY_OPTION_FIELD(O, eval_on_validation), SPARSITY_OPTION_FIELD(O, eval_batch_size)};
  return table;
}

LossySparsifierCallbackOptions LossySparsifierCallbackOptions::from_config(const Config& config) {
  return options_from_config("LossySparsifierCallback", config, fields());
}

Config LossySparsifierCallbackOptions::to_config() const { return options_to_config(*this, fields()); }

LossySparsifierCallback::LossySparsifierCallback(LossySparsifierCallbackOptions options)
    : options_(std::move(options)) {
  check(options_);
}

at::Tensor LossySparsifierCallback::eval_inputs(const Trainer& trainer) const {
  if (options_.eval_inputs().defined()) return options_.eval_inputs();
  if (options_.eval_on_validation() && trainer.validation_data() != nullptr) return trainer.validation_data()->inputs();
  return {};
}

void LossySparsifierCallback::on_train_start(Trainer& /*trainer*/, TrainingModule& module) {
  model_ = module.model();
  auto layers = sparsifier_layers(*module.model());
  if (layers.empty()) {
    throw std::invalid_argument(
        "LossySparsifierCallback: the model has no LossySparsifier layer (add them with add_sparsifier_layers)");
  }
  if (!resumed_sharpness_.empty()) {
    if (resumed_sharpness_.size() != layers.size()) {
      throw std::invalid_argument(fmt::format("LossySparsifierCallback: the checkpoint holds the sharpness of {} "
                                              "layers, the model has {}",
                                              resumed_sharpness_.size(), layers.size()));
    }
    for (size_t i = 0; i < layers.size(); ++i) layers[i]->set_a(resumed_sharpness_[i]);
    resumed_sharpness_.clear();
  }
  sharpness_ = sharpness_of(*module.model());
}

void LossySparsifierCallback::on_train_epoch_end(Trainer& trainer, TrainingModule& module) {
  torch::nn::Module& model = *module.model();
  // The core's schedule, so that a callback-driven run and a hand-written loop
  // raise the sharpness at the same epochs.
  SharpnessSchedule(SharpnessScheduleOptions()
                        .factor(options_.sharpness_factor())
                        .period(options_.sharpness_period()))
      .epoch_end(model, trainer.current_epoch());
  sharpness_ = sharpness_of(model);
  measured_on_ = eval_inputs(trainer);
  if (measured_on_.defined()) {
    measure(module, "epoch end");
    trainer.log("activation_sparsity", report_->total());
  }
}

void LossySparsifierCallback::on_fit_end(Trainer& trainer, TrainingModule& module) {
  if (options_.convert_to_hard()) converted_ = convert_to_hard(*module.model());
  measured_on_ = eval_inputs(trainer);
  if (measured_on_.defined()) measure(module, options_.convert_to_hard() ? "after hard conversion" : "end");
}

namespace {

// Sparsifier layers the Sequential walk reaches (through nested Sequentials,
// the wrappers included) against all of them: the walk cannot see those
// inside a custom module, such as a residual block's slots.
bool walk_sees_every_sparsifier(torch::nn::Module& model) {
  std::function<int64_t(torch::nn::Module&)> reached = [&](torch::nn::Module& m) -> int64_t {
    int64_t n = 0;
    for (const auto& child : m.children()) {
      if (dynamic_cast<LossySparsifierImpl*>(child.get()) || dynamic_cast<LossyHardSparsifierImpl*>(child.get())) {
        ++n;
      } else if (dynamic_cast<torch::nn::SequentialImpl*>(child.get())) {
        n += reached(*child);
      }
    }
    return n;
  };
  int64_t all = 0;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    all += dynamic_cast<LossySparsifierImpl*>(m.get()) || dynamic_cast<LossyHardSparsifierImpl*>(m.get());
  }
  return reached(model) == all;
}

}  // namespace

void LossySparsifierCallback::measure(TrainingModule& module, const char* when) {
  const auto model = module.model();
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(model.get());
  if (sequential != nullptr && !walk_sees_every_sparsifier(*sequential)) {
    report_ = measure_activation_sparsity_at_sites(
        *model, [sequential](const at::Tensor& x) { return sequential->forward(x); }, measured_on_,
        SiteMeasurementOptions().batch_size(options_.eval_batch_size()).soft_as_hard(true));
  } else {
    report_ = measure_activation_sparsity(*model, measured_on_, options_.eval_batch_size());
  }
  logger()->info("LossySparsifierCallback: activation sparsity ({}) {:.1f}%\n{}", when, 100.0 * report_->total(),
                 report_->to_string());
}

c10::IValue LossySparsifierCallback::state_dict() const {
  auto state = new_state_dict();
  state.insert("sharpness", c10::List<double>(sharpness_));
  return state;
}

void LossySparsifierCallback::check_state_dict(const c10::IValue& state) const {
  if (!state.isGenericDict() || !state.toGenericDict().contains(c10::IValue(std::string("sharpness")))) {
    throw std::invalid_argument("LossySparsifierCallback: the state has no 'sharpness'");
  }
  if (!state.toGenericDict().at(c10::IValue(std::string("sharpness"))).isDoubleList()) {
    throw std::invalid_argument("LossySparsifierCallback: 'sharpness' must be a list of floats");
  }
}

void LossySparsifierCallback::load_state_dict(const c10::IValue& state) {
  check_state_dict(state);
  resumed_sharpness_ = state.toGenericDict().at(c10::IValue(std::string("sharpness"))).toDoubleVector();
}

}  // namespace sparsity
