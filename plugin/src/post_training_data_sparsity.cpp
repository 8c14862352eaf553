#include "sparsity/plugin/post_training_data_sparsity.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include "component_config.h"
#include "data_sparsity_options.h"
#include "mask_agreement.h"
#include "sparsity/config_error.h"
#include "sparsity/data_sparsifier/mask_guard.h"
#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/logging.h"
#include "sparsity/plugin/trainer.h"

namespace sparsity {

namespace {

constexpr const char* kType = "PostTrainingDataSparsity";
constexpr int64_t kMaxFineTuneEpochs = 10000;

// Puts back what PostTrainingDataSparsity::fine_tune borrowed the live model
// for: values, gradients (the train_epochs optimizer replaced them) and mode.
void restore_live_model(torch::nn::Module& live, bool was_training,
                        const std::vector<std::pair<at::Tensor, at::Tensor>>& values,
                        const std::vector<std::pair<at::Tensor, at::Tensor>>& grads) {
  at::NoGradGuard no_grad;
  for (const auto& [tensor, value] : values) tensor.copy_(value);
  for (const auto& [parameter, grad] : grads) parameter.mutable_grad() = grad;
  live.train(was_training);
}

DataSparsifierBuilder builder_of(const std::string& type, const Config& args) {
  return [type, args] { return make_data_sparsifier(type, args); };
}

}  // namespace

const OptionFields<PostTrainingDataSparsityOptions>& PostTrainingDataSparsityOptions::fields() {
  using O = PostTrainingDataSparsityOptions;
  static const OptionFields<O> table = {SPARSITY_OPTION_FIELD(O, name), SPARSITY_OPTION_FIELD(O, fine_tune_epochs),
                                        detail::include_field<O>(), detail::exclude_field<O>()};
  return table;
}

PostTrainingDataSparsity::PostTrainingDataSparsity(std::string data_sparsifier_type, Config data_sparsifier_args,
                                                   PostTrainingDataSparsityOptions options)
    : PostTrainingDataSparsity(builder_of(data_sparsifier_type, data_sparsifier_args), std::move(options)) {
  type_ = std::move(data_sparsifier_type);
  args_ = std::move(data_sparsifier_args);
}

PostTrainingDataSparsity::PostTrainingDataSparsity(DataSparsifierBuilder make_sparsifier,
                                                   PostTrainingDataSparsityOptions options)
    : make_sparsifier_(std::move(make_sparsifier)), options_(std::move(options)) {
  if (options_.fine_tune_epochs() < 0 || options_.fine_tune_epochs() > kMaxFineTuneEpochs) {
    throw ConfigError(fmt::format("{}: fine_tune_epochs must be in [0, {}], got {}", name(), kMaxFineTuneEpochs,
                                  options_.fine_tune_epochs()),
                      "fine_tune_epochs");
  }
  if (!make_sparsifier_) throw std::invalid_argument(fmt::format("{}: the sparsifier builder is empty", name()));
  // Fail at construction, not after hours of training: build one sparsifier now.
  if (!make_sparsifier_()) throw std::invalid_argument(fmt::format("{}: the sparsifier builder returned null", name()));
}

PostTrainingDataSparsity::~PostTrainingDataSparsity() = default;

std::shared_ptr<PostTrainingDataSparsity> PostTrainingDataSparsity::from_config(const Config& config) {
  const auto options = options_from_config(kType, config, PostTrainingDataSparsityOptions::fields(), {}, {"sparsifier"});
  const detail::ComponentConfig sparsifier =
      detail::read_component(kType, config, "sparsifier", "data sparsifier", registered_data_sparsifiers());
  try {
    return std::make_shared<PostTrainingDataSparsity>(sparsifier.type, sparsifier.args, options);
  } catch (const std::invalid_argument& e) {
    throw detail::component_error("data sparsifier", sparsifier.type, "sparsifier", e);
  }
}

Config PostTrainingDataSparsity::to_config() const {
  Config config;
  if (!type_.empty()) config.set("sparsifier", detail::ComponentConfig{type_, args_}.to_config());
  return detail::callback_config(std::move(config), options_);
}

void PostTrainingDataSparsity::check_model(const torch::nn::Module& model) const {
  detail::check_selects_a_parameter(name(), options_.parameters(), model);
}

void PostTrainingDataSparsity::on_fit_start(Trainer& /*trainer*/, TrainingModule& module) {
  check_model(*module.model());
  detail::check_copyable(name(), *module.model(), options_.model_factory());
}

void PostTrainingDataSparsity::on_fit_end(Trainer& trainer, TrainingModule& module) {
  sparsified_ = deep_copy(*module.model(), options_.model_factory());
  sparsified_->eval();
  data_sparsifier_ = make_sparsifier_();
  const std::vector<std::string> attached = attach_parameters(*sparsified_, *data_sparsifier_, options_.parameters());
  data_sparsifier_->step();
  detail::check_masks_agree(trainer, *data_sparsifier_, name());
  fine_tune_loss_ = std::numeric_limits<double>::quiet_NaN();
  if (options_.fine_tune_epochs() > 0) fine_tune(trainer, module, attached);
  data_sparsifier_->squash_mask();
  report_ = measure_sparsity(*sparsified_, attached);
  logger()->info("{}: {} sparsified {} parameters, {:.1f}% zeros\n{}", name(), type_.empty() ? "the sparsifier" : type_,
                 attached.size(), 100.0 * overall_sparsity(report_), format_sparsity_table(report_));
}

void PostTrainingDataSparsity::fine_tune(Trainer& trainer, TrainingModule& module,
                                         const std::vector<std::string>& attached) {
  const DataSource* train = trainer.train_data();
  if (train == nullptr) throw std::logic_error(fmt::format("{}: fine_tune_epochs needs the running fit's training data", name()));
  // The module trains its own model with its own optimizer: the copy's
  // weights go into the live model for the fine-tune and come back after, and
  // the live model gets its own values back exactly.
  torch::nn::Module& live = *module.model();
  const bool was_training = live.is_training();
  std::vector<std::pair<at::Tensor, at::Tensor>> kept;  // live tensor, its value
  for (const auto& tensor : live.parameters()) kept.emplace_back(tensor, tensor.detach().clone());
  for (const auto& tensor : live.buffers()) kept.emplace_back(tensor, tensor.detach().clone());
  std::vector<std::pair<at::Tensor, at::Tensor>> grads;  // parameter, its gradient (maybe undefined)
  for (const auto& tensor : live.parameters())
    grads.emplace_back(tensor, tensor.grad().defined() ? tensor.grad().clone() : at::Tensor());
  const auto copy_parameters = sparsified_->named_parameters();
  const auto copy_buffers = sparsified_->named_buffers();
  auto copy_into = [](const torch::OrderedDict<std::string, at::Tensor>& from,
                      const torch::OrderedDict<std::string, at::Tensor>& to) {
    at::NoGradGuard no_grad;
    for (const auto& item : to) item.value().copy_(from[item.key()]);
  };
  try {
    copy_into(copy_parameters, live.named_parameters());
    copy_into(copy_buffers, live.named_buffers());
    {
      // The masks are the copy's, registered under the same names.
      MaskGuard guard(live, *data_sparsifier_, attached);
      fine_tune_loss_ = trainer.train_epochs(module, *train, options_.fine_tune_epochs(), [&] { guard.after_step(); });
    }
    copy_into(live.named_parameters(), copy_parameters);
    copy_into(live.named_buffers(), copy_buffers);
  } catch (...) {
    restore_live_model(live, was_training, kept, grads);
    throw;
  }
  restore_live_model(live, was_training, kept, grads);
  logger()->info("{}: fine-tuned the sparsified copy for {} epochs, train loss {:.4g}", name(),
                 options_.fine_tune_epochs(), fine_tune_loss_);
}

}  // namespace sparsity
