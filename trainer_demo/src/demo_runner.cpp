#include "demo_runner.h"

#include <ATen/Parallel.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <torch/serialize/input-archive.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "demo_data.h"
#include "demo_inference.h"
#include "demo_model.h"
#include "demo_report.h"
#include "demo_sensitivity.h"
#include "html_report.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/file_io.h"
#include "sparsity/logging.h"
#include "sparsity/message_text.h"
#include "sparsity/lossy/activation_sparsity.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/plugin/data_source.h"
#include "sparsity/plugin/distributed.h"
#include "sparsity/plugin/lossy_sparsifier_callback.h"
#include "sparsity/plugin/model_state.h"
#include "sparsity/plugin/post_training_data_sparsity.h"
#include "sparsity/plugin/sparsity_report.h"
#include "sparsity/plugin/trainer.h"
#include "sparsity/plugin/training_aware_data_sparsity.h"
#include "sparsity/runtime/blas_info.h"
#include "sparsity/runtime/threads.h"
#include "sparsity/sparse/sparse_file.h"
#include "sparsity/state_file.h"
#include "sparsity/structured/shrink.h"

namespace sparsity::demo {

namespace fs = std::filesystem;

std::vector<PlannedRun> plan_runs(const RunConfig& config) {
  std::vector<PlannedRun> runs(1);
  runs[0].name = "dense";
  for (const auto& callback : config.callbacks) {
    if (callback.changes_trained_model) {
      PlannedRun run;
      run.name = callback.name;
      run.lossy_layers = callback.needs_lossy_layers;
      run.callbacks.push_back(&callback);
      runs.push_back(std::move(run));
    } else {
      runs[0].callbacks.push_back(&callback);
    }
  }
  return runs;
}

namespace {

/// A callback of the config, built.
struct LiveCallback {
  const CallbackConfig* config = nullptr;
  std::shared_ptr<SparsifyingCallback> callback;
};

LiveCallback make_live_callback(const CallbackConfig& config) { return LiveCallback{&config, config.make()}; }

std::string describe_model(const ModelConfig& model, const InputShape& input, int64_t classes) {
  if (model.type == "resnet") {
    return fmt::format("ResNet {} stages of {} BasicBlock(s), widths {}, {} classes", model.channels.size(),
                       model.blocks, fmt::join(model.channels, "-"), classes);
  }
  std::string layers = fmt::format("{}", input.channels * input.height * input.width);
  if (model.type == "cnn") {
    layers = fmt::format("conv{}", fmt::join(model.channels, "-conv"));
  }
  for (int64_t width : model.hidden) layers += fmt::format("-{}", width);
  return fmt::format("{} {}-{}", model.type == "cnn" ? "CNN" : "MLP", layers, classes);
}

// What the config parser cannot know without the data: whether the model can
// be built for these inputs, and whether each data-sparsity callback selects
// at least one parameter. Found here, before hours of training, not after.
void check_before_training(const RunConfig& config, const InputShape& input, int64_t classes) {
  if (config.model.lossy) {
    auto lossy = build_model(config.model, input, classes, config.seed, /*with_lossy_layers=*/true,
                             std::make_shared<ActivationCollector>());
    if (sparsifier_layers(*lossy).empty()) {
      throw std::invalid_argument(
          "model.lossy: the model has no hidden layer to put a lossy sparsifier after (model.hidden is empty)");
    }
  }
  // Each callback on the model its run trains: lossy layers only for the one that drives them.
  auto model = build_model(config.model, input, classes, config.seed);
  for (const auto& callback : config.callbacks) {
    auto trained = callback.needs_lossy_layers ? build_model(config.model, input, classes, config.seed, true,
                                                             std::make_shared<ActivationCollector>())
                                               : model;
    try {
      callback.make()->check_model(*trained);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("{}: {}", callback.location, e.what()));
    }
  }
}

/// Where a run keeps its Trainer's files (metrics.csv, checkpoint.pt).
fs::path run_dir_of(const fs::path& out, const PlannedRun& run) { return out / "train" / run.name; }

/// The name of the lock file, used only where a directory cannot be locked
/// itself (flock on a directory fails on some network file systems).
constexpr const char* kLockFileName = ".trainer_demo.lock";

/// An exclusive flock on the output directory, held for the whole run and
/// released by the system however the process ends (no stale lock after a
/// crash). Locking the directory itself writes nothing into it.
class OutputLock {
 public:
  explicit OutputLock(const fs::path& dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) {
      throw std::runtime_error(
          fmt::format("cannot use the output directory '{}': {}", dir.string(), std::strerror(errno)));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK) {
      ::close(fd_);
      fd_ = ::open((dir / kLockFileName).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) {
        throw std::runtime_error(fmt::format("cannot lock the output directory '{}': {}", dir.string(),
                                             std::strerror(errno)));
      }
      if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    }
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) {
      throw std::runtime_error(fmt::format(
          "the output directory '{}' is in use by another trainer_demo run (it holds the directory's lock); wait "
          "for that run to end, or choose another --output directory",
          dir.string()));
    }
    throw std::runtime_error(
        fmt::format("cannot lock the output directory '{}': {}", dir.string(), std::strerror(error)));
  }
  ~OutputLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
};

/// The model `run` trains, with its optimizer and, for lossy runs, the
/// activation collector and sparse loss: the same for a run and for the check
/// of its checkpoint.
ClassifierModule make_classifier(const RunConfig& config, const PlannedRun& run, const InputShape& input,
                                 int64_t classes) {
  std::shared_ptr<ActivationCollector> collector;
  std::optional<SparseLoss> sparse_loss;
  if (run.lossy_layers) {
    collector = std::make_shared<ActivationCollector>();
    sparse_loss = make_sparse_loss(*config.model.lossy);
  }
  return ClassifierModule(build_model(config.model, input, classes, config.seed, run.lossy_layers, collector),
                          config.optimizer, collector, sparse_loss);
}

/// The Trainer of `run`: where it keeps its files, how it trains, the
/// checkpoint it resumes from (when resuming and there is one) and its
/// callbacks (built afresh). The same for a run and for the check of its
/// checkpoint.
std::unique_ptr<Trainer> make_trainer(const RunConfig& config, const PlannedRun& run, const fs::path& out,
                                      std::vector<LiveCallback>& callbacks) {
  const fs::path run_dir = run_dir_of(out, run);
  TrainerOptions options;
  options.max_epochs(config.trainer.epochs)
      .seed(config.seed)
      .output_dir(run_dir.string())
      .checkpoint(config.trainer.checkpoint)
      .progress(config.trainer.progress)
      .threads(config.threads);
  const fs::path checkpoint = run_dir / "checkpoint.pt";
  if (config.trainer.resume && fs::exists(checkpoint)) options.resume_from(checkpoint.string());
  auto trainer = std::make_unique<Trainer>(options);
  callbacks.clear();
  for (const auto* callback : run.callbacks) {
    callbacks.push_back(make_live_callback(*callback));
    trainer->add_callback(callbacks.back().callback);
  }
  return trainer;
}

/// What may go into `out` before anything is written: nothing of another run
/// unless resuming it, and, when resuming, checkpoints that this config can
/// continue. Trainer::fit would find a bad checkpoint only when it reached
/// that run, after config.yaml and the earlier runs' outputs were rewritten,
/// leaving a directory whose config no longer matches its models.
void check_output_dir(const RunConfig& config, const std::vector<PlannedRun>& runs, const fs::path& out,
                      const InputShape& input, const DemoData& data) {
  std::vector<std::string> entries;
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    if (name != kLockFileName) entries.push_back(name);
  }
  if (entries.empty()) return;
  if (!config.trainer.resume) {
    std::sort(entries.begin(), entries.end());
    const size_t shown = std::min<size_t>(entries.size(), 5);
    throw std::runtime_error(fmt::format(
        "the output directory '{}' already holds files ({}{}), from another run; to continue that run add "
        "trainer.resume=true, to start a new one choose another --output directory (or remove this one)",
        out.string(), fmt::join(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
        entries.size() > shown ? ", ..." : ""));
  }
  for (const PlannedRun& run : runs) {
    const fs::path checkpoint = run_dir_of(out, run) / "checkpoint.pt";
    if (!fs::exists(checkpoint)) continue;
    try {
      ClassifierModule module = make_classifier(config, run, input, data.classes);
      std::vector<LiveCallback> callbacks;
      make_trainer(config, run, out, callbacks)->check_resume(module);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("trainer.resume: cannot resume run '{}' from '{}': {}; nothing in '{}' "
                                           "was changed",
                                           run.name, checkpoint.string(), error_text(e), out.string()));
    }
  }
}

/// The batch the final table's inference times are measured with.
constexpr int64_t kInferenceBatch = 256;

// The sparsified model without its pruned units, when `shrink` removes any:
// saved, evaluated (its accuracy must be the masked model's) and timed next
// to the model as trained.
// Where a model's activations are measured: the inputs of the hidden layers
// of an mlp or cnn (the Sequential walk), the outputs of the convolution
// slots of a resnet, as the model computes them (hard layers after
// convert_to_hard). Either way the dense model is measured at the same places.
ActivationSparsityReport measure_activations_of(const ModelConfig& config, torch::nn::Module& model,
                                                const at::Tensor& inputs) {
  if (config.type != "resnet") return measure_activation_sparsity(model, inputs, 1000);
  auto* net = dynamic_cast<torch::nn::SequentialImpl*>(&model);
  if (net == nullptr) throw std::logic_error("measure_activations_of: a resnet is a Sequential");
  return measure_activation_sparsity_at_sites(
      model, [net](const at::Tensor& batch) { return net->forward(batch); }, inputs,
      SiteMeasurementOptions().batch_size(500).near_zero(kNearZero));
}

void measure_shrunk(ModelResult& m, torch::nn::Module& model, const fs::path& out, const DemoData& data) {
  ShrinkResult shrunk;
  try {
    shrunk = shrink(model);
  } catch (const std::invalid_argument& e) {
    // A model shrink cannot follow (a lossy layer after a dead unit) is reported as it is.
    std::cout << fmt::format("{}: not shrunk: {}\n", m.name, e.what());
    return;
  }
  if (shrunk.report.units_removed() == 0) return;
  std::cout << fmt::format("{}: shrunk, its pruned units removed:\n{}", m.name, shrunk.report.to_string());
  m.shrunk_parameters = shrunk.report.parameters_after;
  m.shrunk_file = (out / "models" / (m.name + ".shrunk.pt")).string();
  save_model_state(*shrunk.model, m.shrunk_file);
  m.shrunk_bytes = static_cast<int64_t>(fs::file_size(m.shrunk_file));
  m.shrunk_test_accuracy = classification_accuracy(*shrunk.model, data.test_inputs, data.test_targets);
  // Float rounding may flip the argmax of an image whose two top logits tie
  // to the last bit; more than two such images is a wrong shrink.
  const double images = static_cast<double>(data.test_targets.numel());
  if (std::abs(m.shrunk_test_accuracy - m.test_accuracy) * images > 2.5) {
    throw std::runtime_error(fmt::format("model '{}': the shrunk model's test accuracy {} differs from the masked "
                                         "model's {}",
                                         m.name, m.shrunk_test_accuracy, m.test_accuracy));
  }
  const ShrinkTiming timing = time_shrunk(model, *shrunk.model, data.test_inputs, kInferenceBatch);
  m.shrink_dense_ms = timing.dense_ms;
  m.shrunk_inference_ms = timing.shrunk_ms;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

DemoResult run_demo(const RunConfig& config, const std::string& output_dir) {
  const auto start = std::chrono::steady_clock::now();
  set_threads(config.threads);
  log_blas_once();
  logger()->set_level(spdlog::level::from_str(config.trainer.log_level));

  // Data and models are checked before anything is written, so a run that
  // cannot start leaves no output directory behind.
  const DemoData data = load_demo_data(config.data, config.seed);
  const InputShape input{data.train_inputs.size(1), data.train_inputs.size(2), data.train_inputs.size(3)};
  check_before_training(config, input, data.classes);

  const fs::path out(output_dir);
  const std::vector<PlannedRun> runs = plan_runs(config);
  const DataSource train(data.train_inputs, data.train_targets, config.data.batch_size, /*shuffle=*/true,
                         config.seed);
  std::optional<DataSource> validation;
  if (data.has_validation()) {
    validation.emplace(data.validation_inputs, data.validation_targets, 1000, /*shuffle=*/false);
  }

  // Data-parallel (RANK, WORLD_SIZE, ... set, e.g. by --nproc): every rank
  // trains each run with its share of the data; rank 0 alone writes the
  // outputs and evaluates the models (docs/distributed.md).
  const std::optional<DistributedOptions> distributed = DistributedOptions::from_environment();
  const int64_t world_size = distributed ? distributed->world_size() : 1;
  if (distributed && distributed->rank() != 0) {
    if (logger()->level() < spdlog::level::warn) logger()->set_level(spdlog::level::warn);
    for (const PlannedRun& run : runs) {
      ClassifierModule module = make_classifier(config, run, input, data.classes);
      std::vector<LiveCallback> callbacks;
      make_trainer(config, run, out, callbacks)->fit(module, train, validation ? &*validation : nullptr);
    }
    DemoResult result;
    result.output_dir = out.string();
    result.world_size = world_size;
    result.wall_seconds = seconds_since(start);
    return result;
  }
  // The directory must exist to be locked; a new one is empty, so the checks
  // after the lock cannot fail for it and leave it behind.
  std::error_code error;
  if (!fs::is_directory(out, error)) {
    if (fs::exists(out, error)) {
      throw std::runtime_error(fmt::format("the output directory '{}' is a file, not a directory", out.string()));
    }
    fs::create_directories(out, error);
    if (error) {
      throw std::runtime_error(
          fmt::format("cannot create the output directory '{}': {}", out.string(), error.message()));
    }
  }
  const OutputLock lock(out);
  check_output_dir(config, runs, out, input, data);

  fs::create_directories(out / "models");
  fs::create_directories(out / "sparsifiers");
  write_file_atomically((out / "config.yaml").string(), to_yaml_text(config));
  std::cout << "data: " << data.description << "\n"
            << "model: " << describe_model(config.model, input, data.classes) << ", " << config.optimizer.type
            << " lr " << config.optimizer.lr << ", " << config.trainer.epochs << " epochs, batch "
            << config.data.batch_size
            << (world_size > 1 ? fmt::format(" per rank x {} ranks ({} per step), {} threads per rank", world_size,
                                             config.data.batch_size * world_size,
                                             std::max<int64_t>(1, config.threads > 0
                                                                      ? config.threads
                                                                      : available_cores() / distributed->local_world_size()))
                               : fmt::format(", {} threads", at::get_num_threads()))
            << "\n"
            << "output: " << out.string() << "\n"
            << std::flush;

  const bool measure_activations = config.model.lossy.has_value();

  DemoResult result;
  result.output_dir = out.string();
  result.world_size = world_size;
  // The dense baseline first, then each callback's model in config order,
  // whichever run produced it.
  std::vector<std::optional<ModelResult>> models(config.callbacks.size() + 1);
  std::vector<std::pair<std::string, std::string>> metrics_files;
  for (size_t r = 0; r < runs.size(); ++r) {
    const PlannedRun& run = runs[r];
    std::vector<std::string> attached;
    for (const auto* callback : run.callbacks) attached.push_back(callback->name);
    std::cout << fmt::format("\n== run {}/{}: {}{}{}\n", r + 1, runs.size(), run.name,
                             run.lossy_layers ? " (with lossy sparsifier layers)" : "",
                             attached.empty() ? "" : fmt::format(", callbacks: {}", fmt::join(attached, ", ")))
              << std::flush;

    ClassifierModule module = make_classifier(config, run, input, data.classes);

    const fs::path run_dir = run_dir_of(out, run);
    std::vector<LiveCallback> callbacks;
    const std::unique_ptr<Trainer> trainer = make_trainer(config, run, out, callbacks);
    if (config.trainer.resume) {
      if (!trainer->options().resume_from().empty()) {
        std::cout << "resuming from " << trainer->options().resume_from() << "\n";
      } else {
        std::cout << "trainer.resume: no " << (run_dir / "checkpoint.pt").string() << " yet, training from the start\n";
      }
    }
    trainer->fit(module, train, validation ? &*validation : nullptr);
    metrics_files.emplace_back(run.name, (run_dir / "metrics.csv").string());

    auto evaluate = [&](size_t slot, const std::string& name, const std::string& type, torch::nn::Module& model) {
      ModelResult& m = models[slot].emplace();
      m.name = name;
      m.callback_type = type;
      m.run = run.name;
      m.test_accuracy = classification_accuracy(model, data.test_inputs, data.test_targets);
      const std::vector<ParameterSparsity> weights = measure_sparsity(model);
      m.weight_sparsity = overall_sparsity(weights);
      for (const auto& w : weights) m.weight_layers.push_back({w.name, w.zeros, w.numel});
      if (measure_activations && (type.empty() || run.lossy_layers)) {
        const ActivationSparsityReport activations = measure_activations_of(config.model, model, data.test_inputs);
        m.activation_sparsity = activations.total();
        m.activation_dense_bytes = activations.dense_bytes;
        m.activation_sparse_bytes = activations.sparse_bytes;
        for (const auto& a : activations.layers) {
          m.activation_layers.push_back({a.name, a.zeros, a.elements, a.near_zero, a.dense_bytes, a.sparse_bytes});
        }
      }
      m.model_file = (out / "models" / (name + ".pt")).string();
      save_model_state(model, m.model_file);
      m.file_bytes = static_cast<int64_t>(fs::file_size(m.model_file));
      m.gzip_bytes = compressed_size(m.model_file);
      m.compact_file = (out / "models" / (name + ".sparse.pt")).string();
      save_sparse(model, m.compact_file);
      m.compact_bytes = static_cast<int64_t>(fs::file_size(m.compact_file));
      const InferenceTiming timing = time_inference(model, m.compact_file, data.test_inputs, kInferenceBatch);
      m.dense_inference_ms = timing.dense_ms;
      m.sparse_inference_ms = timing.sparse_ms;
      m.parameters = count_parameters(model);
      if (!type.empty()) measure_shrunk(m, model, out, data);
    };
    if (run.name == "dense") {
      evaluate(0, "dense", "", *module.model());
      if (config.sensitivity) {
        const bool validation_data = data.has_validation();
        std::cout << run_sensitivity(*config.sensitivity, *module.model(),
                                     validation_data ? data.validation_inputs : data.test_inputs,
                                     validation_data ? data.validation_targets : data.test_targets, out.string())
                  << std::flush;
      }
    }
    for (const auto& live : callbacks) {
      auto model = live.callback->sparsified();
      if (!model) throw std::logic_error(fmt::format("callback '{}' produced no model", live.config->name));
      const auto index = static_cast<size_t>(live.config - config.callbacks.data());
      evaluate(index + 1, live.config->name, live.config->type, *model);
      if (BaseDataSparsifier* sparsifier = live.callback->data_sparsifier()) {
        sparsifier->save((out / "sparsifiers" / (live.config->name + ".pt")).string());
      }
    }
  }
  for (auto& model : models) result.models.push_back(std::move(model.value()));

  write_file_atomically((out / "metrics.csv").string(), merge_metrics_csv(metrics_files));
  result.wall_seconds = seconds_since(start);
  write_file_atomically((out / "summary.json").string(), summary_json(result));
  write_file_atomically((out / "models.csv").string(), models_csv(result));
  write_file_atomically((out / "layers.csv").string(), layers_csv(result));
  const std::string report = write_html_report(out.string());
  std::cout << "\n"
            << format_result_table(result)
            << fmt::format("(compact: save_sparse; ms per batch of {} test images, as trained and read back from the "
                           "compact file through to_sparse_inference)\n",
                           kInferenceBatch)
            << (std::any_of(result.models.begin(), result.models.end(), [](const ModelResult& m) { return m.shrunk(); })
                    ? fmt::format("(shrunk: shrink removed the pruned units, saved as models/NAME.shrunk.pt; ms per "
                                  "batch of {} test images, timed next to the model as trained)\n",
                                  kInferenceBatch)
                    : std::string())
            << [&] {
                 const std::string table = format_activation_table(result);
                 return table.empty() ? table
                                      : fmt::format("\nactivation sparsity per place on the test set (near 0: |x| <= "
                                                    "{:g}):\n{}",
                                                    kNearZero, table);
               }()
            << "\nwall time " << fmt::format("{:.1f}", result.wall_seconds)
            << " s; outputs in " << out.string() << "; report: " << report << "\n"
            << std::flush;
  return result;
}

}  // namespace sparsity::demo
