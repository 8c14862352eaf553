#include "sparsity/plugin/training_aware_data_sparsity.h"

#include <ATen/core/ivalue.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <stdexcept>

#include "sparsity/data_scheduler/base_data_scheduler.h"
#include "sparsity/data_scheduler/registry.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/data_sparsifier/mask_guard.h"
#include "sparsity/data_sparsifier/registry.h"
#include "component_config.h"
#include "data_sparsity_options.h"
#include "mask_agreement.h"
#include "sparsity/config_error.h"
#include "sparsity/logging.h"
#include "sparsity/state_file.h"
#include "sparsity/plugin/trainer.h"

namespace sparsity {

namespace {

constexpr const char* kType = "TrainingAwareDataSparsity";
constexpr int64_t kMaxEpoch = 1000000;  // bounds the rewind epochs a config may name
const c10::IValue kRewindKey(std::string("rewind_weights"));

}  // namespace

const OptionFields<TrainingAwareDataSparsityOptions>& TrainingAwareDataSparsityOptions::fields() {
  using O = TrainingAwareDataSparsityOptions;
  static const OptionFields<O> table = {SPARSITY_OPTION_FIELD(O, name), SPARSITY_OPTION_FIELD(O, apply_to_model),
                                        SPARSITY_OPTION_FIELD(O, update_every_n_steps),
                                        SPARSITY_OPTION_FIELD(O, rewind_to_epoch), SPARSITY_OPTION_FIELD(O, rewind_at_epoch),
                                        detail::include_field<O>(),
                                        detail::exclude_field<O>()};
  return table;
}

TrainingAwareDataSparsity::TrainingAwareDataSparsity(std::string data_sparsifier_type, Config data_sparsifier_args,
                                                     std::string data_scheduler_type, Config data_scheduler_args,
                                                     TrainingAwareDataSparsityOptions options)
    : TrainingAwareDataSparsity(
          [type = data_sparsifier_type, args = data_sparsifier_args] { return make_data_sparsifier(type, args); },
          [type = data_scheduler_type, args = data_scheduler_args](BaseDataSparsifier& sparsifier) {
            return make_data_scheduler(type, sparsifier, args);
          },
          std::move(options)) {
  sparsifier_type_ = std::move(data_sparsifier_type);
  scheduler_type_ = std::move(data_scheduler_type);
  sparsifier_args_ = std::move(data_sparsifier_args);
  scheduler_args_ = std::move(data_scheduler_args);
}

TrainingAwareDataSparsity::TrainingAwareDataSparsity(DataSparsifierBuilder make_sparsifier,
                                                     DataSchedulerBuilder make_scheduler,
                                                     TrainingAwareDataSparsityOptions options)
    : make_sparsifier_(std::move(make_sparsifier)),
      make_scheduler_(std::move(make_scheduler)),
      options_(std::move(options)) {
  if (options_.update_every_n_steps() < 0) {
    throw ConfigError(fmt::format("{}: update_every_n_steps must be >= 0, got {}", name(),
                                  options_.update_every_n_steps()),
                      "update_every_n_steps");
  }
  check_rewind_options();
  if (!make_sparsifier_ || !make_scheduler_) {
    throw std::invalid_argument(fmt::format("{}: the sparsifier or scheduler builder is empty", name()));
  }
  // Fail at construction, not after the first epoch: build both once now, on a
  // throwaway piece of data so that the scheduler has something to schedule.
  check_builders();
}

void TrainingAwareDataSparsity::check_rewind_options() const {
  const int64_t to = options_.rewind_to_epoch(), at = options_.rewind_at_epoch();
  if (to < -1 || to > kMaxEpoch) {
    throw ConfigError(fmt::format("{}: rewind_to_epoch must be -1 (off) or an epoch in [0, {}], got {}", name(),
                                  kMaxEpoch, to),
                      "rewind_to_epoch");
  }
  if (to == -1) {
    if (at != -1) {
      throw ConfigError(fmt::format("{}: rewind_at_epoch is {} but rewind_to_epoch is -1 (off): set rewind_to_epoch "
                                    "(0 rewinds to the initial weights)",
                                    name(), at),
                        "rewind_at_epoch");
    }
    return;
  }
  if (!options_.apply_to_model()) {
    throw ConfigError(fmt::format("{}: rewind_to_epoch {} needs apply_to_model: true (the rewound weights train under "
                                  "the masks, held on the live model)",
                                  name(), to),
                      "rewind_to_epoch");
  }
  if (at <= to || at > kMaxEpoch) {
    throw ConfigError(fmt::format("{}: rewind_at_epoch must be an epoch after rewind_to_epoch ({}) and at most {}, "
                                  "got {}",
                                  name(), to, kMaxEpoch, at),
                      "rewind_at_epoch");
  }
}

void TrainingAwareDataSparsity::check_builders() const {
  auto sparsifier = make_sparsifier_();
  if (!sparsifier) throw std::invalid_argument(fmt::format("{}: the sparsifier builder returned null", name()));
  at::Tensor probe = at::zeros({4, 4});
  sparsifier->add_data("probe", probe);
  if (!make_scheduler_(*sparsifier)) {
    throw std::invalid_argument(fmt::format("{}: the scheduler builder returned null", name()));
  }
}

std::shared_ptr<TrainingAwareDataSparsity> TrainingAwareDataSparsity::from_config(const Config& config) {
  const auto options = options_from_config(kType, config, TrainingAwareDataSparsityOptions::fields(), {},
                                           {"sparsifier", "scheduler"});
  const detail::ComponentConfig sparsifier =
      detail::read_component(kType, config, "sparsifier", "data sparsifier", registered_data_sparsifiers());
  const detail::ComponentConfig scheduler =
      detail::read_component(kType, config, "scheduler", "data scheduler", registered_data_schedulers());
  // Each part on its own first, so that an error names the part it is in.
  std::unique_ptr<BaseDataSparsifier> probe;
  try {
    probe = make_data_sparsifier(sparsifier.type, sparsifier.args);
  } catch (const std::invalid_argument& e) {
    throw detail::component_error("data sparsifier", sparsifier.type, "sparsifier", e);
  }
  try {
    at::Tensor data = at::zeros({4, 4});
    probe->add_data("probe", data);
    make_data_scheduler(scheduler.type, *probe, scheduler.args);
  } catch (const std::invalid_argument& e) {
    throw detail::component_error("data scheduler", scheduler.type, "scheduler", e);
  }
  return std::make_shared<TrainingAwareDataSparsity>(sparsifier.type, sparsifier.args, scheduler.type, scheduler.args,
                                                     options);
}

Config TrainingAwareDataSparsity::to_config() const {
  Config config;
  if (!sparsifier_type_.empty()) {
    config.set("sparsifier", detail::ComponentConfig{sparsifier_type_, sparsifier_args_}.to_config());
    config.set("scheduler", detail::ComponentConfig{scheduler_type_, scheduler_args_}.to_config());
  }
  return detail::callback_config(std::move(config), options_);
}

void TrainingAwareDataSparsity::check_model(const torch::nn::Module& model) const {
  detail::check_selects_a_parameter(name(), options_.parameters(), model);
}

void TrainingAwareDataSparsity::on_fit_start(Trainer& trainer, TrainingModule& module) {
  check_model(*module.model());
  // Not an error: a fit cut short on purpose, to be resumed with more epochs,
  // rewinds in the fit that reaches the epoch.
  if (rewinding() && options_.rewind_at_epoch() >= trainer.options().max_epochs()) {
    logger()->warn("{}: rewind_at_epoch {} is not before max_epochs {}: this fit ends before the rewind", name(),
                   options_.rewind_at_epoch(), trainer.options().max_epochs());
  }
  detail::check_copyable(name(), *module.model(), options_.model_factory());
}

TrainingAwareDataSparsity::~TrainingAwareDataSparsity() = default;

void TrainingAwareDataSparsity::on_train_start(Trainer& trainer, TrainingModule& module) {
  data_sparsifier_ = make_sparsifier_();
  data_sparsifier_->set_replace_warning(false);  // every update re-attaches a fresh copy on purpose
  sparsified_ = deep_copy(*module.model(), options_.model_factory());
  attached_ = attach_parameters(*sparsified_, *data_sparsifier_, options_.parameters());
  data_scheduler_ = make_scheduler_(*data_sparsifier_);
  saved_state_.reset();
  // Each fit finds its own ticket: nothing of a previous fit's is reused.
  rewind_weights_.clear();
  rewound_ = false;
  report_.clear();

  if (resumed_state_) {
    // A checkpoint's state: the last update's sparsifier state and masks, and
    // the scheduler where it stood.
    const auto state = resumed_state_->toGenericDict();
    const c10::IValue sparsifier_state = state.at(c10::IValue(std::string("sparsifier")));
    if (!sparsifier_state.isNone()) {
      data_sparsifier_->load_state_dict(sparsifier_state);
      saved_state_ = std::make_shared<c10::IValue>(data_sparsifier_->state_dict());
    }
    data_scheduler_->load_state_dict(state.at(c10::IValue(std::string("scheduler"))));
    if (state.contains(kRewindKey)) {
      for (const auto& item : state.at(kRewindKey).toGenericDict())
        rewind_weights_[item.key().toStringRef()] = item.value().toTensor();
    }
    resumed_state_.reset();
  }
  if (rewinding()) {
    const int64_t start = trainer.current_epoch();
    if (start > options_.rewind_to_epoch() && start <= options_.rewind_at_epoch() && rewind_weights_.empty()) {
      throw std::invalid_argument(fmt::format(
          "{}: resuming at epoch {} needs the weights saved at epoch {} (rewind_to_epoch), and the checkpoint has none",
          name(), start, options_.rewind_to_epoch()));
    }
    rewound_ = start > options_.rewind_at_epoch();
    if (rewound_ && saved_state_) update_report();  // no more updates to log it: the checkpoint's masks
    if (!rewind_weights_.empty()) {
      for (const auto& item : module.model()->named_parameters()) {
        const auto saved = rewind_weights_.find(item.key());
        if (saved == rewind_weights_.end() || !saved->second.sizes().equals(item.value().sizes())) {
          throw std::invalid_argument(fmt::format("{}: the checkpoint's rewind weights have no '{}' of shape [{}]",
                                                  name(), item.key(), fmt::join(item.value().sizes(), ", ")));
        }
      }
    }
  }

  // The masks are computed on the copy, registered under the same names; the
  // guard holds them on the live model (all ones until the first update, or
  // a checkpoint's).
  guard_.reset();
  if (options_.apply_to_model()) guard_ = std::make_unique<MaskGuard>(*module.model(), *data_sparsifier_, attached_);
}

void TrainingAwareDataSparsity::on_train_epoch_start(Trainer& trainer, TrainingModule& module) {
  if (saved_state_) data_sparsifier_->load_state_dict(*saved_state_);
  if (!rewinding()) return;
  if (trainer.current_epoch() == options_.rewind_to_epoch()) {
    rewind_weights_.clear();
    for (const auto& item : module.model()->named_parameters())
      rewind_weights_[item.key()] = item.value().detach().clone();
  }
  if (trainer.current_epoch() == options_.rewind_at_epoch() && !rewound_) rewind(trainer, module);
}

void TrainingAwareDataSparsity::rewind(Trainer& trainer, TrainingModule& module) {
  {
    at::NoGradGuard no_grad;
    for (const auto& item : module.model()->named_parameters()) item.value().copy_(rewind_weights_.at(item.key()));
  }
  guard_->apply();
  // A fresh optimizer's state: momentum and moments of the weights before the
  // rewind would push the rewound ones along the old trajectory.
  if (trainer.optimizer() != nullptr) trainer.optimizer()->state().clear();
  rewound_ = true;
  logger()->info("{}: epoch {}: weights rewound to their values at epoch {}, masks fixed from now on", name(),
                 trainer.current_epoch(), options_.rewind_to_epoch());
}

void TrainingAwareDataSparsity::on_train_batch_end(Trainer& trainer, TrainingModule& module) {
  const int64_t every = options_.update_every_n_steps();
  if (every > 0 && trainer.global_step() % every == 0 && !rewound_) {
    update_masks(trainer, module);
  } else if (guard_ && saved_state_) {
    guard_->after_step();  // the optimizer step may have moved pruned weights (stale momentum, decay)
  }
}

void TrainingAwareDataSparsity::on_train_epoch_end(Trainer& trainer, TrainingModule& module) {
  if (options_.update_every_n_steps() == 0 && !rewound_) update_masks(trainer, module);
  // Several callbacks on one Trainer each log under their own name.
  const std::string prefix = options_.name().empty() ? "" : options_.name() + "/";
  trainer.log(prefix + "data_sparsity", overall_sparsity(report_));
  for (const auto& row : report_) trainer.log(prefix + "sparsity/" + row.name, row.sparsity());
}

void TrainingAwareDataSparsity::update_masks(Trainer& trainer, TrainingModule& module) {
  sparsified_ = deep_copy(*module.model(), options_.model_factory());
  // Each name's config as the last update left it (the scheduler's levels).
  std::map<std::string, Config> configs;
  if (saved_state_) {
    for (const auto& dotted : attached_) {
      const std::string name = sparsifier_name(dotted);
      configs[name] = data_sparsifier_->data_group(name);
    }
  }
  attach_parameters(*sparsified_, *data_sparsifier_, options_.parameters(), configs);
  data_sparsifier_->step();
  detail::check_masks_agree(trainer, *data_sparsifier_, name());
  data_scheduler_->step();
  saved_state_ = std::make_shared<c10::IValue>(data_sparsifier_->state_dict());
  if (guard_) guard_->update_masks();
  update_report();
}

void TrainingAwareDataSparsity::update_report() {
  // The copy's sparsity as its masks would leave it.
  report_.clear();
  for (const auto& dotted : attached_) {
    const at::Tensor masked = data_sparsifier_->get_data(sparsifier_name(dotted), /*return_original=*/false);
    ParameterSparsity row;
    row.name = dotted;
    row.shape = masked.sizes().vec();
    row.numel = masked.numel();
    row.zeros = row.numel - masked.count_nonzero().item<int64_t>();
    report_.push_back(std::move(row));
  }
}

void TrainingAwareDataSparsity::on_train_end(Trainer& /*trainer*/, TrainingModule& module) {
  guard_.reset();
  if (!data_sparsifier_) return;
  // The result is the final weights under the last update's masks. With
  // updates every N steps the last update may precede the last steps, and a
  // resumed run's sparsifier holds the checkpoint's copy: a fresh copy of the
  // final model makes both runs' results the same, bit for bit. (Re-attaching
  // keeps each name's mask; at epoch-end updates the copy is unchanged.)
  sparsified_ = deep_copy(*module.model(), options_.model_factory());
  std::map<std::string, Config> configs;
  for (const auto& dotted : attached_) {
    const std::string name = sparsifier_name(dotted);
    configs[name] = data_sparsifier_->data_group(name);
  }
  attach_parameters(*sparsified_, *data_sparsifier_, options_.parameters(), configs);
  data_sparsifier_->squash_mask();
  report_ = measure_sparsity(*sparsified_, attached_);
  logger()->info("{}: {} under {}, {:.1f}% zeros in the sparsified copy\n{}", name(),
                 sparsifier_type_.empty() ? "the sparsifier" : sparsifier_type_,
                 scheduler_type_.empty() ? "its scheduler" : scheduler_type_, 100.0 * overall_sparsity(report_), format_sparsity_table(report_));
}

c10::IValue TrainingAwareDataSparsity::state_dict() const {
  auto state = new_state_dict();
  state.insert("sparsifier", saved_state_ ? *saved_state_ : c10::IValue());
  state.insert("scheduler", data_scheduler_ ? data_scheduler_->state_dict() : c10::IValue());
  if (!rewind_weights_.empty()) {
    c10::Dict<std::string, at::Tensor> weights;
    for (const auto& [dotted, value] : rewind_weights_) weights.insert(dotted, value);
    state.insert(kRewindKey, weights);
  }
  return state;
}

void TrainingAwareDataSparsity::check_state_dict(const c10::IValue& state) const {
  if (!state.isGenericDict()) {
    throw std::invalid_argument(fmt::format("TrainingAwareDataSparsity: expected a dict state, got {}", state.tagKind()));
  }
  const auto dict = state.toGenericDict();
  for (const char* key : {"sparsifier", "scheduler"}) {
    if (!dict.contains(c10::IValue(std::string(key)))) {
      throw std::invalid_argument(fmt::format("TrainingAwareDataSparsity: state has no '{}'", key));
    }
  }
  if (dict.contains(kRewindKey)) {
    const c10::IValue& weights = dict.at(kRewindKey);
    bool tensors = weights.isGenericDict();
    if (tensors) {
      for (const auto& item : weights.toGenericDict()) tensors = tensors && item.key().isString() && item.value().isTensor();
    }
    if (!tensors) {
      throw std::invalid_argument(
          fmt::format("TrainingAwareDataSparsity: state's 'rewind_weights' is not a dict of named tensors ({})",
                      weights.tagKind()));
    }
  }
}

void TrainingAwareDataSparsity::load_state_dict(const c10::IValue& state) {
  check_state_dict(state);
  if (state.toGenericDict().at(c10::IValue(std::string("scheduler"))).isNone()) return;  // saved before training started
  resumed_state_ = std::make_shared<c10::IValue>(state);
}

}  // namespace sparsity
