#include "sparsity/plugin/post_training_data_sparsity.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include "component_config.h"
#include "data_sparsity_options.h"
#include "sparsity/config_error.h"
#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/logging.h"
#include "sparsity/plugin/trainer.h"

namespace sparsity {

namespace {

constexpr const char* kType = "PostTrainingDataSparsity";

DataSparsifierBuilder builder_of(const std::string& type, const Config& args) {
  return [type, args] { return make_data_sparsifier(type, args); };
}

}  // namespace

const OptionFields<PostTrainingDataSparsityOptions>& PostTrainingDataSparsityOptions::fields() {
  using O = PostTrainingDataSparsityOptions;
  static const OptionFields<O> table = {SPARSITY_OPTION_FIELD(O, name), detail::include_field<O>(),
                                        detail::exclude_field<O>()};
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

void PostTrainingDataSparsity::on_fit_end(Trainer& /*trainer*/, TrainingModule& module) {
  sparsified_ = deep_copy(*module.model(), options_.model_factory());
  sparsified_->eval();
  data_sparsifier_ = make_sparsifier_();
  const std::vector<std::string> attached = attach_parameters(*sparsified_, *data_sparsifier_, options_.parameters());
  data_sparsifier_->step();
  data_sparsifier_->squash_mask();
  report_ = measure_sparsity(*sparsified_, attached);
  logger()->info("{}: {} sparsified {} parameters, {:.1f}% zeros\n{}", name(), type_.empty() ? "the sparsifier" : type_,
                 attached.size(), 100.0 * overall_sparsity(report_), format_sparsity_table(report_));
}

}  // namespace sparsity
