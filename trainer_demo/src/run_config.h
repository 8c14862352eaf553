#pragma once
// The run description trainer_demo reads from YAML: what data, which model,
// how to train it and which sparsity callbacks to run. docs/configuration.md
// documents every key; this header is its C++ form.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/plugin/sparsifying_callback.h"

namespace YAML {
class Node;
}

namespace sparsity::demo {

/// Limits on a run config. They keep checking a config fast (linear in its
/// size) and turn a generated or mistyped monster (a 10,000-layer list, a
/// config read from /dev/zero) into an error instead of a hang; every real
/// config is far below them. docs/configuration.md lists them.
/// The bytes of a config file (16 MiB).
inline constexpr size_t kMaxConfigBytes = size_t{16} << 20;
/// Entries of any list: model.hidden, model.channels, include, exclude, and
/// integer lists among sparsifier and scheduler arguments.
inline constexpr size_t kMaxListEntries = 1000;
/// Entries of `callbacks`: each is built while checking and may train a model.
inline constexpr size_t kMaxCallbacks = 100;
/// Entries of one `args` mapping.
inline constexpr size_t kMaxArguments = 1000;

/// A mistake in a run config. `what()` is the whole message,
/// "FILE:LINE:COLUMN: PATH: what was wrong and what was expected", or
/// "override 'KEY=VALUE': ..." for a command-line override.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `data.synthetic`: a generated classification set that needs no files.
struct SyntheticDataConfig {
  int64_t train_size = 2048;
  int64_t test_size = 512;
  int64_t classes = 4;
  /// Images are 1 x image_size x image_size.
  int64_t image_size = 8;
  /// Standard deviation of the Gaussian noise around each class's prototype.
  double noise = 0.5;
};

/// `data`.
struct DataConfig {
  /// "fashion-mnist" (Debian's dataset-fashion-mnist), "idx" (any
  /// MNIST-format directory) or "synthetic".
  std::string source = "fashion-mnist";
  /// The IDX directory; empty: /usr/share/datasets/fashion-mnist for
  /// "fashion-mnist", required for "idx".
  std::string directory;
  int64_t batch_size = 128;
  /// Fraction of the training set held out for validation, in [0, 1).
  double validation_split = 0.1;
  /// Use only the first N training examples (0: all).
  int64_t train_limit = 0;
  SyntheticDataConfig synthetic;
};

/// `model.lossy`: lossy sparsifier layers after each hidden layer of the
/// model, for the run of a LossySparsifierCallback.
struct LossyLayersConfig {
  /// Initial threshold ε of every layer.
  double eps = 0.0;
  /// Initial sharpness a.
  double a = 1.0;
  /// "L0", "L1", "L2", "normalized_L0", ... (penalty_names()).
  std::string penalty = "L1";
  /// The weight `reg` of the penalty in SparseLoss.
  double penalty_weight = 0.1;
  /// The L0 penalty's b.
  double l0_b = 1e-4;
};

/// `model`.
struct ModelConfig {
  /// "mlp", "cnn" or "resnet".
  std::string type = "mlp";
  /// The widths of the hidden Linear layers (MLP: after the flattened input;
  /// CNN: after the convolutions), each followed by ReLU. May be empty.
  std::vector<int64_t> hidden = {256, 128};
  /// CNN: the output channels of its 3x3 convolutions (each followed by ReLU
  /// and 2x2 max pooling). ResNet: the width of each stage.
  std::vector<int64_t> channels = {16, 32};
  /// ResNet: BasicBlocks per stage.
  int64_t blocks = 1;
  /// Present when the YAML has a `lossy` mapping (`lossy: {}` for all the
  /// defaults; `lossy:` with no value counts as absent).
  std::optional<LossyLayersConfig> lossy;
};

/// `optimizer`.
struct OptimizerConfig {
  /// "sgd" or "adam".
  std::string type = "adam";
  double lr = 1e-3;
  /// SGD only.
  double momentum = 0.0;
  double weight_decay = 0.0;
};

/// `trainer`.
struct TrainerConfig {
  int64_t epochs = 5;
  /// A live progress line on a terminal (log lines otherwise).
  bool progress = true;
  /// Write each run's checkpoint.pt at every epoch end.
  bool checkpoint = true;
  /// Resume each run from its checkpoint.pt in the output directory, when
  /// there is one.
  bool resume = false;
  /// spdlog level: "trace", "debug", "info", "warn", "error", "off".
  std::string log_level = "info";
};

/// `callbacks[i]`: any callback registered with `register_callback` that is a
/// SparsifyingCallback. The demo knows no callback type: each entry's keys
/// (other than `type`) are the callback's own Config, which the callback
/// reads and checks (`make_sparsifying_callback`), and which it writes back
/// with every default filled in (`to_config`).
struct CallbackConfig {
  /// The registered type name.
  std::string type;
  /// A label for tables, summary.json and file names; default: the type, with
  /// "_2", "_3", ... appended when a type repeats. Unique within a config.
  std::string name;
  /// The entry's keys other than `type`, `name` set to the label: what the
  /// callback is built from.
  Config args;
  /// The callback's own `to_config()`, every default filled in.
  Config resolved;
  /// Whether the callback changes the model it trains (and so gets a training
  /// run of its own), and whether that model needs lossy sparsifier layers.
  bool changes_trained_model = false;
  bool needs_lossy_layers = false;
  /// "FILE:LINE:COLUMN" of the entry, for errors found later ("override
  /// 'KEY=VALUE'" for an entry an override put there).
  std::string location;

  /// A new callback of this entry.
  std::shared_ptr<SparsifyingCallback> make() const;
};

/// `sensitivity`: a per-layer sensitivity analysis of the dense model once it
/// is trained (sparsity/analysis/sensitivity.h): each weight pruned alone to
/// each level, the model evaluated on `examples` validation images (test
/// images when there is no validation split), then the levels suggested for
/// a global `target`.
struct SensitivityConfig {
  /// Fractions of a weight pruned, each in (0, 1], increasing.
  std::vector<double> levels = {0.5, 0.7, 0.8, 0.9, 0.95};
  /// The overall sparsity of the analysed weights to suggest levels for, in [0, 1].
  double target = 0.9;
  /// Images per evaluation (the first ones of the split), at least 1.
  int64_t examples = 2000;
};

/// A whole run description.
struct RunConfig {
  /// Where it was read from (for messages).
  std::string source;
  uint64_t seed = 0;
  /// LibTorch's intra-op threads; 0: every core the process may run on.
  int64_t threads = 0;
  DataConfig data;
  ModelConfig model;
  OptimizerConfig optimizer;
  TrainerConfig trainer;
  std::vector<CallbackConfig> callbacks;
  /// Present when the YAML has a `sensitivity` mapping (or `--sensitivity`).
  std::optional<SensitivityConfig> sensitivity;
};

/// Reads the YAML file at `path`, applies the command-line `overrides`
/// ("dotted.key=value", e.g. "trainer.epochs=2",
/// "callbacks.0.sparsifier.args.sparsity_level=0.9", "model.hidden=[64, 32]";
/// the value is read as YAML), and checks everything: unknown keys (with the
/// nearest valid one), wrong types, out-of-range values, unknown sparsifier,
/// scheduler or callback types and their arguments (by building them once).
/// Any mistake is a ConfigError, and so are a file over kMaxConfigBytes
/// (read no further than that), more than one YAML document, and lists or
/// mappings over the limits above.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

/// The same from YAML text; `source_name` stands for the file in messages.
RunConfig parse_run_config(const std::string& yaml_text, const std::string& source_name,
                           const std::vector<std::string>& overrides = {});

/// The resolved config, every default filled in, as YAML text that
/// `parse_run_config` reads back to an equal config. Callbacks are written as
/// their `to_config()`; sparsifier and scheduler `args` as given (their
/// registries fill in their own defaults).
std::string to_yaml_text(const RunConfig& config);

}  // namespace sparsity::demo
