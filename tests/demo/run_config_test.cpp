// trainer_demo's run config: reading, checking (every class of mistake, each
// located by file, line and column or by override), overrides and the
// resolved YAML.

#include "run_config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "../core/test_support.h"
#include "sparsity/plugin/lossy_sparsifier_callback.h"

namespace sparsity::demo {
namespace {

namespace fs = std::filesystem;
using sparsity::testing::error_of;

RunConfig parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parse_run_config(yaml, "run.yaml", overrides);
}

/// The ConfigError of parsing `yaml` as "run.yaml" with `overrides`.
std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of<ConfigError>([&] { parse(yaml, overrides); });
}

/// Expects `message` to begin with `prefix` (e.g. "run.yaml:2:11: trainer.epochs: ")
/// and to contain each of `words`.
void expect_error(const std::string& message, const std::string& prefix, std::initializer_list<std::string> words) {
  EXPECT_EQ(message.substr(0, prefix.size()), prefix) << "message: " << message;
  for (const auto& word : words) EXPECT_NE(message.find(word), std::string::npos) << word << "\nmessage: " << message;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A post-training callback that is valid on its own.
const std::string kPostTraining =
    "callbacks:\n"
    "  - type: PostTrainingDataSparsity\n"
    "    sparsifier:\n"
    "      type: DataNormSparsifier\n"
    "      args: {sparsity_level: 0.5}\n";

// ---------------------------------------------------------------------------
// Valid configs.

TEST(RunConfig, AbsentSectionsKeepTheDefaults) {
  const RunConfig config = parse("seed: 3\n");
  const RunConfig defaults;
  EXPECT_EQ(config.source, "run.yaml");
  EXPECT_EQ(config.seed, 3u);
  EXPECT_EQ(config.threads, defaults.threads);
  EXPECT_EQ(config.data.source, "fashion-mnist");
  EXPECT_EQ(config.data.directory, "");
  EXPECT_EQ(config.data.batch_size, defaults.data.batch_size);
  EXPECT_EQ(config.data.validation_split, defaults.data.validation_split);
  EXPECT_EQ(config.data.synthetic.train_size, defaults.data.synthetic.train_size);
  EXPECT_EQ(config.data.synthetic.noise, defaults.data.synthetic.noise);
  EXPECT_EQ(config.model.type, "mlp");
  EXPECT_EQ(config.model.hidden, defaults.model.hidden);
  EXPECT_EQ(config.model.channels, defaults.model.channels);
  EXPECT_FALSE(config.model.lossy.has_value());
  EXPECT_EQ(config.optimizer.type, "adam");
  EXPECT_EQ(config.optimizer.lr, defaults.optimizer.lr);
  EXPECT_EQ(config.trainer.epochs, defaults.trainer.epochs);
  EXPECT_TRUE(config.trainer.progress);
  EXPECT_TRUE(config.trainer.checkpoint);
  EXPECT_FALSE(config.trainer.resume);
  EXPECT_EQ(config.trainer.log_level, "info");
  EXPECT_TRUE(config.callbacks.empty());
}

TEST(RunConfig, SectionsWithoutAValueKeepTheDefaults) {
  const RunConfig config = parse("data:\nmodel:\n  lossy:\noptimizer:\ntrainer:\ncallbacks:\n");
  EXPECT_EQ(config.data.batch_size, 128);
  EXPECT_FALSE(config.model.lossy.has_value());
  EXPECT_TRUE(config.callbacks.empty());
}

TEST(RunConfig, ReadsEverySection) {
  const RunConfig config = parse(
      "seed: 42\n"
      "threads: 3\n"
      "data:\n"
      "  source: idx\n"
      "  directory: /data/mnist\n"
      "  batch_size: 64\n"
      "  validation_split: 0\n"
      "  train_limit: 500\n"
      "  synthetic: {train_size: 10, test_size: 5, classes: 10, image_size: 4, noise: 0}\n"
      "model:\n"
      "  type: cnn\n"
      "  hidden: []\n"
      "  channels: [4, 8]\n"
      "  lossy: {eps: -0.5, a: 3, penalty: normalized_L2, penalty_weight: 0, l0_b: 0.01}\n"
      "optimizer:\n"
      "  type: sgd\n"
      "  lr: 1\n"
      "  momentum: 0.9\n"
      "  weight_decay: 1e-4\n"
      "trainer:\n"
      "  epochs: 2\n"
      "  progress: false\n"
      "  checkpoint: False\n"
      "  resume: true\n"
      "  log_level: off\n"
      "callbacks:\n"
      "  - type: LossySparsifierCallback\n");
  EXPECT_EQ(config.seed, 42u);
  EXPECT_EQ(config.threads, 3);
  EXPECT_EQ(config.data.source, "idx");
  EXPECT_EQ(config.data.directory, "/data/mnist");
  EXPECT_EQ(config.data.batch_size, 64);
  EXPECT_EQ(config.data.validation_split, 0.0);
  EXPECT_EQ(config.data.train_limit, 500);
  EXPECT_EQ(config.data.synthetic.train_size, 10);
  EXPECT_EQ(config.data.synthetic.test_size, 5);
  EXPECT_EQ(config.data.synthetic.classes, 10);
  EXPECT_EQ(config.data.synthetic.image_size, 4);
  EXPECT_EQ(config.data.synthetic.noise, 0.0);
  EXPECT_EQ(config.model.type, "cnn");
  EXPECT_TRUE(config.model.hidden.empty());
  EXPECT_EQ(config.model.channels, (std::vector<int64_t>{4, 8}));
  ASSERT_TRUE(config.model.lossy.has_value());
  EXPECT_EQ(config.model.lossy->eps, -0.5);
  EXPECT_EQ(config.model.lossy->a, 3.0);  // an integer where a number is expected
  EXPECT_EQ(config.model.lossy->penalty, "normalized_L2");
  EXPECT_EQ(config.model.lossy->penalty_weight, 0.0);
  EXPECT_EQ(config.model.lossy->l0_b, 0.01);
  EXPECT_EQ(config.optimizer.type, "sgd");
  EXPECT_EQ(config.optimizer.lr, 1.0);
  EXPECT_EQ(config.optimizer.momentum, 0.9);
  EXPECT_EQ(config.optimizer.weight_decay, 1e-4);
  EXPECT_EQ(config.trainer.epochs, 2);
  EXPECT_FALSE(config.trainer.progress);
  EXPECT_FALSE(config.trainer.checkpoint);
  EXPECT_TRUE(config.trainer.resume);
  EXPECT_EQ(config.trainer.log_level, "off");
  ASSERT_EQ(config.callbacks.size(), 1u);
}

TEST(RunConfig, ReadsEachCallbackType) {
  const RunConfig config = parse(
      "model:\n"
      "  lossy: {}\n"
      "callbacks:\n"
      "  - type: PostTrainingDataSparsity\n"
      "    sparsifier:\n"
      "      type: DataNormSparsifier\n"
      "      args: {sparsity_level: 0.7, sparse_block_shape: [1, 4], norm: L2}\n"
      "    include: '*weight'\n"
      "    exclude: ['*bias', '0.*']\n"
      "  - type: TrainingAwareDataSparsity\n"
      "    name: aware\n"
      "    sparsifier: {type: DataNormSparsifier}\n"
      "    scheduler: {type: StepSLScheduler, args: {step_size: 2, gamma: 0.5}}\n"
      "    apply_to_model: true\n"
      "    update_every_n_steps: 10\n"
      "  - type: LossySparsifierCallback\n"
      "    sharpness_factor: 3\n"
      "    eval_batch_size: 64\n");
  ASSERT_EQ(config.callbacks.size(), 3u);

  using StringList = ConfigValue::StringList;
  const Config data_norm = Config{{"type", "DataNormSparsifier"},
                                  {"args", Config{{"sparsity_level", 0.7}, {"sparse_block_shape", {1, 4}}, {"norm", "L2"}}}};
  const CallbackConfig& post = config.callbacks[0];
  EXPECT_EQ(post.type, "PostTrainingDataSparsity");
  EXPECT_EQ(post.name, "PostTrainingDataSparsity");
  // The callback's own view: every option, the defaults filled in.
  EXPECT_EQ(post.resolved, (Config{{"sparsifier", data_norm},
                                   {"name", "PostTrainingDataSparsity"},
                                   {"fine_tune_epochs", 0},
                                   {"include", StringList{"*weight"}},
                                   {"exclude", StringList{"*bias", "0.*"}}}));
  EXPECT_EQ(post.location, "run.yaml:4:5");
  EXPECT_FALSE(post.changes_trained_model);
  EXPECT_FALSE(post.needs_lossy_layers);

  const CallbackConfig& aware = config.callbacks[1];
  EXPECT_EQ(aware.type, "TrainingAwareDataSparsity");
  EXPECT_EQ(aware.name, "aware");
  EXPECT_EQ(aware.resolved,
            (Config{{"sparsifier", Config{{"type", "DataNormSparsifier"}, {"args", Config{}}}},
                    {"scheduler", Config{{"type", "StepSLScheduler"}, {"args", Config{{"step_size", 2}, {"gamma", 0.5}}}}},
                    {"name", "aware"},
                    {"apply_to_model", true},
                    {"update_every_n_steps", 10},
                    {"rewind_to_epoch", -1},
                    {"rewind_at_epoch", -1},
                    {"include", StringList{}},
                    {"exclude", StringList{}}}));
  EXPECT_EQ(aware.location, "run.yaml:10:5");
  EXPECT_TRUE(aware.changes_trained_model);

  const CallbackConfig& lossy = config.callbacks[2];
  EXPECT_EQ(lossy.type, "LossySparsifierCallback");
  EXPECT_EQ(lossy.name, "LossySparsifierCallback");
  EXPECT_EQ(lossy.resolved, (Config{{"name", "LossySparsifierCallback"},
                                    {"sharpness_factor", 3.0},
                                    {"sharpness_period", 1},
                                    {"convert_to_hard", true},
                                    {"eval_on_validation", true},
                                    {"eval_batch_size", 64}}));
  EXPECT_TRUE(lossy.changes_trained_model);
  EXPECT_TRUE(lossy.needs_lossy_layers);
  // What the demo builds from the entry is the callback the config describes.
  const auto built = std::dynamic_pointer_cast<LossySparsifierCallback>(lossy.make());
  ASSERT_NE(built, nullptr);
  EXPECT_EQ(built->options().eval_batch_size(), 64);
  EXPECT_EQ(built->options().sharpness_factor(), 3.0);
}

TEST(RunConfig, TrainingAwareWithoutApplyToModelKeepsTheTrainedModel) {
  const RunConfig config = parse(
      "callbacks:\n"
      "  - type: TrainingAwareDataSparsity\n"
      "    sparsifier: {type: DataNormSparsifier}\n"
      "    scheduler: {type: CubicSLScheduler}\n");
  ASSERT_EQ(config.callbacks.size(), 1u);
  EXPECT_EQ(config.callbacks[0].resolved.get<bool>("apply_to_model"), false);
  EXPECT_EQ(config.callbacks[0].resolved.get<int64_t>("update_every_n_steps"), 0);
  EXPECT_FALSE(config.callbacks[0].changes_trained_model);
}

TEST(RunConfig, DefaultNamesAppendASuffixForRepeatedTypes) {
  const std::string post = "  - type: PostTrainingDataSparsity\n    sparsifier: {type: DataNormSparsifier}\n";
  const std::string aware =
      "  - type: TrainingAwareDataSparsity\n"
      "    sparsifier: {type: DataNormSparsifier}\n"
      "    scheduler: {type: CubicSLScheduler}\n";
  const RunConfig config = parse("callbacks:\n" + post + post + aware + post + aware);
  std::vector<std::string> names;
  for (const auto& c : config.callbacks) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"PostTrainingDataSparsity", "PostTrainingDataSparsity_2",
                                             "TrainingAwareDataSparsity", "PostTrainingDataSparsity_3",
                                             "TrainingAwareDataSparsity_2"}));
}

TEST(RunConfig, DefaultNamesSkipTheNamesGiven) {
  const std::string post = "  - type: PostTrainingDataSparsity\n    sparsifier: {type: DataNormSparsifier}\n";
  const RunConfig config = parse("callbacks:\n" + post +
                                 "  - type: PostTrainingDataSparsity\n"
                                 "    name: PostTrainingDataSparsity_2\n"
                                 "    sparsifier: {type: DataNormSparsifier}\n" +
                                 post);
  std::vector<std::string> names;
  for (const auto& c : config.callbacks) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"PostTrainingDataSparsity", "PostTrainingDataSparsity_2",
                                             "PostTrainingDataSparsity_3"}));
}

// ---------------------------------------------------------------------------
// 1. YAML syntax, files, the top level.

TEST(RunConfigErrors, InvalidYamlGivesThePositionOfTheParser) {
  expect_error(parse_error("seed: 1\ndata: x: y\n"), "run.yaml:2:8: invalid YAML: ", {"illegal map value"});
  expect_error(parse_error("seed: 1\n  bad: 2\n"), "run.yaml:2:6: invalid YAML: ", {"illegal map value"});
  // An unclosed flow collection is found at the end of the text.
  expect_error(parse_error("trainer:\n  epochs: [1, 2\n"), "run.yaml:3:1: invalid YAML: ",
               {"end of sequence flow not found"});
  expect_error(parse_error("seed: 1\ntrainer: {epochs: 2\n"), "run.yaml:3:1: invalid YAML: ",
               {"end of map flow not found"});
}

TEST(RunConfigErrors, EmptyConfigIsAnError) {
  expect_error(parse_error(""), "run.yaml: ", {"empty", "expected a mapping", "trainer"});
  expect_error(parse_error("# nothing but a comment\n"), "run.yaml: ", {"empty"});
}

TEST(RunConfigErrors, TopLevelMustBeAMapping) {
  expect_error(parse_error("- seed: 1\n- trainer: {}\n"), "run.yaml:1:1: ", {"expected a mapping of sections", "a list"});
  expect_error(parse_error("just text\n"), "run.yaml:1:1: ", {"expected a mapping of sections", "'just text'"});
}

TEST(RunConfigErrors, MissingOrUnreadableFileNamesThePath) {
  const fs::path dir = sparsity::testing::scratch_dir("RunConfigMissingFile");
  const std::string missing = (dir / "missing.yaml").string();
  expect_error(error_of<ConfigError>([&] { load_run_config(missing); }), missing + ": ",
               {"cannot read the run config", "No such file"});
  expect_error(error_of<ConfigError>([&] { load_run_config(dir.string()); }), dir.string() + ": ",
               {"is a directory"});
}

TEST(RunConfig, LoadsAFileWithOverridesAndNamesItInErrors) {
  const fs::path dir = sparsity::testing::scratch_dir("RunConfigLoad");
  const std::string path = (dir / "run.yaml").string();
  write_file(path, "seed: 5\ntrainer:\n  epochs: 3\n");
  const RunConfig config = load_run_config(path, {"trainer.epochs=4"});
  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.seed, 5u);
  EXPECT_EQ(config.trainer.epochs, 4);

  write_file(path, "seed: 5\ntrainer:\n  epochs: 0\n");
  expect_error(error_of<ConfigError>([&] { load_run_config(path); }), path + ":3:11: trainer.epochs: ",
               {"expected an integer >= 1, got 0"});
  write_file(path, "");
  expect_error(error_of<ConfigError>([&] { load_run_config(path); }), path + ": ", {"empty"});
}

// ---------------------------------------------------------------------------
// 2. Unknown and repeated keys.

TEST(RunConfigErrors, UnknownKeyNamesTheNearestValidOne) {
  expect_error(parse_error("trainer:\n  epoch: 3\n"), "run.yaml:2:3: trainer.epoch: ",
               {"unknown key 'epoch' in trainer (did you mean 'epochs'?); expected one of: epochs, progress, "
                "checkpoint, resume, log_level"});
}

TEST(RunConfigErrors, UnknownKeysAtEveryLevel) {
  expect_error(parse_error("seed: 1\ndat:\n  source: idx\n"), "run.yaml:2:1: dat: ",
               {"unknown key 'dat' at the top level (did you mean 'data'?)", "expected one of: seed, threads, data"});
  expect_error(parse_error("data:\n  sorce: idx\n"), "run.yaml:2:3: data.sorce: ",
               {"in data (did you mean 'source'?)"});
  expect_error(parse_error("data:\n  synthetic:\n    clases: 3\n"), "run.yaml:3:5: data.synthetic.clases: ",
               {"unknown key 'clases' in data.synthetic (did you mean 'classes'?)"});
  expect_error(parse_error("model:\n  hiden: [3]\n"), "run.yaml:2:3: model.hiden: ", {"did you mean 'hidden'?"});
  expect_error(parse_error("model:\n  lossy:\n    penalty_wieght: 1\n"), "run.yaml:3:5: model.lossy.penalty_wieght: ",
               {"did you mean 'penalty_weight'?", "expected one of: eps, a, penalty, penalty_weight, l0_b"});
  expect_error(parse_error("optimizer:\n  learning_rate: 0.1\n"), "run.yaml:2:3: optimizer.learning_rate: ",
               {"unknown key 'learning_rate' in optimizer;", "expected one of: type, lr, momentum, weight_decay"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier, arg: {}}\n"),
               "run.yaml:3:44: callbacks[0].sparsifier.arg: ", {"did you mean 'args'?", "(accepted: type, args)"});
}

TEST(RunConfigErrors, RepeatedKeysAreAnError) {
  expect_error(parse_error("trainer:\n  epochs: 3\n  progress: false\n  epochs: 4\n"), "run.yaml:4:3: trainer.epochs: ",
               {"key 'epochs' appears twice (first at line 2)"});
  expect_error(parse_error("seed: 1\nseed: 2\n"), "run.yaml:2:1: seed: ", {"appears twice"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier:\n"
                           "      type: DataNormSparsifier\n"
                           "      args: {sparsity_level: 0.5, sparsity_level: 0.6}\n"),
               "run.yaml:5:35: callbacks[0].sparsifier.args.sparsity_level: ", {"appears twice"});
}

// ---------------------------------------------------------------------------
// 3. Wrong types.

TEST(RunConfigErrors, WrongTypesSayWhatWasExpected) {
  expect_error(parse_error("trainer:\n  epochs: 3.5\n"), "run.yaml:2:11: trainer.epochs: ",
               {"expected an integer, got '3.5'"});
  expect_error(parse_error("trainer:\n  progress: yes\n"), "run.yaml:2:13: trainer.progress: ",
               {"expected true or false, got 'yes'"});
  expect_error(parse_error("trainer:\n  log_level: [info]\n"), "run.yaml:2:14: trainer.log_level: ",
               {"expected a string, got a list"});
  expect_error(parse_error("trainer:\n  epochs:\n"), "run.yaml:", {"trainer.epochs: expected an integer, got nothing"});
  expect_error(parse_error("model:\n  hidden: 64\n"), "run.yaml:2:11: model.hidden: ",
               {"expected a list of integers", "got '64'"});
  expect_error(parse_error("model:\n  hidden: [64, x]\n"), "run.yaml:2:16: model.hidden[1]: ",
               {"expected a list of integers, got 'x'"});
  expect_error(parse_error("data: 3\n"), "run.yaml:1:7: data: ", {"expected a mapping", "got '3'"});
  expect_error(parse_error("model: [mlp]\n"), "run.yaml:1:8: model: ", {"expected a mapping", "got a list"});
  expect_error(parse_error("optimizer:\n  lr: fast\n"), "run.yaml:2:7: optimizer.lr: ", {"expected a number, got 'fast'"});
  expect_error(parse_error("seed: 1.5\n"), "run.yaml:1:7: seed: ", {"expected an integer, got '1.5'"});
  expect_error(parse_error("callbacks:\n  type: PostTrainingDataSparsity\n"), "run.yaml:2:3: callbacks: ",
               {"expected a list of callbacks", "got a mapping"});
}

TEST(RunConfigErrors, QuotedScalarsAreStrings) {
  expect_error(parse_error("trainer:\n  epochs: \"3\"\n"), "run.yaml:2:11: trainer.epochs: ",
               {"expected an integer, got the quoted string '3'"});
  expect_error(parse_error("trainer:\n  resume: 'true'\n"), "run.yaml:2:11: trainer.resume: ",
               {"expected true or false"});
  // Where a string is expected, an unquoted number is its text.
  EXPECT_EQ(parse("data:\n  directory: 2024\n").data.directory, "2024");
}

// ---------------------------------------------------------------------------
// 4. Out-of-range values.

struct RangeCase {
  std::string yaml;
  std::string prefix;
  std::vector<std::string> words;
};

TEST(RunConfigErrors, OutOfRangeValuesSayWhatIsAccepted) {
  const std::vector<RangeCase> cases = {
      {"seed: -1\n", "run.yaml:1:7: seed: ", {"expected an integer >= 0, got -1"}},
      {"threads: -2\n", "run.yaml:1:10: threads: ", {"expected an integer >= 0, got -2"}},
      {"threads: 100000\n", "run.yaml:1:10: threads: ",
       {fmt::format("expected an integer <= {} (4 x the {} cores this process may use), got 100000", max_threads(),
                    available_cores())}},
      {"data:\n  source: fashon-mnist\n",
       "run.yaml:2:11: data.source: ",
       {"unknown data source 'fashon-mnist' (did you mean 'fashion-mnist'?); expected one of: fashion-mnist, idx, "
        "synthetic"}},
      {"data:\n  source: idx\n", "run.yaml:2:11: data.directory: ", {"required when source is 'idx'"}},
      {"data:\n  batch_size: 0\n", "run.yaml:2:15: data.batch_size: ", {"expected an integer >= 1, got 0"}},
      {"data:\n  validation_split: 1.0\n", "run.yaml:2:21: data.validation_split: ",
       {"expected a fraction in [0, 1), got 1.0"}},
      {"data:\n  validation_split: -0.1\n", "run.yaml:2:21: data.validation_split: ", {"in [0, 1)"}},
      {"data:\n  train_limit: -5\n", "run.yaml:2:16: data.train_limit: ", {"expected an integer >= 0, got -5"}},
      {"data:\n  synthetic:\n    classes: 10\n    train_size: 5\n", "run.yaml:4:17: data.synthetic.train_size: ",
       {"train_size (5) must be at least classes (10)"}},
      {"data:\n  synthetic:\n    classes: 4000\n", "run.yaml:3:14: data.synthetic.classes: ",
       {"train_size (2048) must be at least classes (4000)"}},
      {"data:\n  synthetic:\n    test_size: 0\n", "run.yaml:3:16: data.synthetic.test_size: ", {">= 1, got 0"}},
      {"data:\n  synthetic:\n    classes: 1\n", "run.yaml:3:14: data.synthetic.classes: ", {">= 2, got 1"}},
      {"data:\n  synthetic:\n    image_size: 3\n", "run.yaml:3:17: data.synthetic.image_size: ", {">= 4, got 3"}},
      {"data:\n  synthetic:\n    noise: -0.5\n", "run.yaml:3:12: data.synthetic.noise: ",
       {"expected a finite number >= 0, got -0.5"}},
      {"data:\n  synthetic:\n    noise: .inf\n", "run.yaml:3:12: data.synthetic.noise: ", {"finite"}},
      {"model:\n  type: rnn\n", "run.yaml:2:9: model.type: ",
       {"unknown model type 'rnn' (did you mean 'cnn'?); expected one of: mlp, cnn"}},
      {"model:\n  hidden: [64, 0]\n", "run.yaml:2:16: model.hidden[1]: ", {"expected integers >= 1, got 0"}},
      {"model:\n  channels: [0]\n", "run.yaml:2:14: model.channels[0]: ", {"expected integers >= 1, got 0"}},
      {"model:\n  blocks: 17\n", "run.yaml:2:11: model.blocks: ", {"expected an integer in [1, 16], got 17"}},
      {"model:\n  type: resnet\n  channels: []\n", "run.yaml:3:13: model.channels: ",
       {"a resnet needs at least one stage"}},
      {"model:\n  type: cnn\n  channels: []\n", "run.yaml:3:13: model.channels: ",
       {"at least one convolution", "non-empty list"}},
      {"model:\n  lossy:\n    eps: .nan\n", "run.yaml:3:10: model.lossy.eps: ", {"expected a finite number"}},
      {"model:\n  lossy:\n    a: 0\n", "run.yaml:3:8: model.lossy.a: ", {"expected a finite number > 0, got 0"}},
      {"model:\n  lossy:\n    penalty: normalised_L1\n", "run.yaml:3:14: model.lossy.penalty: ",
       {"unknown penalty 'normalised_L1' (did you mean 'normalized_L1'?); expected one of: L0, L1, L2"}},
      {"model:\n  lossy:\n    penalty_weight: -1\n", "run.yaml:3:21: model.lossy.penalty_weight: ",
       {"expected a finite number >= 0, got -1"}},
      {"model:\n  lossy:\n    l0_b: 0\n", "run.yaml:3:11: model.lossy.l0_b: ", {"expected a finite number > 0"}},
      {"optimizer:\n  type: Adam\n", "run.yaml:2:9: optimizer.type: ",
       {"unknown optimizer type 'Adam' (did you mean 'adam'?); expected one of: sgd, adam"}},
      {"optimizer:\n  lr: 0\n", "run.yaml:2:7: optimizer.lr: ", {"expected a finite number > 0, got 0"}},
      {"optimizer:\n  lr: .inf\n", "run.yaml:2:7: optimizer.lr: ", {"expected a finite number > 0"}},
      {"optimizer:\n  type: sgd\n  momentum: 1.0\n", "run.yaml:3:13: optimizer.momentum: ",
       {"expected a number in [0, 1), got 1.0"}},
      {"optimizer:\n  momentum: 0.9\n", "run.yaml:2:13: optimizer.momentum: ",
       {"momentum applies to the sgd optimizer only", "adam"}},
      {"optimizer:\n  weight_decay: -0.1\n", "run.yaml:2:17: optimizer.weight_decay: ",
       {"expected a finite number >= 0"}},
      {"trainer:\n  epochs: 0\n", "run.yaml:2:11: trainer.epochs: ", {"expected an integer >= 1, got 0"}},
      {"trainer:\n  log_level: debg\n", "run.yaml:2:14: trainer.log_level: ",
       {"unknown log level 'debg' (did you mean 'debug'?); expected one of: trace, debug, info, warn, error, off"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const std::string message = parse_error(c.yaml);
    EXPECT_EQ(message.substr(0, c.prefix.size()), c.prefix) << "message: " << message;
    for (const auto& word : c.words) EXPECT_CONTAINS(message, word);
  }
}

TEST(RunConfig, BoundaryValuesAreAccepted) {
  const RunConfig config = parse(
      "seed: 0\n"
      "data: {source: synthetic, batch_size: 1, validation_split: 0.99, train_limit: 0,\n"
      "       synthetic: {train_size: 2, test_size: 1, classes: 2, image_size: 4, noise: 0}}\n"
      "model: {type: mlp, hidden: [], channels: []}\n"
      "optimizer: {type: sgd, momentum: 0, weight_decay: 0}\n"
      "trainer: {epochs: 1}\n");
  EXPECT_EQ(config.data.synthetic.train_size, 2);
  EXPECT_TRUE(config.model.channels.empty());
  EXPECT_EQ(config.optimizer.momentum, 0.0);
  // A momentum of 0 is allowed with adam too.
  EXPECT_EQ(parse("optimizer: {type: adam, momentum: 0.0}\n").optimizer.momentum, 0.0);
}

// ---------------------------------------------------------------------------
// 5. Callbacks.

TEST(RunConfigCallbacks, TypeIsRequiredAndMustBeKnown) {
  expect_error(parse_error("callbacks:\n  - name: x\n"), "run.yaml:2:5: callbacks[0]: ",
               {"missing key 'type'", "LossySparsifierCallback, PostTrainingDataSparsity, TrainingAwareDataSparsity"});
  expect_error(parse_error("callbacks:\n  - type: PostTrainingSparsity\n"), "run.yaml:2:11: callbacks[0].type: ",
               {"unknown callback type 'PostTrainingSparsity' (did you mean 'PostTrainingDataSparsity'?)",
                "expected one of: LossySparsifierCallback, PostTrainingDataSparsity, TrainingAwareDataSparsity"});
  expect_error(parse_error("callbacks:\n  - PostTrainingDataSparsity\n"), "run.yaml:2:5: callbacks[0]: ",
               {"expected a callback: a mapping with a 'type' key", "got 'PostTrainingDataSparsity'"});
}

TEST(RunConfigCallbacks, KeysOfAnotherTypeAreUnknownToThisOne) {
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier}\n"
                           "    scheduler: {type: CubicSLScheduler}\n"),
               "run.yaml:4:5: callbacks[0].scheduler: ",
               {"PostTrainingDataSparsity: unknown argument 'scheduler' (accepted: sparsifier, name, fine_tune_epochs, include, exclude)"});
  expect_error(parse_error("model: {lossy: {}}\n"
                           "callbacks:\n"
                           "  - type: LossySparsifierCallback\n"
                           "    include: '*'\n"),
               "run.yaml:4:5: callbacks[0].include: ",
               {"LossySparsifierCallback: unknown argument 'include' (accepted: name, sharpness_factor"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier}\n"
                           "    sharpness_factor: 2\n"),
               "run.yaml:4:5: callbacks[0].sharpness_factor: ",
               {"PostTrainingDataSparsity: unknown argument 'sharpness_factor'"});
}

TEST(RunConfigCallbacks, UnknownKeyNamesTheNearestValidOne) {
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifer: {type: DataNormSparsifier}\n"),
               "run.yaml:3:5: callbacks[0].sparsifer: ",
               {"unknown argument 'sparsifer' (did you mean 'sparsifier'?)"});
}

TEST(RunConfigCallbacks, SparsifierAndSchedulerAreRequired) {
  expect_error(parse_error("callbacks:\n  - type: PostTrainingDataSparsity\n    name: x\n"), "run.yaml:2:5: callbacks[0]: ",
               {"missing key 'sparsifier'", "DataNormSparsifier"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: TrainingAwareDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier}\n"),
               "run.yaml:2:5: callbacks[0]: ", {"missing key 'scheduler'", "CubicSLScheduler"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: DataNormSparsifier\n"),
               "run.yaml:3:17: callbacks[0].sparsifier: ",
               {"expected a mapping {type: DataNormSparsifier, args: {...}}, got string 'DataNormSparsifier'"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {args: {}}\n"),
               "run.yaml:3:17: callbacks[0].sparsifier: ", {"missing key 'type'", "DataNormSparsifier"});
}

TEST(RunConfigCallbacks, UnknownSparsifierOrSchedulerTypeIsLocatedAtTheType) {
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifer}\n"),
               "run.yaml:3:24: callbacks[0].sparsifier.type: ",
               {"unknown data sparsifier type 'DataNormSparsifer' (did you mean 'DataNormSparsifier'?)",
                "expected one of: DataNormSparsifier"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: TrainingAwareDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier}\n"
                           "    scheduler:\n"
                           "      type: CubicScheduler\n"),
               "run.yaml:5:13: callbacks[0].scheduler.type: ",
               {"unknown data scheduler type 'CubicScheduler' (did you mean 'CubicSLScheduler'?)"});
}

TEST(RunConfigCallbacks, BadSparsifierArgumentsAreLocatedAtTheArgument) {
  const std::string head =
      "callbacks:\n"
      "  - type: PostTrainingDataSparsity\n"
      "    sparsifier:\n"
      "      type: DataNormSparsifier\n"
      "      args:\n"
      "        norm: L1\n";
  expect_error(parse_error(head + "        sparse_block_shape: [0, 4]\n"),
               "run.yaml:7:29: callbacks[0].sparsifier.args.sparse_block_shape: ",
               {"invalid arguments for the DataNormSparsifier data sparsifier", "sparse_block_shape must be",
                "[0, 4]"});
  expect_error(parse_error(head + "        sparsty_level: 0.5\n"),
               "run.yaml:7:9: callbacks[0].sparsifier.args.sparsty_level: ",
               {"unknown argument 'sparsty_level' (did you mean 'sparsity_level'?)"});
  expect_error(parse_error(head + "        sparsity_level: 1.5\n"),
               "run.yaml:7:25: callbacks[0].sparsifier.args.sparsity_level: ",
               {"expected a sparsity level in [0, 1], got 1.5"});
  expect_error(parse_error(head + "        sparsity_level: high\n"),
               "run.yaml:7:25: callbacks[0].sparsifier.args.sparsity_level: ", {"sparsity_level", "expected double"});
  expect_error(parse_error(head + "        zeros_per_block: 99\n"),
               "run.yaml:7:26: callbacks[0].sparsifier.args.zeros_per_block: ",
               {"zeros_per_block must be between 0 and the block size"});
  expect_error(parse_error(head + "        sparse_block_shape: [1, x]\n"),
               "run.yaml:7:33: callbacks[0].sparsifier.args.sparse_block_shape[1]: ",
               {"list items must be integers, as the first one is, got 'x'"});
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier, args: [0.5]}\n"),
               "run.yaml:3:50: callbacks[0].sparsifier.args: ",
               {"expected a mapping of arguments (name: value) as sparsifier.args, got string list '[0.5]'"});
  // The norm is found by name in the message of the sparsifier.
  expect_error(parse_error("callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    sparsifier: {type: DataNormSparsifier, args: {sparsity_level: 0.5, norm: L3}}\n"),
               "run.yaml:3:78: callbacks[0].sparsifier.args.norm: ", {"unknown norm 'L3'"});
}

TEST(RunConfigCallbacks, BadSchedulerArgumentsAreLocatedAtTheArgument) {
  const std::string head =
      "callbacks:\n"
      "  - type: TrainingAwareDataSparsity\n"
      "    sparsifier: {type: DataNormSparsifier}\n"
      "    scheduler:\n"
      "      type: CubicSLScheduler\n";
  expect_error(parse_error(head + "      args: {total_t: 0}\n"), "run.yaml:6:23: callbacks[0].scheduler.args.total_t: ",
               {"invalid arguments for the CubicSLScheduler data scheduler", "total_t must be >= 1, got 0"});
  expect_error(parse_error(head + "      args: {total_steps: 10}\n"),
               "run.yaml:6:14: callbacks[0].scheduler.args.total_steps: ", {"unknown argument 'total_steps'"});
}

TEST(RunConfigCallbacks, DataSparsityOptionsAreChecked) {
  const std::string head =
      "callbacks:\n"
      "  - type: TrainingAwareDataSparsity\n"
      "    sparsifier: {type: DataNormSparsifier}\n"
      "    scheduler: {type: CubicSLScheduler}\n";
  expect_error(parse_error(head + "    update_every_n_steps: -1\n"),
               "run.yaml:5:27: callbacks[0].update_every_n_steps: ", {"update_every_n_steps must be >= 0, got -1"});
  expect_error(parse_error(head + "    apply_to_model: 1\n"), "run.yaml:5:21: callbacks[0].apply_to_model: ",
               {"'apply_to_model': expected bool, got int (1)"});
  expect_error(parse_error(head + "    include: ['*weight', {a: b}]\n"), "run.yaml:5:26: callbacks[0].include[1]: ",
               {"list items must be integers or strings, got a nested mapping"});
  expect_error(parse_error(head + "    exclude: ''\n"), "run.yaml:5:14: callbacks[0].exclude: ",
               {"expected a parameter name pattern, got an empty string"});
}

TEST(RunConfigCallbacks, LossyCallbackOptionsAreChecked) {
  const std::string head =
      "model:\n"
      "  lossy: {penalty: L1}\n"
      "callbacks:\n"
      "  - type: LossySparsifierCallback\n";
  expect_error(parse_error(head + "    sharpness_factor: 0\n"), "run.yaml:5:23: callbacks[0].sharpness_factor: ",
               {"LossySparsifierCallback: sharpness_factor must be finite and > 0, got 0"});
  expect_error(parse_error(head + "    sharpness_period: 1\n    convert_to_hard: maybe\n"),
               "run.yaml:6:22: callbacks[0].convert_to_hard: ", {"convert_to_hard", "expected bool"});
  expect_error(parse_error(head + "    eval_batch_size: 0\n"), "run.yaml:5:22: callbacks[0].eval_batch_size: ",
               {"eval_batch_size must be >= 1"});
}

TEST(RunConfigCallbacks, NamesMustBeValidUniqueAndNotDense) {
  const std::string post = "  - type: PostTrainingDataSparsity\n    sparsifier: {type: DataNormSparsifier}\n";
  expect_error(parse_error("callbacks:\n" + post + "    name: a b\n"), "run.yaml:4:11: callbacks[0].name: ",
               {"invalid callback name 'a b'", "letters, digits, '_', '.' and '-'"});
  expect_error(parse_error("callbacks:\n" + post + "    name: ..\n"), "run.yaml:4:11: callbacks[0].name: ",
               {"invalid callback name '..'"});
  expect_error(parse_error("callbacks:\n" + post + "    name: dense\n"), "run.yaml:4:11: callbacks[0].name: ",
               {"'dense' is reserved"});
  expect_error(parse_error("callbacks:\n" + post + "    name: same\n" + post + "    name: same\n"),
               "run.yaml:7:11: callbacks[1].name: ", {"the name 'same' is already used by callbacks[0]", "unique"});
  EXPECT_EQ(parse("callbacks:\n" + post + "    name: my-run_1.b\n").callbacks[0].name, "my-run_1.b");
}

TEST(RunConfigCallbacks, LossyCallbackAndLossyLayersGoTogether) {
  expect_error(parse_error("callbacks:\n  - type: LossySparsifierCallback\n"), "run.yaml:2:11: callbacks[0].type: ",
               {"a LossySparsifierCallback needs lossy sparsifier layers in the model", "model.lossy"});
  expect_error(parse_error("model:\n  lossy: {penalty: L1}\n"), "run.yaml:2:10: model.lossy: ",
               {"lossy sparsifier layers need a LossySparsifierCallback", "callbacks"});
  expect_error(parse_error("model:\n  lossy: {penalty: L1}\n" + kPostTraining), "run.yaml:2:10: model.lossy: ",
               {"need a LossySparsifierCallback"});
  expect_error(parse_error("model:\n"
                           "  lossy: {}\n"
                           "callbacks:\n"
                           "  - type: LossySparsifierCallback\n"
                           "  - type: LossySparsifierCallback\n"),
               "run.yaml:5:11: callbacks[1].type: ",
               {"only one callback may drive the model's lossy sparsifier layers (callbacks[0] is a "
                "LossySparsifierCallback already)"});
}

// ---------------------------------------------------------------------------
// 6. Overrides.

TEST(RunConfigOverrides, SetScalarsListsAndNestedKeys) {
  const RunConfig config = parse(kPostTraining, {"trainer.epochs=2", "model.hidden=[64, 32]", "seed=9",
                                                 "data.synthetic.classes=3", "optimizer.type=sgd",
                                                 "optimizer.momentum=0.5", "trainer.log_level=debug"});
  EXPECT_EQ(config.trainer.epochs, 2);
  EXPECT_EQ(config.model.hidden, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(config.seed, 9u);
  EXPECT_EQ(config.data.synthetic.classes, 3);  // `data` was absent: created on the way
  EXPECT_EQ(config.optimizer.type, "sgd");
  EXPECT_EQ(config.optimizer.momentum, 0.5);
  EXPECT_EQ(config.trainer.log_level, "debug");
  EXPECT_TRUE(parse("model: {hidden: [3]}\n", {"model.hidden=[]"}).model.hidden.empty());
}

TEST(RunConfigOverrides, IndexListsWithNumbersOrBrackets) {
  const RunConfig config = parse(kPostTraining, {"callbacks.0.sparsifier.args.sparsity_level=0.9",
                                                 "callbacks[0].name=first", "callbacks[0].include=[\"*weight\"]",
                                                 "callbacks.0.sparsifier.args.norm=L2"});
  ASSERT_EQ(config.callbacks.size(), 1u);
  const Config args = config.callbacks[0].resolved.get<Config>("sparsifier").get<Config>("args");
  EXPECT_EQ(args.get<double>("sparsity_level"), 0.9);
  EXPECT_EQ(args.get<std::string>("norm"), "L2");
  EXPECT_EQ(config.callbacks[0].name, "first");
  EXPECT_EQ(config.callbacks[0].resolved.get<ConfigValue::StringList>("include"),
            (std::vector<std::string>{"*weight"}));
  // The args mapping is created when absent.
  const RunConfig created = parse(
      "callbacks:\n  - type: PostTrainingDataSparsity\n    sparsifier: {type: DataNormSparsifier}\n",
      {"callbacks.0.sparsifier.args.sparsity_level=0.25"});
  EXPECT_EQ(created.callbacks[0].resolved.get<Config>("sparsifier").get<Config>("args"),
            (Config{{"sparsity_level", 0.25}}));
}

TEST(RunConfigOverrides, ReplaceWholeSectionsAndTheLastOneWins) {
  const RunConfig config = parse("trainer: {epochs: 7}\n", {"trainer.epochs=2", "trainer.epochs=3",
                                                             "optimizer={type: sgd, momentum: 0.9}"});
  EXPECT_EQ(config.trainer.epochs, 3);
  EXPECT_EQ(config.optimizer.type, "sgd");
  EXPECT_EQ(config.optimizer.momentum, 0.9);
  const std::string list =
      "callbacks=[{type: PostTrainingDataSparsity, sparsifier: {type: DataNormSparsifier}}]";
  const RunConfig replaced = parse(kPostTraining + "  - type: PostTrainingDataSparsity\n"
                                                   "    sparsifier: {type: DataNormSparsifier}\n",
                                   {list});
  ASSERT_EQ(replaced.callbacks.size(), 1u);
  EXPECT_EQ(replaced.callbacks[0].location, "override '" + list + "'");
  EXPECT_TRUE(parse(kPostTraining, {"callbacks=[]"}).callbacks.empty());
}

TEST(RunConfigOverrides, MalformedOverridesAreErrors) {
  const std::string file = "trainer:\n  epochs: 5\n" + kPostTraining;
  expect_error(parse_error(file, {"trainer.epochs"}), "override 'trainer.epochs': ", {"expected KEY=VALUE"});
  expect_error(parse_error(file, {"=3"}), "override '=3': ", {"the key before '=' is empty"});
  expect_error(parse_error(file, {"trainer..epochs=3"}), "override 'trainer..epochs=3': ", {"empty key"});
  expect_error(parse_error(file, {"trainer.=3"}), "override 'trainer.=3': ", {"empty key"});
  expect_error(parse_error(file, {"callbacks.3.name=x"}), "override 'callbacks.3.name=x': ",
               {"index 3 is out of range: 'callbacks' has 1 entry"});
  expect_error(parse_error(file, {"callbacks[1].name=x"}), "override 'callbacks[1].name=x': ", {"out of range"});
  expect_error(parse_error(file, {"callbacks[x].name=a"}), "override 'callbacks[x].name=a': ",
               {"the list index 'x' is not a non-negative integer"});
  expect_error(parse_error(file, {"callbacks[0.name=a"}), "override 'callbacks[0.name=a': ", {"missing ']'"});
  expect_error(parse_error(file, {"callbacks.first.name=x"}), "override 'callbacks.first.name=x': ",
               {"'callbacks' is a list: index it with a number"});
  expect_error(parse_error(file, {"trainer.epochs.value=1"}), "override 'trainer.epochs.value=1': ",
               {"cannot set 'trainer.epochs.value': 'trainer.epochs' is the value '5', not a mapping or a list"});
  expect_error(parse_error(file, {"trainer[0]=1"}), "override 'trainer[0]=1': ",
               {"'trainer' is a mapping, not a list"});
  expect_error(parse_error(file, {"model.hidden=[1,"}), "override 'model.hidden=[1,': ",
               {"the value is not valid YAML"});
}

TEST(RunConfigOverrides, LaterErrorsNameTheOverride) {
  expect_error(parse_error("trainer:\n  epochs: 5\n", {"trainer.epochs=0"}), "override 'trainer.epochs=0': trainer.epochs: ",
               {"expected an integer >= 1, got 0"});
  expect_error(parse_error("seed: 1\n", {"trainer.epoch=3"}), "override 'trainer.epoch=3': trainer.epoch: ",
               {"unknown key 'epoch' in trainer (did you mean 'epochs'?)"});
  expect_error(parse_error("seed: 1\n", {"trainr.epochs=2"}), "override 'trainr.epochs=2': trainr: ",
               {"unknown key 'trainr' at the top level (did you mean 'trainer'?)"});
  expect_error(parse_error("seed: 1\n", {"model={type: mlp, hidden: [0]}"}),
               "override 'model={type: mlp, hidden: [0]}': model.hidden[0]: ", {"expected integers >= 1, got 0"});
  expect_error(parse_error(kPostTraining, {"callbacks.0.sparsifier.args.sparsity_level=1.5"}),
               "override 'callbacks.0.sparsifier.args.sparsity_level=1.5': callbacks[0].sparsifier.args.sparsity_level: ",
               {"expected a sparsity level in [0, 1]"});
  expect_error(parse_error(kPostTraining, {"callbacks.0.sparsifier.type=Nope"}),
               "override 'callbacks.0.sparsifier.type=Nope': callbacks[0].sparsifier.type: ",
               {"unknown data sparsifier type 'Nope'"});
  // Mistakes in the file keep their position when overrides are given.
  expect_error(parse_error("trainer:\n  epochs: 0\n", {"seed=3"}), "run.yaml:2:11: trainer.epochs: ",
               {"expected an integer >= 1"});
  expect_error(parse_error("trainer:\n  epochs: 2\n  progres: true\n", {"trainer.epochs=3"}),
               "run.yaml:3:3: trainer.progres: ", {"did you mean 'progress'?"});
}

// ---------------------------------------------------------------------------
// 7. The resolved config as YAML.

const std::string kRichConfig =
    "seed: 7\n"
    "threads: 2\n"
    "data:\n"
    "  source: idx\n"
    "  directory: /tmp/my data\n"
    "  batch_size: 32\n"
    "  validation_split: 0.25\n"
    "  train_limit: 1000\n"
    "  synthetic: {train_size: 100, test_size: 20, classes: 3, image_size: 6, noise: 0.125}\n"
    "model:\n"
    "  type: cnn\n"
    "  hidden: []\n"
    "  channels: [8]\n"
    "  lossy: {eps: 0.01, a: 2, penalty: normalized_L0, penalty_weight: 0.5, l0_b: 0.001}\n"
    "optimizer: {type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1e-4}\n"
    "trainer: {epochs: 3, progress: false, checkpoint: false, resume: true, log_level: debug}\n"
    "callbacks:\n"
    "  - type: PostTrainingDataSparsity\n"
    "    sparsifier:\n"
    "      type: DataNormSparsifier\n"
    "      args: {sparsity_level: 0.75, sparse_block_shape: [1, 4], zeros_per_block: 2, norm: L2}\n"
    "    include: '*weight'\n"
    "    exclude: ['*bias', '0.*']\n"
    "  - type: TrainingAwareDataSparsity\n"
    "    name: aware-1.x\n"
    "    sparsifier: {type: DataNormSparsifier}\n"
    "    scheduler: {type: CubicSLScheduler, args: {init_sl: 0.0, total_t: 5, initially_zero: true}}\n"
    "    apply_to_model: true\n"
    "    update_every_n_steps: 10\n"
    "  - type: LossySparsifierCallback\n"
    "    sharpness_factor: 1.5\n"
    "    convert_to_hard: false\n"
    "  - type: PostTrainingDataSparsity\n"
    "    sparsifier: {type: DataNormSparsifier, args: {sparsity_level: 1}}\n";

TEST(RunConfigYaml, RoundTripOfARichConfig) {
  const RunConfig config = parse(kRichConfig);
  const std::string text = to_yaml_text(config);
  const RunConfig back = parse_run_config(text, "resolved.yaml");
  EXPECT_EQ(to_yaml_text(back), text);

  EXPECT_EQ(back.seed, 7u);
  EXPECT_EQ(back.data.directory, "/tmp/my data");
  EXPECT_EQ(back.data.synthetic.noise, 0.125);
  EXPECT_EQ(back.model.channels, (std::vector<int64_t>{8}));
  ASSERT_TRUE(back.model.lossy.has_value());
  EXPECT_EQ(back.model.lossy->penalty, "normalized_L0");
  EXPECT_EQ(back.model.lossy->l0_b, 0.001);
  EXPECT_EQ(back.optimizer.weight_decay, 1e-4);
  EXPECT_TRUE(back.trainer.resume);
  ASSERT_EQ(back.callbacks.size(), config.callbacks.size());
  for (size_t i = 0; i < config.callbacks.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(back.callbacks[i].type, config.callbacks[i].type);
    EXPECT_EQ(back.callbacks[i].name, config.callbacks[i].name);
    EXPECT_EQ(back.callbacks[i].resolved, config.callbacks[i].resolved);
    EXPECT_EQ(back.callbacks[i].changes_trained_model, config.callbacks[i].changes_trained_model);
  }
  EXPECT_EQ(back.callbacks[3].name, "PostTrainingDataSparsity_2");
  // Types survive: 0.0 stays a double, true a bool.
  const Config scheduler_args = back.callbacks[1].resolved.get<Config>("scheduler").get<Config>("args");
  EXPECT_STREQ(scheduler_args.at("init_sl").type_name(), "double");
  EXPECT_STREQ(scheduler_args.at("initially_zero").type_name(), "bool");
}

TEST(RunConfigYaml, ResolvedTextHasEveryKeyWithItsDefault) {
  const std::string text = to_yaml_text(parse("seed: 1\n" + kPostTraining));
  const YAML::Node node = YAML::Load(text);
  for (const char* section : {"seed", "threads", "data", "model", "optimizer", "trainer", "callbacks"}) {
    EXPECT_TRUE(node[section]) << section << " missing in\n" << text;
  }
  EXPECT_EQ(node["data"].size(), 6u) << text;
  EXPECT_EQ(node["data"]["synthetic"].size(), 5u) << text;
  EXPECT_EQ(node["data"]["directory"].as<std::string>(), "");
  EXPECT_EQ(node["model"].size(), 4u) << text;  // type, hidden, channels, blocks; no lossy section
  EXPECT_EQ(node["optimizer"].size(), 4u) << text;
  EXPECT_EQ(node["trainer"].size(), 5u) << text;
  EXPECT_EQ(node["trainer"]["log_level"].as<std::string>(), "info");
  EXPECT_EQ(node["data"]["validation_split"].as<double>(), 0.1);
  ASSERT_EQ(node["callbacks"].size(), 1u);
  const YAML::Node post = node["callbacks"][0];
  EXPECT_EQ(post["name"].as<std::string>(), "PostTrainingDataSparsity");
  EXPECT_TRUE(post["include"].IsSequence());
  EXPECT_FALSE(post["scheduler"]) << text;
  EXPECT_FALSE(post["apply_to_model"]) << text;
  EXPECT_FALSE(post["sharpness_factor"]) << text;
  EXPECT_EQ(parse_run_config(text, "resolved.yaml").callbacks[0].resolved.get<Config>("sparsifier").get<Config>("args"),
            (Config{{"sparsity_level", 0.5}}));
  EXPECT_EQ(to_yaml_text(parse_run_config(text, "resolved.yaml")), text);
}

TEST(RunConfigYaml, DefaultConfigRoundTrips) {
  const std::string text = to_yaml_text(RunConfig{});
  const RunConfig back = parse_run_config(text, "resolved.yaml");
  EXPECT_EQ(to_yaml_text(back), text);
  EXPECT_EQ(back.model.hidden, RunConfig{}.model.hidden);
  EXPECT_TRUE(back.callbacks.empty());
}

TEST(RunConfigYaml, LossyCallbackGetsItsOptionsOnly) {
  const std::string text = to_yaml_text(parse("model: {lossy: {}}\ncallbacks:\n  - type: LossySparsifierCallback\n"));
  const YAML::Node node = YAML::Load(text);
  EXPECT_EQ(node["model"]["lossy"].size(), 5u) << text;
  const YAML::Node lossy = node["callbacks"][0];
  EXPECT_EQ(lossy.size(), 7u) << text;  // type, name and the five options
  EXPECT_EQ(lossy["sharpness_factor"].as<double>(), 2.0);
  EXPECT_EQ(lossy["eval_batch_size"].as<int64_t>(), 256);
  EXPECT_FALSE(lossy["sparsifier"]) << text;
  EXPECT_FALSE(lossy["include"]) << text;
  EXPECT_EQ(to_yaml_text(parse_run_config(text, "resolved.yaml")), text);
}

TEST(RunConfigYaml, StringsThatLookLikeOtherValuesSurvive) {
  const RunConfig config = parse("data: {source: idx, directory: 'null'}\n" + kPostTraining,
                                 {"callbacks.0.name=\"123\"", "callbacks.0.sparsifier.args.norm=L1"});
  const std::string text = to_yaml_text(config);
  const RunConfig back = parse_run_config(text, "resolved.yaml");
  EXPECT_EQ(back.data.directory, "null");
  EXPECT_EQ(back.callbacks[0].name, "123");
  EXPECT_EQ(to_yaml_text(back), text);
}

// The configs shipped in configs/ must all be valid.
TEST(RunConfig, ShippedConfigsParse) {
  const fs::path dir = fs::path(SPARSITY_SOURCE_DIR) / "configs";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    names.insert(entry.path().filename().string());
    SCOPED_TRACE(entry.path().string());
    try {
      const RunConfig config = load_run_config(entry.path().string());
      EXPECT_EQ(config.source, entry.path().string());
      EXPECT_EQ(to_yaml_text(parse_run_config(to_yaml_text(config), "resolved.yaml")), to_yaml_text(config));
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
  for (const char* expected :
       {"default.yaml", "post_training.yaml", "two_of_four.yaml", "lossy_activations.yaml", "synthetic.yaml"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected << " is missing from " << dir;
  }
}

}  // namespace
}  // namespace sparsity::demo
