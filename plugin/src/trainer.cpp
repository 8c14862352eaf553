#include "sparsity/plugin/trainer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <cmath>
#include <chrono>
#include <exception>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

#include "checkpoint.h"
#include "gradient_buckets.h"
#include "metrics_csv.h"
#include "progress_line.h"
#include "resume.h"
#include "sparsity/logging.h"
#include "sparsity/message_text.h"
#include "sparsity/runtime/allocator.h"
#include "sparsity/runtime/blas_info.h"
#include "sparsity/runtime/threads.h"
#include "sparsity/plugin/distributed.h"

namespace sparsity {

namespace fs = std::filesystem;

struct Trainer::Impl {
  /// One row per finished epoch (with those of the checkpoint resumed from).
  std::vector<detail::MetricsRow> history;
  /// Epochs finished, counting those before a resume: the checkpoint's "epoch"
  /// is this minus one.
  int64_t finished_epochs = 0;
  /// Whether `fit` is running.
  bool running = false;
  /// The process group of a data-parallel fit, its gradient buckets (on the
  /// parameters of `ddp_model`) and this rank's shard of the training data.
  std::shared_ptr<DistributedGroup> group;
  std::unique_ptr<detail::GradientBuckets> buckets;
  const torch::nn::Module* ddp_model = nullptr;
  std::optional<DataSource> train_shard;
  /// The global step fit started at (after a resume).
  int64_t first_step = 0;

  bool writes_files() const { return !group || group->rank() == 0; }
  /// Sums over the ranks (the values themselves with one process).
  std::vector<double> sum(std::vector<double> values) const {
    return group ? group->all_reduce_sum(values) : values;
  }
};

namespace {

using Hook = void (Callback::*)(Trainer&, TrainingModule&);

// Runs `hook` on every callback, turning an exception into one that names the
// callback and the hook.
void call_hook(Trainer& trainer, TrainingModule& module, Hook hook, const char* hook_name) {
  for (const auto& callback : trainer.callbacks()) {
    try {
      ((*callback).*hook)(trainer, module);
    } catch (const std::exception& e) {
      // Nested, so that a caller can still reach the callback's own exception
      // (its type, a ConfigError's key) with std::rethrow_if_nested.
      std::throw_with_nested(
          std::runtime_error(fmt::format("callback '{}' failed in {}: {}", callback->name(), hook_name, error_text(e))));
    } catch (...) {
      throw std::runtime_error(
          fmt::format("callback '{}' failed in {}: an exception of unknown type", callback->name(), hook_name));
    }
  }
}

#define SPARSITY_CALL_HOOK(hook) call_hook(*this, module, &Callback::hook, #hook)

// Checkpoints keep callbacks by name: two with one name would share a state.
void check_distinct_names(const std::vector<std::shared_ptr<Callback>>& callbacks, const char* caller) {
  std::set<std::string> seen;
  for (const auto& callback : callbacks) {
    if (!seen.insert(callback->name()).second)
      throw std::invalid_argument(fmt::format(
          "{}: two callbacks are named '{}'; checkpoints keep callbacks by name, so give them distinct names "
          "(override Callback::name())",
          caller, callback->name()));
  }
}

Batch to_device(Batch batch, const c10::Device& device) {
  if (batch.data.defined() && batch.data.device() != device) batch.data = batch.data.to(device);
  if (batch.target.defined() && batch.target.device() != device) batch.target = batch.target.to(device);
  return batch;
}

// The loss of one training batch, checked (a finite scalar that requires
// grad), and its backward pass; with `buckets`, the gradients averaged over
// the ranks (all-reduces launched during the backward pass).
double backward_checked_loss(TrainingModule& module, const Batch& batch, int64_t epoch, int64_t index,
                             int64_t global_step, detail::GradientBuckets* buckets) {
  if (buckets != nullptr) buckets->arm();
  at::Tensor loss = module.training_step(batch);
  if (!loss.defined()) throw std::runtime_error("TrainingModule::training_step returned an undefined tensor");
  if (loss.numel() != 1)
    throw std::runtime_error(
        fmt::format("TrainingModule::training_step must return a scalar loss, got a tensor of shape {}",
                    shape_text(loss)));
  const double value = loss.item<double>();
  if (!std::isfinite(value))
    throw std::runtime_error(fmt::format(
        "the training loss is {} at epoch {}, batch {} (0-based; global step {}): stopping before the optimizer "
        "step (lower the learning rate, or check the data and the loss)",
        value, epoch, index, global_step));
  if (!loss.requires_grad())
    throw std::runtime_error(
        "the loss of TrainingModule::training_step does not require grad: it must be computed from the model's "
        "parameters, without detach() or NoGradGuard");
  loss.backward();
  if (buckets != nullptr) buckets->finish();
  return value;
}

// The parameters and buffers the model holds, detached (the same storage).
std::vector<at::Tensor> model_state(torch::nn::Module& model) {
  std::vector<at::Tensor> state;
  for (const auto& tensor : model.parameters()) state.push_back(tensor.detach());
  for (const auto& tensor : model.buffers())
    if (tensor.defined()) state.push_back(tensor.detach());
  return state;
}

// The metrics of a row in the order of the log line: the Trainer's own first.
std::string describe_metrics(const std::map<std::string, double>& metrics) {
  static const char* const kFirst[] = {"train_loss", "val_loss", "val_acc"};
  std::vector<std::string> parts;
  for (const char* key : kFirst) {
    const auto found = metrics.find(key);
    if (found != metrics.end()) parts.push_back(fmt::format("{} {:.4g}", key, found->second));
  }
  for (const auto& [key, value] : metrics)
    if (key != "train_loss" && key != "val_loss" && key != "val_acc") parts.push_back(fmt::format("{} {:.4g}", key, value));
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

Trainer::Trainer() : Trainer(TrainerOptions()) {}

Trainer::Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (options_.max_epochs() < 1)
    throw std::invalid_argument(fmt::format("Trainer: max_epochs must be at least 1, got {}", options_.max_epochs()));
  try {
    resolve_threads(options_.threads());
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(fmt::format("Trainer: {}", error.what()));
  }
  for (auto& callback : callbacks) add_callback(std::move(callback));
}

Trainer::~Trainer() = default;

Trainer& Trainer::add_callback(std::shared_ptr<Callback> callback) {
  if (!callback) throw std::invalid_argument("Trainer::add_callback: the callback is null");
  if (impl_->running) throw std::logic_error("Trainer::add_callback: cannot add a callback while fit is running");
  callbacks_.push_back(std::move(callback));
  return *this;
}

void Trainer::log(const std::string& key, double value) {
  if (key.empty()) throw std::invalid_argument("Trainer::log: the metric's key is empty");
  if (key == "epoch" || key == "step")
    throw std::invalid_argument(fmt::format("Trainer::log: '{}' is a column the Trainer writes itself", key));
  if (key == "train_loss" || key == "val_loss" || key == "val_acc")
    throw std::invalid_argument(fmt::format("Trainer::log: '{}' is a metric the Trainer computes itself", key));
  epoch_metrics_[key] = value;
}

void Trainer::fit(TrainingModule& module, const DataSource& train, const DataSource* validation) {
  if (impl_->running) throw std::logic_error("Trainer::fit: fit is already running (called from a callback?)");
  const bool write_checkpoints = !options_.output_dir().empty() && options_.checkpoint();
  if (write_checkpoints || !options_.resume_from().empty()) check_distinct_names(callbacks_, "Trainer::fit");
  const std::shared_ptr<torch::nn::Module> model = module.model();
  if (!model) throw std::invalid_argument("Trainer::fit: TrainingModule::model() returned null");

  // Outside fit, no optimizer and no running state, however fit ends.
  struct Running {
    Trainer& trainer;
    explicit Running(Trainer& t) : trainer(t) { trainer.impl_->running = true; }
    ~Running() {
      trainer.impl_->running = false;
      trainer.impl_->buckets.reset();
      trainer.impl_->group.reset();
      trainer.impl_->ddp_model = nullptr;
      trainer.impl_->train_shard.reset();
      trainer.optimizer_.reset();
      trainer.validation_ = nullptr;
      trainer.train_ = nullptr;
    }
  } running(*this);
  validation_ = validation;
  train_ = &train;

  current_epoch_ = start_epoch_ = global_step_ = batch_index_ = 0;
  last_loss_ = 0.0;
  epoch_metrics_.clear();
  last_metrics_.clear();
  impl_->history.clear();
  impl_->finished_epochs = 0;

  std::optional<DistributedOptions> distributed = options_.distributed();
  try {
    if (!distributed) distributed = DistributedOptions::from_environment();
    if (distributed) distributed->check();
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(fmt::format("Trainer::fit: {}", error.what()));
  }
  if (distributed && distributed->world_size() == 1) distributed.reset();
  int64_t threads = options_.threads();
  if (distributed && threads == 0) threads = std::max<int64_t>(1, available_cores() / distributed->local_world_size());
  set_threads(threads);
  if (options_.tune_allocator()) tune_allocator_for_training();
  log_blas_once();
  if (options_.seed()) torch::manual_seed(*options_.seed());
  model->to(options_.device());
  optimizer_ = module.configure_optimizers();
  if (!optimizer_) throw std::invalid_argument("Trainer::fit: TrainingModule::configure_optimizers() returned null");
  if (distributed) {
#if defined(USE_C10D_NCCL)
    // NCCL for a CUDA model, as PyTorch chooses, when this LibTorch has it.
    if (distributed->backend().empty() && options_.device().is_cuda()) distributed->backend("nccl");
#endif
    impl_->group = DistributedGroup::join(*distributed);
    impl_->train_shard = train.shard(distributed->rank(), distributed->world_size());
  }

  if (!options_.output_dir().empty() && impl_->writes_files()) {
    std::error_code error;
    fs::create_directories(options_.output_dir(), error);
    if (error)
      throw std::runtime_error(
          fmt::format("Trainer::fit: cannot create the output directory '{}': {}", options_.output_dir(), error.message()));
  }
  if (!options_.resume_from().empty()) resume(module);
  if (impl_->group) synchronize_ranks(module);
  impl_->first_step = global_step_;
  current_epoch_ = start_epoch_;
  if (start_epoch_ >= options_.max_epochs())
    logger()->warn("Trainer: the checkpoint '{}' has already run {} epochs and max_epochs is {}: nothing to train",
                   options_.resume_from(), start_epoch_, options_.max_epochs());

  SPARSITY_CALL_HOOK(on_fit_start);
  SPARSITY_CALL_HOOK(on_train_start);
  for (int64_t epoch = start_epoch_; epoch < options_.max_epochs(); ++epoch) {
    current_epoch_ = epoch;
    const auto started = std::chrono::steady_clock::now();
    run_epoch(module, train);
    if (validation != nullptr) {
      run_validation(module, *validation);
      SPARSITY_CALL_HOOK(on_validation_epoch_end);
    }

    // The epoch's row: metrics.csv, the log line, then the checkpoint.
    impl_->history.push_back(detail::MetricsRow{epoch, global_step_, epoch_metrics_});
    impl_->finished_epochs = epoch + 1;
    last_metrics_ = std::exchange(epoch_metrics_, {});
    if (impl_->writes_files()) detail::write_metrics_csv(options_.output_dir(), impl_->history);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (impl_->writes_files())
      logger()->info("epoch {}/{}: {} (step {}, {:.1f} s)", epoch + 1, options_.max_epochs(),
                     describe_metrics(last_metrics_), global_step_, seconds);
    if (write_checkpoints && impl_->writes_files())
      save_checkpoint((fs::path(options_.output_dir()) / "checkpoint.pt").string(), module);
  }
  if (impl_->buckets && impl_->writes_files() && global_step_ > impl_->first_step)
    logger()->info("Trainer: {:.3f} ms per step waiting for the gradient all-reduces after the backward pass",
                   1000.0 * impl_->buckets->wait_seconds() / static_cast<double>(global_step_ - impl_->first_step));
  SPARSITY_CALL_HOOK(on_train_end);
  SPARSITY_CALL_HOOK(on_fit_end);

  // Metrics logged after the last epoch (on_train_end, on_fit_end) join its row.
  if (!epoch_metrics_.empty()) {
    if (impl_->history.empty()) {
      logger()->warn("Trainer: metrics logged outside any epoch are dropped: {}", describe_metrics(epoch_metrics_));
    } else {
      for (const auto& [key, value] : epoch_metrics_) {
        impl_->history.back().values[key] = value;
        last_metrics_[key] = value;
      }
      if (impl_->writes_files()) detail::write_metrics_csv(options_.output_dir(), impl_->history);
    }
    epoch_metrics_.clear();
  }
}

void Trainer::run_epoch(TrainingModule& module, const DataSource& train) {
  const std::shared_ptr<torch::nn::Module> model = module.model();
  model->train();
  SPARSITY_CALL_HOOK(on_train_epoch_start);

  const DataSource& data = impl_->train_shard ? *impl_->train_shard : train;
  const std::vector<int64_t> order = data.order(current_epoch_);
  const int64_t num_batches = data.num_batches();
  detail::ProgressLine progress(options_.progress() && impl_->writes_files() && detail::stderr_is_terminal(),
                                current_epoch_, options_.max_epochs(), num_batches);
  double loss_sum = 0.0;
  int64_t samples = 0;
  for (int64_t b = 0; b < num_batches; ++b) {
    batch_index_ = b;
    const Batch batch = to_device(data.batch(order, b), options_.device());
    SPARSITY_CALL_HOOK(on_train_batch_start);

    optimizer_->zero_grad();
    const double value =
        backward_checked_loss(module, batch, current_epoch_, b, global_step_, impl_->buckets.get());
    optimizer_->step();
    ++global_step_;
    last_loss_ = value;

    const int64_t batch_size = batch.data.dim() > 0 ? batch.data.size(0) : 1;
    loss_sum += value * static_cast<double>(batch_size);
    samples += batch_size;
    progress.update(b + 1, samples, loss_sum / static_cast<double>(samples));
    SPARSITY_CALL_HOOK(on_train_batch_end);
  }
  progress.clear();
  const std::vector<double> sums = impl_->sum({loss_sum, static_cast<double>(samples)});
  epoch_metrics_["train_loss"] = sums[0] / sums[1];
  SPARSITY_CALL_HOOK(on_train_epoch_end);
}

double Trainer::train_epochs(TrainingModule& module, const DataSource& train, int64_t epochs,
                             const std::function<void()>& after_step) {
  constexpr int64_t kMaxEpochs = 1000000;
  if (epochs < 1 || epochs > kMaxEpochs)
    throw std::invalid_argument(fmt::format("Trainer::train_epochs: epochs must be in [1, {}], got {}", kMaxEpochs, epochs));
  const std::shared_ptr<torch::nn::Module> model = module.model();
  if (!model) throw std::invalid_argument("Trainer::train_epochs: TrainingModule::model() returned null");
  const std::unique_ptr<torch::optim::Optimizer> optimizer = module.configure_optimizers();
  if (!optimizer) throw std::invalid_argument("Trainer::train_epochs: TrainingModule::configure_optimizers() returned null");
  model->train();
  // Data-parallel within a data-parallel fit of this model: each rank its
  // shard, gradients averaged as in fit.
  const bool parallel = impl_->buckets && impl_->ddp_model == model.get();
  std::optional<DataSource> shard;
  if (parallel) shard = train.shard(impl_->group->rank(), impl_->group->world_size());
  const DataSource& data = shard ? *shard : train;
  double mean_loss = 0.0;
  for (int64_t e = 0; e < epochs; ++e) {
    // Orders after fit's own epochs: the same data, not the same batches again.
    const int64_t epoch = options_.max_epochs() + e;
    const std::vector<int64_t> order = data.order(epoch);
    double loss_sum = 0.0;
    int64_t samples = 0;
    for (int64_t b = 0; b < data.num_batches(); ++b) {
      const Batch batch = to_device(data.batch(order, b), options_.device());
      optimizer->zero_grad();
      const double value = backward_checked_loss(module, batch, epoch, b, e * data.num_batches() + b,
                                                 parallel ? impl_->buckets.get() : nullptr);
      optimizer->step();
      if (after_step) after_step();
      const int64_t batch_size = batch.data.dim() > 0 ? batch.data.size(0) : 1;
      loss_sum += value * static_cast<double>(batch_size);
      samples += batch_size;
    }
    const std::vector<double> sums =
        parallel ? impl_->sum({loss_sum, static_cast<double>(samples)}) : std::vector<double>{loss_sum, double(samples)};
    mean_loss = sums[0] / sums[1];
  }
  return mean_loss;
}

void Trainer::run_validation(TrainingModule& module, const DataSource& validation) {
  const std::shared_ptr<torch::nn::Module> model = module.model();
  model->eval();
  double loss_sum = 0.0;
  int64_t loss_count = 0, correct = 0, accuracy_count = 0;
  {
    torch::NoGradGuard no_grad;
    // Each rank its share, without padding: the sums below are exactly one process's.
    std::optional<DataSource> shard;
    if (impl_->group) shard = validation.shard(impl_->group->rank(), impl_->group->world_size(), /*pad=*/false);
    const DataSource& data = shard ? *shard : validation;
    const std::vector<int64_t> order = data.order(current_epoch_);
    for (int64_t b = 0; b < data.num_batches(); ++b) {
      const Batch batch = to_device(data.batch(order, b), options_.device());
      const std::optional<ValidationOutput> output = module.validation_step(batch);
      if (!output) continue;
      if (!output->loss.defined() || output->loss.numel() != 1)
        throw std::runtime_error(fmt::format(
            "TrainingModule::validation_step must return a scalar loss, got {}",
            output->loss.defined() ? "a tensor of shape " + shape_text(output->loss) : std::string("an undefined tensor")));
      const int64_t batch_size = batch.data.dim() > 0 ? batch.data.size(0) : 1;
      loss_sum += output->loss.item<double>() * static_cast<double>(batch_size);
      loss_count += batch_size;
      if (output->correct) {
        correct += *output->correct;
        accuracy_count += batch_size;
      }
    }
  }
  model->train();
  const std::vector<double> sums = impl_->sum({loss_sum, static_cast<double>(loss_count), static_cast<double>(correct),
                                               static_cast<double>(accuracy_count)});
  if (sums[1] > 0) epoch_metrics_["val_loss"] = sums[0] / sums[1];
  if (sums[3] > 0) epoch_metrics_["val_acc"] = sums[2] / sums[3];
}

void Trainer::save_checkpoint(const std::string& path, TrainingModule& module) const {
  if (!impl_->running || !optimizer_)
    throw std::logic_error("Trainer::save_checkpoint: there is no running fit to save (call it from a callback)");
  check_distinct_names(callbacks_, "Trainer::save_checkpoint");
  const std::shared_ptr<torch::nn::Module> model = module.model();
  if (!model) throw std::invalid_argument("Trainer::save_checkpoint: TrainingModule::model() returned null");
  detail::write_checkpoint(path, detail::CheckpointContent{impl_->finished_epochs - 1, global_step_, *model, *optimizer_,
                                                           callbacks_, impl_->history});
}

void Trainer::check_resume(TrainingModule& module) const {
  if (options_.resume_from().empty())
    throw std::invalid_argument("Trainer::check_resume: TrainerOptions::resume_from is empty: no checkpoint to check");
  check_distinct_names(callbacks_, "Trainer::check_resume");
  const std::shared_ptr<torch::nn::Module> model = module.model();
  if (!model) throw std::invalid_argument("Trainer::check_resume: TrainingModule::model() returned null");
  // Loading is the only check of an optimizer's state: a scratch one takes it.
  const std::unique_ptr<torch::optim::Optimizer> scratch = module.configure_optimizers();
  if (!scratch)
    throw std::invalid_argument("Trainer::check_resume: TrainingModule::configure_optimizers() returned null");
  detail::check_resume_point(options_.resume_from(), *model, *scratch, callbacks_, options_.device());
}

DistributedGroup* Trainer::distributed() const { return impl_->group.get(); }
int64_t Trainer::rank() const { return impl_->group ? impl_->group->rank() : 0; }
int64_t Trainer::world_size() const { return impl_->group ? impl_->group->world_size() : 1; }

void Trainer::synchronize_ranks(TrainingModule& module) {
  DistributedGroup& group = *impl_->group;
  torch::nn::Module& model = *module.model();
  // Every rank at rank 0's epoch: a rank that did not find the checkpoint would train other epochs.
  const int64_t mine[2] = {start_epoch_, global_step_};
  const bool root = group.rank() == 0;
  const std::vector<double> point =
      group.all_reduce_sum({root ? static_cast<double>(mine[0]) : 0.0, root ? static_cast<double>(mine[1]) : 0.0});
  const auto root_epoch = static_cast<int64_t>(point[0]), root_step = static_cast<int64_t>(point[1]);
  if (root_epoch != mine[0] || root_step != mine[1])
    throw std::runtime_error(fmt::format(
        "Trainer::fit: rank {} starts at epoch {} (global step {}) but rank 0 at epoch {} (global step {}): every "
        "rank must resume from the same checkpoint ('{}'; on several machines, a directory they all see)",
        group.rank(), mine[0], mine[1], root_epoch, root_step,
        options_.resume_from().empty() ? "none here" : options_.resume_from()));
  {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> state = model_state(model);
    group.broadcast(state);
  }
  impl_->ddp_model = &model;
  impl_->buckets = std::make_unique<detail::GradientBuckets>(group, model.parameters(), group.options().bucket_bytes());
  if (impl_->writes_files())
    logger()->info("Trainer: data-parallel over {} processes: rank 0's parameters broadcast, gradients averaged in {} "
                   "buckets, batch {} per rank ({} per step)",
                   group.world_size(), impl_->buckets->bucket_count(), impl_->train_shard->batch_size(),
                   impl_->train_shard->batch_size() * group.world_size());
}

void Trainer::resume(TrainingModule& module) {
  // fit's own optimizer takes the checkpoint's state as the check: if anything
  // else fails, fit throws and discards it.
  const detail::ResumePoint point =
      detail::check_resume_point(options_.resume_from(), *module.model(), *optimizer_, callbacks_, options_.device());
  detail::apply_resume_point(point, *module.model());
  impl_->history = point.history;
  impl_->finished_epochs = point.epoch + 1;
  start_epoch_ = point.epoch + 1;
  global_step_ = point.global_step;
  if (!impl_->history.empty()) last_metrics_ = impl_->history.back().values;
  logger()->info("Trainer: resuming from '{}' after epoch {} (global step {})", point.path, point.epoch, global_step_);
}

}  // namespace sparsity
