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
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "demo_data.h"
#include "demo_model.h"
#include "demo_report.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/file_io.h"
#include "sparsity/logging.h"
#include "sparsity/lossy/activation_sparsity.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/plugin/data_source.h"
#include "sparsity/plugin/lossy_sparsifier_callback.h"
#include "sparsity/plugin/model_state.h"
#include "sparsity/plugin/post_training_data_sparsity.h"
#include "sparsity/plugin/sparsity_report.h"
#include "sparsity/plugin/trainer.h"
#include "sparsity/plugin/training_aware_data_sparsity.h"
#include "sparsity/runtime/blas_info.h"
#include "sparsity/runtime/threads.h"
#include "sparsity/state_file.h"

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

/// An exception's message without LibTorch's C++ backtrace.
std::string first_line(const std::string& message) {
  const auto cut = message.find("\nException raised from");
  return cut == std::string::npos ? message : message.substr(0, cut);
}

std::string describe_model(const ModelConfig& model, const InputShape& input, int64_t classes) {
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

/// The checkpoint of `run` matches what this config would build: a checkpoint
/// file with its checksum, the model's tensors (names and shapes), the
/// optimizer's state, and the callbacks' states. Throws std::runtime_error
/// saying what does not match.
void check_checkpoint(const RunConfig& config, const PlannedRun& run, const fs::path& path, const InputShape& input,
                      const DemoData& data) {
  const c10::IValue root = load_state_file(path.string(), "a sparsity checkpoint");
  if (!root.isGenericDict()) throw std::runtime_error("it is not a sparsity checkpoint");
  const c10::impl::GenericDict checkpoint = root.toGenericDict();
  auto field = [&](const std::string& key) {
    const auto found = checkpoint.find(key);
    if (found == checkpoint.end()) throw std::runtime_error(fmt::format("the checkpoint has no '{}'", key));
    return found->value();
  };
  const c10::IValue format = field("format");
  if (!format.isString() || format.toStringRef() != "sparsity.Checkpoint")
    throw std::runtime_error("it is not a sparsity checkpoint (its 'format' is not 'sparsity.Checkpoint')");

  ClassifierModule module = make_classifier(config, run, input, data.classes);

  const c10::IValue model_state = field("model");
  if (!model_state.isGenericDict()) throw std::runtime_error("the checkpoint's 'model' is not a dict");
  const c10::impl::GenericDict saved = model_state.toGenericDict();
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& item : module.model()->named_parameters(/*recurse=*/true))
    if (item.value().defined()) expected.emplace(item.key(), item.value().sizes().vec());
  for (const auto& item : module.model()->named_buffers(/*recurse=*/true))
    if (item.value().defined()) expected.emplace(item.key(), item.value().sizes().vec());
  std::vector<std::string> problems;
  for (const auto& [name, shape] : expected) {
    const auto found = saved.find(name);
    if (found == saved.end()) {
      problems.push_back(fmt::format("'{}' [{}] is missing from the checkpoint", name, fmt::join(shape, ", ")));
    } else if (!found->value().isTensor() || found->value().toTensor().sizes().vec() != shape) {
      problems.push_back(fmt::format(
          "'{}' is [{}] in the checkpoint but [{}] in this config's model", name,
          found->value().isTensor() ? fmt::format("{}", fmt::join(found->value().toTensor().sizes(), ", ")) : "?",
          fmt::join(shape, ", ")));
    }
  }
  for (const auto& entry : saved) {
    const std::string name = entry.key().isString() ? entry.key().toStringRef() : "?";
    if (expected.count(name) == 0) problems.push_back(fmt::format("'{}' is in the checkpoint but not in the model", name));
  }
  if (!problems.empty()) {
    throw std::runtime_error(fmt::format("the model of this config does not match the checkpoint's (was model "
                                         "changed?): {}",
                                         fmt::join(problems, "; ")));
  }

  const c10::IValue optimizer_bytes = field("optimizer");
  if (!optimizer_bytes.isTensor() || optimizer_bytes.toTensor().scalar_type() != at::kByte)
    throw std::runtime_error("the checkpoint's 'optimizer' is not the bytes of an optimizer's state");
  try {
    const at::Tensor bytes = optimizer_bytes.toTensor().contiguous();
    torch::serialize::InputArchive archive;
    archive.load_from(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
    module.configure_optimizers()->load(archive);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "the checkpoint's optimizer state does not load into this config's {} optimizer (was optimizer.type "
        "changed?): {}",
        config.optimizer.type, first_line(e.what())));
  }

  const c10::IValue callback_states = field("callbacks");
  if (!callback_states.isGenericDict()) throw std::runtime_error("the checkpoint's 'callbacks' is not a dict");
  const c10::impl::GenericDict states = callback_states.toGenericDict();
  for (const CallbackConfig* callback : run.callbacks) {
    const LiveCallback live = make_live_callback(*callback);
    const auto found = states.find(live.callback->name());
    if (found == states.end()) continue;  // the Trainer starts such a callback afresh, with a warning
    try {
      live.callback->load_state_dict(found->value());
    } catch (const std::exception& e) {
      throw std::runtime_error(
          fmt::format("the state of callback '{}' does not load: {}", callback->name, first_line(e.what())));
    }
  }
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
      check_checkpoint(config, run, checkpoint, input, data);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("trainer.resume: cannot resume run '{}' from '{}': {}; nothing in '{}' "
                                           "was changed",
                                           run.name, checkpoint.string(), first_line(e.what()), out.string()));
    }
  }
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
            << config.data.batch_size << ", " << at::get_num_threads() << " threads\n"
            << "output: " << out.string() << "\n"
            << std::flush;

  const DataSource train(data.train_inputs, data.train_targets, config.data.batch_size, /*shuffle=*/true,
                         config.seed);
  std::optional<DataSource> validation;
  if (data.has_validation()) {
    validation.emplace(data.validation_inputs, data.validation_targets, 1000, /*shuffle=*/false);
  }
  const bool measure_activations = config.model.lossy.has_value();

  DemoResult result;
  result.output_dir = out.string();
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
    const fs::path checkpoint = run_dir / "checkpoint.pt";
    TrainerOptions options;
    options.max_epochs(config.trainer.epochs)
        .seed(config.seed)
        .output_dir(run_dir.string())
        .checkpoint(config.trainer.checkpoint)
        .progress(config.trainer.progress)
        .threads(config.threads);
    if (config.trainer.resume) {
      if (fs::exists(checkpoint)) {
        std::cout << "resuming from " << checkpoint.string() << "\n";
        options.resume_from(checkpoint.string());
      } else {
        std::cout << "trainer.resume: no " << checkpoint.string() << " yet, training from the start\n";
      }
    }
    Trainer trainer(options);
    std::vector<LiveCallback> callbacks;
    for (const auto* callback : run.callbacks) {
      callbacks.push_back(make_live_callback(*callback));
      trainer.add_callback(callbacks.back().callback);
    }
    trainer.fit(module, train, validation ? &*validation : nullptr);
    metrics_files.emplace_back(run.name, (run_dir / "metrics.csv").string());

    auto evaluate = [&](size_t slot, const std::string& name, const std::string& type, torch::nn::Module& model) {
      ModelResult& m = models[slot].emplace();
      m.name = name;
      m.callback_type = type;
      m.run = run.name;
      m.test_accuracy = classification_accuracy(model, data.test_inputs, data.test_targets);
      m.weight_sparsity = overall_sparsity(measure_sparsity(model));
      if (measure_activations && (type.empty() || run.lossy_layers)) {
        m.activation_sparsity = measure_activation_sparsity(model, data.test_inputs, 1000).total();
      }
      m.model_file = (out / "models" / (name + ".pt")).string();
      save_model_state(model, m.model_file);
      m.file_bytes = static_cast<int64_t>(fs::file_size(m.model_file));
      m.gzip_bytes = compressed_size(m.model_file);
    };
    if (run.name == "dense") evaluate(0, "dense", "", *module.model());
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
  std::cout << "\n" << format_result_table(result) << "\nwall time " << fmt::format("{:.1f}", result.wall_seconds)
            << " s; outputs in " << out.string() << "\n"
            << std::flush;
  return result;
}

}  // namespace sparsity::demo
