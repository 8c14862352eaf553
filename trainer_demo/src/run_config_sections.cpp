#include "run_config_sections.h"

#include <fmt/format.h>

#include "run_config_callbacks.h"
#include "sparsity/lossy/penalties.h"
#include "sparsity/runtime/threads.h"

namespace sparsity::demo::detail {

namespace {

std::vector<std::string> sources() { return {"fashion-mnist", "idx", "synthetic"}; }
std::vector<std::string> model_types() { return {"mlp", "cnn", "resnet"}; }
std::vector<std::string> optimizers() { return {"sgd", "adam"}; }
std::vector<std::string> log_levels() { return {"trace", "debug", "info", "warn", "error", "off"}; }

// Section readers: the table, then the cross-field checks. -------------------

void read_synthetic(const Reader& r, const Value& v, SyntheticDataConfig& out) {
  const Mapping m = read_fields(r, v, synthetic_table(), out);
  if (out.train_size < out.classes) {
    const Value at = m.find("train_size") != nullptr ? m.at_or_self("train_size") : m.at_or_self("classes");
    r.fail(at, fmt::format("train_size ({}) must be at least classes ({}), so that every class has an example",
                           out.train_size, out.classes));
  }
}

void read_data(const Reader& r, const Value& v, DataConfig& out) {
  const Mapping m = read_fields(r, v, data_table(), out);
  if (out.source == "idx" && out.directory.empty()) {
    Value at = m.at_or_self("source");
    at.path = v.path + ".directory";
    r.fail(at, "required when source is 'idx': the directory holding the MNIST-format files "
               "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...; .gz accepted)");
  }
}

void read_lossy(const Reader& r, const Value& v, LossyLayersConfig& out) { read_fields(r, v, lossy_table(), out); }

void read_sensitivity(const Reader& r, const Value& v, SensitivityConfig& out) {
  const Mapping m = read_fields(r, v, sensitivity_table(), out);
  if (out.levels.empty()) r.fail(m.at_or_self("levels"), "expected at least one level, e.g. [0.5, 0.9]");
  for (size_t i = 1; i < out.levels.size(); ++i) {
    if (!(out.levels[i] > out.levels[i - 1])) {
      r.fail(m.at_or_self("levels"), fmt::format("the levels must increase, got {} after {}", out.levels[i],
                                                 out.levels[i - 1]));
    }
  }
}

void read_model(const Reader& r, const Value& v, ModelConfig& out) {
  const Mapping m = read_fields(r, v, model_table(), out);
  if ((out.type == "cnn" || out.type == "resnet") && out.channels.empty()) {
    r.fail(m.find("channels") != nullptr ? m.at_or_self("channels") : m.at_or_self("type"),
           fmt::format("a {} needs at least one {}: expected a non-empty list of channel counts, e.g. [16, 32]",
                       out.type, out.type == "cnn" ? "convolution" : "stage"));
  }
}

void read_optimizer(const Reader& r, const Value& v, OptimizerConfig& out) {
  const Mapping m = read_fields(r, v, optimizer_table(), out);
  if (const Value* x = m.find("momentum"); x != nullptr && out.momentum != 0.0 && out.type != "sgd") {
    r.fail(*x, fmt::format("momentum applies to the sgd optimizer only (this one is {}); expected 0 or "
                           "optimizer.type: sgd",
                           out.type));
  }
}

void read_trainer(const Reader& r, const Value& v, TrainerConfig& out) { read_fields(r, v, trainer_table(), out); }

/// `threads`: an integer in [0, max_threads()]; the bound depends on the
/// machine, so the message says where it comes from.
Field<RunConfig> threads_field() {
  return {"threads",
          [](const Reader& r, const Value& v, RunConfig& c) {
            c.threads = r.integer_at_least(v, 0);
            if (c.threads > max_threads()) {
              r.fail(v, fmt::format("expected an integer <= {} ({} x the {} cores this process may use), got {}",
                                    max_threads(), max_threads() / available_cores(), available_cores(), c.threads));
            }
          },
          [](YAML::Emitter& out, const RunConfig& c) { out << YAML::Key << "threads" << YAML::Value << c.threads; }};
}

/// `callbacks`: read after the table (read_callbacks), written here.
Field<RunConfig> callbacks_field() {
  return {"callbacks", nullptr, [](YAML::Emitter& out, const RunConfig& c) {
            out << YAML::Key << "callbacks" << YAML::Value;
            write_callbacks(out, c.callbacks);
          }};
}

/// The value of `model.lossy` when it has one, for the pairing check of the
/// callbacks (the model section was read, so it is a mapping or nothing).
std::optional<Value> lossy_value(const Reader& r, const Mapping& top) {
  const Value* model = top.find("model");
  if (model == nullptr) return std::nullopt;
  const Mapping m = r.mapping(*model, nullptr, model_table().expected);
  const Value* lossy = m.find("lossy");
  if (lossy == nullptr || !lossy->present()) return std::nullopt;
  return *lossy;
}

}  // namespace

// The tables. ------------------------------------------------------------------

const Section<SyntheticDataConfig>& synthetic_table() {
  using S = SyntheticDataConfig;
  static const Section<S> table{"a mapping of synthetic data settings",
                                {
                                    integer_field("train_size", &S::train_size, 1),
                                    integer_field("test_size", &S::test_size, 1),
                                    integer_field("classes", &S::classes, 2),
                                    integer_field("image_size", &S::image_size, 4),
                                    number_field("noise", &S::noise, kNonNegative),
                                }};
  return table;
}

const Section<DataConfig>& data_table() {
  using S = DataConfig;
  static const Section<S> table{"a mapping of data settings",
                                {
                                    choice_field("source", &S::source, sources, "data source"),
                                    string_field("directory", &S::directory),
                                    integer_field("batch_size", &S::batch_size, 1),
                                    number_field("validation_split", &S::validation_split,
                                                 unit_interval("a fraction in [0, 1)")),
                                    integer_field("train_limit", &S::train_limit, 0),
                                    section_field("synthetic", &S::synthetic, read_synthetic, synthetic_table),
                                }};
  return table;
}

const Section<LossyLayersConfig>& lossy_table() {
  using S = LossyLayersConfig;
  static const Section<S> table{"a mapping of lossy layer settings",
                                {
                                    number_field("eps", &S::eps, kAnyFinite),
                                    number_field("a", &S::a, kPositive),
                                    choice_field("penalty", &S::penalty, penalty_names, "penalty"),
                                    number_field("penalty_weight", &S::penalty_weight, kNonNegative),
                                    number_field("l0_b", &S::l0_b, kPositive),
                                }};
  return table;
}

const Section<ModelConfig>& model_table() {
  using S = ModelConfig;
  static const Section<S> table{"a mapping of model settings",
                                {
                                    choice_field("type", &S::type, model_types, "model type"),
                                    integer_list_field("hidden", &S::hidden, 1),
                                    integer_list_field("channels", &S::channels, 1),
                                    bounded_integer_field("blocks", &S::blocks, 1, 16),
                                    optional_section_field("lossy", &S::lossy, read_lossy, lossy_table),
                                }};
  return table;
}

const Section<OptimizerConfig>& optimizer_table() {
  using S = OptimizerConfig;
  static const Section<S> table{"a mapping of optimizer settings",
                                {
                                    choice_field("type", &S::type, optimizers, "optimizer type"),
                                    number_field("lr", &S::lr, kPositive),
                                    number_field("momentum", &S::momentum, unit_interval("a number in [0, 1)")),
                                    number_field("weight_decay", &S::weight_decay, kNonNegative),
                                }};
  return table;
}

const Section<TrainerConfig>& trainer_table() {
  using S = TrainerConfig;
  static const Section<S> table{"a mapping of trainer settings",
                                {
                                    integer_field("epochs", &S::epochs, 1),
                                    bool_field("progress", &S::progress),
                                    bool_field("checkpoint", &S::checkpoint),
                                    bool_field("resume", &S::resume),
                                    choice_field("log_level", &S::log_level, log_levels, "log level"),
                                }};
  return table;
}

const Section<SensitivityConfig>& sensitivity_table() {
  using S = SensitivityConfig;
  static const NumberRule level{"a fraction in (0, 1]", false, 0.0, true, 1.0, false};
  static const NumberRule target{"a fraction in [0, 1]", false, 0.0, false, 1.0, false};
  static const Section<S> table{"a mapping of sensitivity analysis settings",
                                {
                                    number_list_field("levels", &S::levels, level),
                                    number_field("target", &S::target, target),
                                    integer_field("examples", &S::examples, 1),
                                }};
  return table;
}

const Section<RunConfig>& run_config_table() {
  using S = RunConfig;
  static const Section<S> table{"a mapping of sections",
                                {
                                    integer_field("seed", &S::seed, 0),
                                    threads_field(),
                                    section_field("data", &S::data, read_data, data_table),
                                    section_field("model", &S::model, read_model, model_table),
                                    section_field("optimizer", &S::optimizer, read_optimizer, optimizer_table),
                                    section_field("trainer", &S::trainer, read_trainer, trainer_table),
                                    callbacks_field(),
                                    optional_section_field("sensitivity", &S::sensitivity, read_sensitivity,
                                                           sensitivity_table),
                                }};
  return table;
}

RunConfig read_run_config(const Reader& r, const YAML::Node& root, const std::string& source) {
  RunConfig config;
  config.source = source;
  const Mapping top = read_fields(r, r.root(root), run_config_table(), config);
  read_callbacks(r, top.find("callbacks"), config, lossy_value(r, top));
  return config;
}

}  // namespace sparsity::demo::detail
