#pragma once
// Runs what a RunConfig describes: the training runs, the evaluation of every
// model on the test set, and the outputs (models, sparsifier states,
// metrics.csv, summary.json, the result table).

#include <string>
#include <vector>

#include "demo_report.h"
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

/// Trains, evaluates and writes everything under `output_dir` (created):
/// `config.yaml` (resolved), `metrics.csv` (every run's epochs, with a `run`
/// column), `train/<run>/` (the Trainer's metrics.csv and checkpoint.pt),
/// `models/<name>.pt`, `sparsifiers/<name>.pt` and `summary.json`. Progress
/// goes to the console (stdout, and the sparsity logger).
///
/// Before anything is written (std::runtime_error otherwise, the directory
/// as it was): the data and the model are checked; the directory is locked
/// (an exclusive flock held until the function returns), so a second run on
/// it is refused; a directory that already holds files is refused unless
/// `trainer.resume` is set; and when resuming, every run's checkpoint must
/// load into what this config builds (model tensors, optimizer, callbacks).
DemoResult run_demo(const RunConfig& config, const std::string& output_dir);

}  // namespace sparsity::demo
