#include "demo_runner.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

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

namespace sparsity::demo {

namespace fs = std::filesystem;

std::vector<PlannedRun> plan_runs(const RunConfig& config) {
  std::vector<PlannedRun> runs(1);
  runs[0].name = "dense";
  for (const auto& callback : config.callbacks) {
    if (callback.changes_trained_model()) {
      PlannedRun run;
      run.name = callback.name;
      run.lossy_layers = callback.kind == CallbackKind::LossySparsifierCallback;
      run.callbacks.push_back(&callback);
      runs.push_back(std::move(run));
    } else {
      runs[0].callbacks.push_back(&callback);
    }
  }
  return runs;
}

namespace {

/// A callback of the config, built; `post` or `aware` is set for the
/// data-sparsity callbacks (whose models and sparsifiers the demo saves).
struct LiveCallback {
  const CallbackConfig* config = nullptr;
  std::shared_ptr<Callback> callback;
  std::shared_ptr<PostTrainingDataSparsity> post;
  std::shared_ptr<TrainingAwareDataSparsity> aware;

  /// The model this callback produced, once the run is over.
  std::shared_ptr<torch::nn::Module> result_model(const std::shared_ptr<torch::nn::Module>& trained) const {
    if (post) return post->sparsified();
    if (aware) return aware->sparsified();
    return trained;  // the lossy layers' callback converts the trained model itself
  }

  BaseDataSparsifier* sparsifier() const {
    if (post) return post->data_sparsifier();
    if (aware) return aware->data_sparsifier();
    return nullptr;
  }
};

LiveCallback make_live_callback(const CallbackConfig& config, const DemoData& data) {
  const ParameterSelection selection{config.include, config.exclude};
  LiveCallback live{&config, nullptr, nullptr, nullptr};
  switch (config.kind) {
    case CallbackKind::PostTrainingDataSparsity:
      live.callback = live.post = std::make_shared<PostTrainingDataSparsity>(
          config.sparsifier.type, config.sparsifier.args,
          PostTrainingDataSparsityOptions().parameters(selection).name(config.name));
      break;
    case CallbackKind::TrainingAwareDataSparsity:
      live.callback = live.aware = std::make_shared<TrainingAwareDataSparsity>(
          config.sparsifier.type, config.sparsifier.args, config.scheduler->type, config.scheduler->args,
          TrainingAwareDataSparsityOptions()
              .parameters(selection)
              .name(config.name)
              .apply_to_model(config.apply_to_model)
              .update_every_n_steps(config.update_every_n_steps));
      break;
    case CallbackKind::LossySparsifierCallback: {
      auto options = LossySparsifierCallbackOptions::from_config(config.lossy_args);
      // Activation sparsity per epoch on the validation split: the test set
      // stays unseen until the final evaluation.
      if (data.has_validation()) options.eval_inputs(data.validation_inputs);
      live.callback = std::make_shared<LossySparsifierCallback>(options);
      break;
    }
  }
  return live;
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
  // Data-sparsity callbacks always run on the model without lossy layers.
  auto model = build_model(config.model, input, classes, config.seed);
  std::vector<std::string> names;
  for (const auto& item : model->named_parameters()) names.push_back(item.key());
  for (const auto& callback : config.callbacks) {
    if (callback.kind == CallbackKind::LossySparsifierCallback) continue;
    const ParameterSelection selection{callback.include, callback.exclude};
    if (std::none_of(names.begin(), names.end(), [&](const std::string& n) { return selection.selects(n); })) {
      throw std::invalid_argument(fmt::format(
          "{}: callback '{}' selects no parameter of the model (include: [{}], exclude: [{}]; parameters: {})",
          callback.location, callback.name, fmt::join(callback.include, ", "), fmt::join(callback.exclude, ", "),
          fmt::join(names, ", ")));
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
  const std::vector<PlannedRun> runs = plan_runs(config);
  for (size_t r = 0; r < runs.size(); ++r) {
    const PlannedRun& run = runs[r];
    std::vector<std::string> attached;
    for (const auto* callback : run.callbacks) attached.push_back(callback->name);
    std::cout << fmt::format("\n== run {}/{}: {}{}{}\n", r + 1, runs.size(), run.name,
                             run.lossy_layers ? " (with lossy sparsifier layers)" : "",
                             attached.empty() ? "" : fmt::format(", callbacks: {}", fmt::join(attached, ", ")))
              << std::flush;

    std::shared_ptr<ActivationCollector> collector;
    std::optional<SparseLoss> sparse_loss;
    if (run.lossy_layers) {
      collector = std::make_shared<ActivationCollector>();
      sparse_loss = make_sparse_loss(*config.model.lossy);
    }
    ClassifierModule module(build_model(config.model, input, data.classes, config.seed, run.lossy_layers, collector),
                            config.optimizer, collector, sparse_loss);

    const fs::path run_dir = out / "train" / run.name;
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
      callbacks.push_back(make_live_callback(*callback, data));
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
      auto model = live.result_model(module.model());
      if (!model) throw std::logic_error(fmt::format("callback '{}' produced no model", live.config->name));
      const auto index = static_cast<size_t>(live.config - config.callbacks.data());
      evaluate(index + 1, live.config->name, to_string(live.config->kind), *model);
      if (BaseDataSparsifier* sparsifier = live.sparsifier()) {
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
