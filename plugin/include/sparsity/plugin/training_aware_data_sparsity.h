#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/option_fields.h"
#include "sparsity/plugin/model_copy.h"
#include "sparsity/plugin/parameter_selection.h"
#include "sparsity/plugin/sparsifying_callback.h"
#include "sparsity/plugin/sparsity_report.h"

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

class BaseDataSparsifier;
class BaseDataScheduler;
class MaskGuard;

/// Options of `TrainingAwareDataSparsity` beyond the reference's.
struct TrainingAwareDataSparsityOptions {
  /// The config keys: `name`, `apply_to_model`, `update_every_n_steps`,
  /// `rewind_to_epoch`, `rewind_at_epoch`, `include`, `exclude`.
  /// `model_factory` has no Config form.
  static const OptionFields<TrainingAwareDataSparsityOptions>& fields();

  /// Which parameters are sparsified (default: all, as the reference).
  TORCH_ARG(ParameterSelection, parameters) = {};
  /// Builds a fresh model when the trained one is not cloneable.
  TORCH_ARG(ModelFactory, model_factory) = nullptr;
  /// The callback's `name()` (in logs and checkpoints); empty: "TrainingAwareDataSparsity". Give
  /// each of several such callbacks on one Trainer its own.
  TORCH_ARG(std::string, name) = "";
  /// Also apply the masks to the live model and keep them applied (a
  /// `MaskGuard`): pruned weights are zeroed at each mask update, their
  /// gradients are masked, and they are zeroed again after every optimizer
  /// step, so the network trains around its sparsity (gradual magnitude pruning). Off: the reference's
  /// behaviour, the live model is never touched.
  TORCH_ARG(bool, apply_to_model) = false;
  /// Update the masks (copy, attach, sparsifier and scheduler steps) every N
  /// optimizer steps instead of at each epoch end; 0 = at epoch ends. The
  /// scheduler then counts updates, not epochs.
  TORCH_ARG(int64_t, update_every_n_steps) = 0;
  /// Lottery-ticket rewinding (Frankle & Carbin): -1 = off; k >= 0 = save the
  /// live model's parameters at the start of epoch k (0: as initialized, k:
  /// after k epochs) and, at the start of epoch `rewind_at_epoch`, reset them
  /// to those values, keep the masks of the last update, and train on with
  /// them held and no more mask updates. Needs `apply_to_model`.
  TORCH_ARG(int64_t, rewind_to_epoch) = -1;
  /// With rewinding: the epoch (0-based) at whose start the weights are
  /// rewound; after `rewind_to_epoch`, and before `max_epochs` (or the fit
  /// ends before the rewind, with a warning: one to be resumed further). The schedule
  /// should reach its final level by then (its last update is at the end of
  /// epoch `rewind_at_epoch - 1`).
  TORCH_ARG(int64_t, rewind_at_epoch) = -1;
};

/// Sparsifies a copy of the model during training under a data scheduler (the
/// reference's `TrainingAwareDataSparsity`):
/// - `on_train_start`: creates the sparsifier and scheduler by type name,
///   deep-copies the model and attaches the copy's parameters;
/// - `on_train_epoch_start`: restores the sparsifier state saved at the last
///   epoch end;
/// - `on_train_epoch_end`: deep-copies the model afresh, attaches it with each
///   name's config carried over (so scheduled levels persist), sparsifier
///   `step()`, scheduler `step()`, saves the state; logs the sparsity
///   (`data_sparsity` and `sparsity/<parameter>` in metrics.csv);
/// - `on_train_end`: deep-copies the final model, attaches it under the last
///   update's masks and `squash_mask()`s, so `sparsified()` is the final
///   weights, masked (with `update_every_n_steps` the last update may come
///   before the last steps; their weights are kept, not dropped); logs the
///   per-layer table.
/// With `apply_to_model` the masks also hold on the live model (see the
/// option). With `rewind_to_epoch` it finds a lottery ticket: at the start of
/// epoch `rewind_at_epoch` the live model's parameters go back to their
/// values at the start of epoch `rewind_to_epoch` (pruned ones stay zero),
/// the optimizer's state (momentum, moments) is cleared as a fresh
/// optimizer's, and training goes on under the masks of then, unchanged. The callback's state (sparsifier, scheduler, masks) goes into the
/// Trainer's checkpoints: a resumed run computes the same masks and levels as
/// an uninterrupted one.
///
/// Example:
/// ```
/// auto aware = std::make_shared<sparsity::TrainingAwareDataSparsity>(
///     "DataNormSparsifier", sparsity::Config{{"sparsity_level", 0.9}},
///     "CubicSLScheduler", sparsity::Config{{"delta_t", 1}, {"total_t", 5}},
///     sparsity::TrainingAwareDataSparsityOptions().apply_to_model(true).parameters({{"*weight"}, {}}));
/// ```
///
/// Typed, with the sparsifier and scheduler built in C++:
/// ```
/// auto typed = std::make_shared<sparsity::TrainingAwareDataSparsity>(
///     [] { return std::make_unique<sparsity::DataNormSparsifier>(sparsity::DataNormSparsifierOptions().sparsity_level(0.9)); },
///     [](sparsity::BaseDataSparsifier& s) {
///       return std::make_unique<sparsity::CubicSLScheduler>(s, sparsity::CubicSLSchedulerOptions().total_t(5));
///     });
/// ```
///
/// Registered for `make_callback` as "TrainingAwareDataSparsity" with the
/// keys `sparsifier: {type, args}`, `scheduler: {type, args}` and those of the
/// options (`to_config()`).
class TrainingAwareDataSparsity : public SparsifyingCallback {
 public:
  /// The reference's form: sparsifier and scheduler by registered type name
  /// and arguments.
  TrainingAwareDataSparsity(std::string data_sparsifier_type, Config data_sparsifier_args,
                            std::string data_scheduler_type, Config data_scheduler_args,
                            TrainingAwareDataSparsityOptions options = {});
  /// The typed form: the builders are called once now (on a probe) to check
  /// them, and again at `on_train_start`.
  TrainingAwareDataSparsity(DataSparsifierBuilder make_sparsifier, DataSchedulerBuilder make_scheduler,
                            TrainingAwareDataSparsityOptions options = {});
  ~TrainingAwareDataSparsity() override;

  /// Reads {sparsifier: {type, args}, scheduler: {type, args}, name,
  /// apply_to_model, update_every_n_steps, include, exclude}; mistakes are
  /// ConfigErrors with their key path.
  static std::shared_ptr<TrainingAwareDataSparsity> from_config(const Config& config);

  /// The latest sparsified copy (sparse for good after `on_train_end`).
  std::shared_ptr<torch::nn::Module> sparsified() const override { return sparsified_; }
  BaseDataSparsifier* data_sparsifier() const override { return data_sparsifier_.get(); }
  BaseDataScheduler* data_scheduler() const { return data_scheduler_.get(); }
  /// With rewinding: the live model's parameters (dotted names) saved at the
  /// start of epoch `rewind_to_epoch` of the running or last fit; empty before.
  const std::map<std::string, at::Tensor>& rewind_weights() const { return rewind_weights_; }
  /// Whether the running or last fit has rewound its weights.
  bool rewound() const { return rewound_; }
  /// Per-parameter sparsity of the copy at the last update.
  const std::vector<ParameterSparsity>& report() const { return report_; }
  const TrainingAwareDataSparsityOptions& options() const { return options_; }

  bool changes_trained_model() const override { return options_.apply_to_model(); }
  void check_model(const torch::nn::Module& model) const override;
  Config to_config() const override;

  /// Checks, before training, that the model can be copied (or has a
  /// model_factory) and that the selection picks a parameter of it; warns
  /// when a rewind falls at or after `max_epochs` (a fit to be resumed).
  void on_fit_start(Trainer& trainer, TrainingModule& module) override;
  void on_train_start(Trainer& trainer, TrainingModule& module) override;
  void on_train_epoch_start(Trainer& trainer, TrainingModule& module) override;
  void on_train_batch_end(Trainer& trainer, TrainingModule& module) override;
  void on_train_epoch_end(Trainer& trainer, TrainingModule& module) override;
  void on_train_end(Trainer& trainer, TrainingModule& module) override;
  std::string name() const override { return options_.name().empty() ? "TrainingAwareDataSparsity" : options_.name(); }

  c10::IValue state_dict() const override;
  void load_state_dict(const c10::IValue& state) override;
  /// A state of this callback: a dict with "sparsifier" and "scheduler", and
  /// with rewinding "rewind_weights" once saved (the
  /// sparsifier's and scheduler's own states are checked when training starts,
  /// against the sparsifier and scheduler built then).
  void check_state_dict(const c10::IValue& state) const override;

 private:
  void check_builders() const;
  void check_rewind_options() const;
  void update_masks(Trainer& trainer, TrainingModule& module);
  void update_report();
  bool rewinding() const { return options_.rewind_to_epoch() >= 0; }
  void rewind(Trainer& trainer, TrainingModule& module);

  std::string sparsifier_type_, scheduler_type_;  ///< empty when built from builders
  Config sparsifier_args_, scheduler_args_;
  DataSparsifierBuilder make_sparsifier_;
  DataSchedulerBuilder make_scheduler_;
  TrainingAwareDataSparsityOptions options_;
  std::unique_ptr<BaseDataSparsifier> data_sparsifier_;
  std::unique_ptr<BaseDataScheduler> data_scheduler_;
  std::shared_ptr<torch::nn::Module> sparsified_;
  std::vector<std::string> attached_;  ///< dotted names of the attached parameters
  std::shared_ptr<c10::IValue> saved_state_;       ///< sparsifier state at the last update
  std::shared_ptr<c10::IValue> resumed_state_;     ///< this callback's state from a checkpoint
  /// With apply_to_model, during training: holds the masks on the live model.
  std::unique_ptr<MaskGuard> guard_;
  std::map<std::string, at::Tensor> rewind_weights_;  ///< dotted name -> saved value
  bool rewound_ = false;  ///< masks frozen: no more updates in this fit
  std::vector<ParameterSparsity> report_;
};

}  // namespace sparsity
