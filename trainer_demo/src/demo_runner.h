#pragma once
// Runs what a RunConfig describes: the training runs, the evaluation of every
// model on the test set, and the outputs (models, sparsifier states,
// metrics.csv, summary.json, the result table).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "run_config.h"

namespace sparsity::demo {

/// One training run of a config: the dense baseline, or a callback that
/// changes the model it trains.
struct PlannedRun {
  /// "dense", or the callback's name.
  std::string name;
  /// Trains the model with lossy sparsifier layers (a LossySparsifierCallback's run).
  bool lossy_layers = false;
  /// The callbacks attached to the run (pointers into the config).
  std::vector<const CallbackConfig*> callbacks;
};

/// Which models the demo trains: always the dense baseline ("dense"), with
/// every callback that only reads the trained model (PostTrainingDataSparsity,
/// TrainingAwareDataSparsity without apply_to_model); then one run per
/// callback that changes the model it trains (TrainingAwareDataSparsity with
/// apply_to_model, LossySparsifierCallback), named after it, in config order.
/// Every run starts from the same initial weights and sees the same data order.
std::vector<PlannedRun> plan_runs(const RunConfig& config);

/// One evaluated model.
struct ModelResult {
  /// "dense" or the callback's name.
  std::string name;
  /// The callback type that produced it; empty for the dense baseline.
  std::string callback_type;
  /// The training run it comes from.
  std::string run;
  double test_accuracy = 0.0;
  /// Exact zeros over all parameters.
  double weight_sparsity = 0.0;
  /// Zeros in the hidden activations on the test set; measured when the
  /// config uses lossy layers, for the dense baseline and the lossy models.
  std::optional<double> activation_sparsity;
  /// The saved model file, its size and its size once gzip-compressed.
  std::string model_file;
  int64_t file_bytes = 0;
  int64_t gzip_bytes = 0;
};

/// What `run_demo` produced.
struct DemoResult {
  /// The dense baseline first, then each sparsified model in config order.
  std::vector<ModelResult> models;
  double wall_seconds = 0.0;
  std::string output_dir;
};

/// Trains, evaluates and writes everything under `output_dir` (created):
/// `config.yaml` (resolved), `metrics.csv` (every run's epochs, with a `run`
/// column), `train/<run>/` (the Trainer's metrics.csv and checkpoint.pt),
/// `models/<name>.pt`, `sparsifiers/<name>.pt` and `summary.json`. Progress
/// goes to the console (stdout, and the sparsity logger).
DemoResult run_demo(const RunConfig& config, const std::string& output_dir);

/// summary.json: {"dense_test_accuracy", "sparsified": [{"callback",
/// "test_accuracy", "weight_sparsity", "activation_sparsity" (when measured)}],
/// "wall_seconds"}.
std::string summary_json(const DemoResult& result);

/// The final console table comparing the dense model and each sparsified one.
std::string format_result_table(const DemoResult& result);

}  // namespace sparsity::demo
