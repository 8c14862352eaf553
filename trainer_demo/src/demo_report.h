#pragma once
// What the demo reports once its models are trained: the evaluated models,
// summary.json, the result table, the merged metrics.csv, file sizes.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sparsity::demo {

/// Exact zeros in one named tensor: a parameter, or the activations one
/// layer receives over the test set.
struct ZeroCount {
  std::string name;
  int64_t zeros = 0;
  int64_t elements = 0;
  /// Activations only: |x| <= the demo's near-zero tolerance (zeros
  /// included), and the bytes stored dense and as bitmask + nonzeros.
  int64_t near_zero = 0;
  int64_t dense_bytes = 0;
  int64_t sparse_bytes = 0;
};

/// The tolerance of the activations' near-zero counts.
inline constexpr double kNearZero = 1e-3;

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
  /// Per parameter: its exact zeros (every floating parameter of the model).
  std::vector<ZeroCount> weight_layers;
  /// Per place whose activations are measured, when activation_sparsity is:
  /// the zeros of the input of each hidden layer (mlp, cnn), or of the output
  /// of each convolution slot, after its sparsifier when it has one (resnet),
  /// over the test set.
  std::vector<ZeroCount> activation_layers;
  /// The measured activations of the whole test set stored dense and as
  /// bitmask + nonzeros (0 when not measured).
  int64_t activation_dense_bytes = 0;
  int64_t activation_sparse_bytes = 0;
  /// The saved model file, its size and its size once gzip-compressed.
  std::string model_file;
  int64_t file_bytes = 0;
  int64_t gzip_bytes = 0;
  /// The compact file (`save_sparse`: a bitmask and the nonzero values) and
  /// its size.
  std::string compact_file;
  int64_t compact_bytes = 0;
  /// Milliseconds per batch of 256 test images: the model as trained (dense
  /// Linear layers) and the same model read back from its compact file and
  /// converted by `to_sparse_inference`. 0 when not measured.
  double dense_inference_ms = 0.0;
  double sparse_inference_ms = 0.0;
  /// dense_inference_ms / sparse_inference_ms (0 when not measured).
  double inference_speedup() const {
    return sparse_inference_ms > 0.0 ? dense_inference_ms / sparse_inference_ms : 0.0;
  }

  /// Parameters of the model (numel, zeros included).
  int64_t parameters = 0;
  /// The model with its pruned units removed (`shrink`), when that removed at
  /// least one unit: its parameters, file (models/NAME.shrunk.pt) and size,
  /// test accuracy (equal to `test_accuracy`), and milliseconds per batch of
  /// 256 test images next to the model as trained, timed side by side.
  /// shrunk_parameters is 0 when the model was not shrunk.
  int64_t shrunk_parameters = 0;
  std::string shrunk_file;
  int64_t shrunk_bytes = 0;
  double shrunk_test_accuracy = 0.0;
  double shrink_dense_ms = 0.0;
  double shrunk_inference_ms = 0.0;
  bool shrunk() const { return shrunk_parameters > 0; }
  /// shrink_dense_ms / shrunk_inference_ms (0 when not shrunk).
  double shrink_speedup() const { return shrunk_inference_ms > 0.0 ? shrink_dense_ms / shrunk_inference_ms : 0.0; }
};

/// What `run_demo` produced.
struct DemoResult {
  /// The dense baseline first, then each sparsified model in config order.
  std::vector<ModelResult> models;
  double wall_seconds = 0.0;
  std::string output_dir;
  /// The processes that trained the models (data-parallel), 1 for one.
  int64_t world_size = 1;
};

/// `text` as a JSON string literal. '<' is written as \u003c, so that the
/// literal can also stand inside an HTML <script> element (report.html)
/// without ending it.
std::string json_string(const std::string& text);

/// summary.json: {"dense_test_accuracy", "dense_compact_bytes",
/// "dense_activation_sparsity" (when activations are measured, i.e. the config
/// uses lossy layers: the dense model at the same places), "sparsified":
/// [{"callback", "test_accuracy", "weight_sparsity", "activation_sparsity",
/// "activation_dense_bytes", "activation_sparse_bytes" (when measured),
/// "compact_bytes", "inference_speedup", and for a shrunk model
/// "parameters", "shrunk_parameters", "shrunk_bytes", "shrink_speedup"}],
/// "world_size" (processes that trained, data-parallel),
/// "wall_seconds"}.
std::string summary_json(const DemoResult& result);

/// models.csv: the final table, one row per model (the dense baseline first):
/// model, callback_type, run, test_accuracy, weight_sparsity,
/// activation_sparsity (empty when not measured), parameters, file_bytes,
/// gzip_bytes, compact_bytes, dense_ms, sparse_ms, inference_speedup,
/// shrunk_parameters, shrunk_bytes, shrink_speedup, activation_dense_bytes,
/// activation_sparse_bytes (both empty when not measured).
std::string models_csv(const DemoResult& result);

/// layers.csv: model, kind (`weight` or `activation`), layer, zeros,
/// elements, near_zero, dense_bytes, sparse_bytes (the last three empty for
/// weights); one row per parameter of each model, then one per place whose
/// activations were measured.
std::string layers_csv(const DemoResult& result);

/// Per measured place, the activation sparsity of each model that has one
/// (exact zeros, and |x| <= kNearZero beside them), then the bytes of the
/// test set's activations dense and as bitmask + nonzeros; empty when no
/// model's activations were measured.
std::string format_activation_table(const DemoResult& result);

/// The final console table comparing the dense model and each sparsified one;
/// when a model was shrunk, four more columns: params, shrunk params, shrunk
/// size, shrunk ms and its speedup over the model as trained.
std::string format_result_table(const DemoResult& result);

/// One metrics.csv per run, merged into one table with a leading `run`
/// column: the header is `run` then the union of the files' columns (`epoch`,
/// `step` first, the rest sorted); a row lacking a column has an empty cell.
/// A missing file contributes nothing; a malformed one is std::runtime_error
/// naming it.
std::string merge_metrics_csv(const std::vector<std::pair<std::string, std::string>>& run_and_path);

/// The size of `path` once compressed by zlib at its default level (what
/// gzip would give, less its 18-byte header): how much of a file is zeros and
/// repetition.
int64_t compressed_size(const std::string& path);

/// "1.02 MB", "310.4 kB", "512 B".
std::string human_bytes(int64_t bytes);

}  // namespace sparsity::demo
