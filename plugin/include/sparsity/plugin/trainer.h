#pragma once

#include <c10/core/Device.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/data_source.h"
#include "sparsity/plugin/distributed.h"
#include "sparsity/plugin/training_module.h"

namespace sparsity {

/// Options for `Trainer`.
///
/// Example:
/// ```
/// sparsity::Trainer trainer(sparsity::TrainerOptions().max_epochs(5).output_dir("runs/mlp").seed(42));
/// ```
struct TrainerOptions {
  TORCH_ARG(int64_t, max_epochs) = 1;
  /// Where the model and batches are put.
  TORCH_ARG(c10::Device, device) = c10::Device(c10::kCPU);
  /// Seeds LibTorch's generator at the start of `fit` (parameter initialization
  /// happens before, so seed that yourself when it matters).
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// Directory for `metrics.csv` and `checkpoint.pt`; empty: write nothing.
  TORCH_ARG(std::string, output_dir) = "";
  /// Write `checkpoint.pt` at every epoch end (needs output_dir).
  TORCH_ARG(bool, checkpoint) = true;
  /// A checkpoint to resume from: model, optimizer, callbacks, epoch.
  TORCH_ARG(std::string, resume_from) = "";
  /// A live progress line on a terminal; plain log lines otherwise.
  TORCH_ARG(bool, progress) = true;
  /// LibTorch's intra-op threads (shared with an OpenMP OpenBLAS), set for the
  /// whole process at the start of `fit`: 0 = every core the process may run
  /// on (its CPU affinity), n = n threads, at most `sparsity::max_threads()`.
  /// LibTorch alone would use one thread per physical core (1 on a 2-vCPU
  /// machine). To keep a count set elsewhere, pass `at::get_num_threads()`.
  TORCH_ARG(int64_t, threads) = 0;
  /// Let glibc's malloc keep freed batch-sized buffers for the next step
  /// (`sparsity::tune_allocator_for_training()`, process-wide, at the start of
  /// `fit`): without it an epoch of a small MLP spends a third of its time
  /// in the kernel mapping and zeroing pages.
  TORCH_ARG(bool, tune_allocator) = true;
  /// Data-parallel training over several processes (docs/distributed.md).
  /// Unset: from the launcher's variables (`RANK`, `WORLD_SIZE`, ...,
  /// `DistributedOptions::from_environment()`) when they are set, one process
  /// otherwise. With a world size above 1, `fit` joins the group, broadcasts
  /// rank 0's parameters and buffers (after a resume too), gives each rank its
  /// shard of the training data (`DataSource::shard`; the batch size is per
  /// rank), averages gradients over the ranks in buckets during the backward
  /// pass, reduces the metrics over the ranks, and writes metrics.csv and
  /// checkpoints on rank 0 only. With `threads` 0, each of the
  /// `local_world_size` processes of a machine takes its share of the cores.
  TORCH_ARG(std::optional<DistributedOptions>, distributed) = std::nullopt;
};

/// A minimal training loop in the spirit of Lightning's Trainer: epochs of
/// batches from a `DataSource`, the loss from `TrainingModule::training_step`,
/// optional validation, callbacks at every stage, progress, `metrics.csv` in
/// the format of Lightning's CSVLogger, and atomic checkpoints to resume from.
///
/// Example:
/// ```
/// Classifier module;
/// sparsity::Trainer trainer(sparsity::TrainerOptions().max_epochs(3));
/// trainer.add_callback(std::make_shared<sparsity::PostTrainingDataSparsity>(
///     "DataNormSparsifier", sparsity::Config{{"sparsity_level", 0.5}}));
/// trainer.fit(module, train_data, val_data);
/// ```
class Trainer {
 public:
  Trainer();
  explicit Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks = {});
  ~Trainer();

  Trainer& add_callback(std::shared_ptr<Callback> callback);
  const std::vector<std::shared_ptr<Callback>>& callbacks() const { return callbacks_; }
  const TrainerOptions& options() const { return options_; }

  /// Trains `module` for `max_epochs` epochs (resuming from
  /// `options().resume_from()` when set) on `train`, validating on `validation`
  /// after each epoch when given.
  void fit(TrainingModule& module, const DataSource& train, const DataSource* validation = nullptr);

  /// The epoch being run (0-based).
  int64_t current_epoch() const { return current_epoch_; }
  /// Optimizer steps taken so far.
  int64_t global_step() const { return global_step_; }
  /// The batch being run within the epoch (0-based).
  int64_t batch_index() const { return batch_index_; }
  /// The loss of the last training batch.
  double last_loss() const { return last_loss_; }
  /// The optimizer of the running `fit`, or nullptr outside it.
  torch::optim::Optimizer* optimizer() const { return optimizer_.get(); }
  /// The validation data of the running `fit`, or nullptr (none given, or
  /// outside fit): what callbacks measure on without touching the test set.
  const DataSource* validation_data() const { return validation_; }
  /// The training data of the running `fit`, or nullptr outside it.
  const DataSource* train_data() const { return train_; }

  /// The process group of the running data-parallel `fit`, or nullptr (one
  /// process, or outside fit). Callbacks use it to check that what every rank
  /// computes agrees (`DistributedGroup::check_identical`).
  DistributedGroup* distributed() const;
  /// This process's rank in the running `fit` (0 with one process).
  int64_t rank() const;
  /// The processes of the running `fit` (1 with one process).
  int64_t world_size() const;
  /// Whether this process is rank 0, the one that writes files.
  bool is_global_zero() const { return rank() == 0; }

  /// Trains `module.model()` for `epochs` more epochs on `train`, with a fresh
  /// optimizer from `module.configure_optimizers()`: the batches and loss
  /// checks of `fit`, without callbacks, metrics, checkpoints or a change to
  /// this Trainer's counters; `after_step` runs after each optimizer step (a
  /// `MaskGuard::after_step`). For a callback that fine-tunes a model of its
  /// own at `on_fit_end`. Returns the mean training loss of the last epoch.
  /// In a data-parallel `fit`, data-parallel too (each rank its shard,
  /// gradients averaged, the loss reduced over the ranks).
  /// `epochs` must be in [1, 1000000] (std::invalid_argument naming it).
  double train_epochs(TrainingModule& module, const DataSource& train, int64_t epochs,
                      const std::function<void()>& after_step = {});

  /// Records a metric for the current epoch's row of metrics.csv (and the
  /// epoch's log line), e.g. a callback's sparsity.
  void log(const std::string& key, double value);
  /// The metrics of the last finished epoch: `train_loss`, `val_loss`,
  /// `val_acc` and whatever was logged.
  const std::map<std::string, double>& last_metrics() const { return last_metrics_; }
  /// The metrics of the running epoch so far: `train_loss` once its batches
  /// are done (from on_train_epoch_end), `val_loss` / `val_acc` once validation
  /// has run (from on_validation_epoch_end), and whatever was logged.
  const std::map<std::string, double>& epoch_metrics() const { return epoch_metrics_; }

  /// Writes a checkpoint of the running fit (model, optimizer, callbacks,
  /// epoch, RNG) to `path`, atomically; for callbacks (outside `fit` there is
  /// no optimizer to save: std::logic_error). Its epoch is the last finished one.
  void save_checkpoint(const std::string& path, TrainingModule& module) const;

  /// Checks that `fit(module, ...)` can resume from `options().resume_from()`,
  /// without changing the module, the callbacks or the Trainer, so that a
  /// caller can refuse a checkpoint before it writes anything: the file is a
  /// whole sparsity checkpoint; its model has every parameter and buffer of
  /// `module.model()` with the same shape, and nothing else; its optimizer
  /// state loads into an optimizer from `module.configure_optimizers()` (a
  /// scratch one, called for once and discarded); and each callback with a
  /// state in it accepts that state (`Callback::check_state_dict`). `fit`
  /// makes the same checks, in the same place, before it loads anything.
  /// Throws std::runtime_error naming the file and what does not match, and
  /// std::invalid_argument for what `fit` would reject before reading it: no
  /// `resume_from`, two callbacks with one name, a null model or optimizer.
  ///
  /// Example:
  /// ```
  /// sparsity::Trainer trainer(sparsity::TrainerOptions().resume_from("runs/mlp/checkpoint.pt"), callbacks);
  /// trainer.check_resume(module);  // before rewriting anything in runs/mlp
  /// trainer.fit(module, train_data);
  /// ```
  void check_resume(TrainingModule& module) const;

 private:
  struct Impl;
  void run_epoch(TrainingModule& module, const DataSource& train);
  void run_validation(TrainingModule& module, const DataSource& validation);
  void resume(TrainingModule& module);
  void synchronize_ranks(TrainingModule& module);

  TrainerOptions options_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  const DataSource* validation_ = nullptr;
  const DataSource* train_ = nullptr;
  std::unique_ptr<Impl> impl_;
  int64_t current_epoch_ = 0;
  int64_t start_epoch_ = 0;
  int64_t global_step_ = 0;
  int64_t batch_index_ = 0;
  double last_loss_ = 0.0;
  std::map<std::string, double> epoch_metrics_;
  std::map<std::string, double> last_metrics_;
};

}  // namespace sparsity
