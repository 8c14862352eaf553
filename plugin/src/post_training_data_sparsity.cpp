#include "sparsity/plugin/post_training_data_sparsity.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/logging.h"
#include "sparsity/plugin/trainer.h"

namespace sparsity {

PostTrainingDataSparsity::PostTrainingDataSparsity(std::string data_sparsifier_type, Config data_sparsifier_args,
                                                   PostTrainingDataSparsityOptions options)
    : type_(std::move(data_sparsifier_type)), args_(std::move(data_sparsifier_args)), options_(std::move(options)) {
  // Fail at construction, not after hours of training: build one sparsifier now.
  make_data_sparsifier(type_, args_);
}

PostTrainingDataSparsity::~PostTrainingDataSparsity() = default;

void PostTrainingDataSparsity::on_fit_end(Trainer& /*trainer*/, TrainingModule& module) {
  sparsified_ = deep_copy(*module.model(), options_.model_factory());
  sparsified_->eval();
  data_sparsifier_ = make_data_sparsifier(type_, args_);
  const std::vector<std::string> attached = attach_parameters(*sparsified_, *data_sparsifier_, options_.parameters());
  data_sparsifier_->step();
  data_sparsifier_->squash_mask();
  report_ = measure_sparsity(*sparsified_, attached);
  logger()->info("{}: {} sparsified {} parameters, {:.1f}% zeros\n{}", name(), type_,
                 attached.size(), 100.0 * overall_sparsity(report_), format_sparsity_table(report_));
}

}  // namespace sparsity
