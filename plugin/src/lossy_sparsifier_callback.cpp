#include "sparsity/plugin/lossy_sparsifier_callback.h"

#include <ATen/core/ivalue.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <cmath>
#include <stdexcept>

#include "sparsity/logging.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/plugin/trainer.h"
#include "sparsity/state_file.h"

namespace sparsity {

namespace {

void check(const LossySparsifierCallbackOptions& o) {
  if (!std::isfinite(o.sharpness_factor()) || o.sharpness_factor() <= 0) {
    throw std::invalid_argument(fmt::format(
        "LossySparsifierCallback: sharpness_factor must be finite and > 0, got {}", o.sharpness_factor()));
  }
  if (o.sharpness_period() < 1) {
    throw std::invalid_argument(
        fmt::format("LossySparsifierCallback: sharpness_period must be >= 1, got {}", o.sharpness_period()));
  }
  if (o.eval_batch_size() < 1) {
    throw std::invalid_argument(
        fmt::format("LossySparsifierCallback: eval_batch_size must be >= 1, got {}", o.eval_batch_size()));
  }
}

std::vector<double> sharpness_of(torch::nn::Module& model) {
  std::vector<double> values;
  for (const auto& layer : sparsifier_layers(model)) values.push_back(layer->a());
  return values;
}

}  // namespace

LossySparsifierCallbackOptions LossySparsifierCallbackOptions::from_config(const Config& config) {
  config.check_keys("LossySparsifierCallback",
                    {"sharpness_factor", "sharpness_period", "convert_to_hard", "eval_batch_size"});
  LossySparsifierCallbackOptions o;
  o.sharpness_factor(config.get_or<double>("sharpness_factor", o.sharpness_factor()));
  o.sharpness_period(config.get_or<int64_t>("sharpness_period", o.sharpness_period()));
  o.convert_to_hard(config.get_or<bool>("convert_to_hard", o.convert_to_hard()));
  o.eval_batch_size(config.get_or<int64_t>("eval_batch_size", o.eval_batch_size()));
  return o;
}

LossySparsifierCallback::LossySparsifierCallback(LossySparsifierCallbackOptions options)
    : options_(std::move(options)) {
  check(options_);
}

void LossySparsifierCallback::on_train_start(Trainer& /*trainer*/, TrainingModule& module) {
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
  if ((trainer.current_epoch() + 1) % options_.sharpness_period() == 0) {
    multiply_sharpness(model, options_.sharpness_factor());
  }
  sharpness_ = sharpness_of(model);
  if (options_.eval_inputs().defined()) {
    measure(module, "epoch end");
    trainer.log("activation_sparsity", report_->total());
  }
}

void LossySparsifierCallback::on_fit_end(Trainer& /*trainer*/, TrainingModule& module) {
  if (options_.convert_to_hard()) converted_ = convert_to_hard(*module.model());
  if (options_.eval_inputs().defined()) measure(module, options_.convert_to_hard() ? "after hard conversion" : "end");
}

void LossySparsifierCallback::measure(TrainingModule& module, const char* when) {
  report_ = measure_activation_sparsity(*module.model(), options_.eval_inputs(), options_.eval_batch_size());
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
