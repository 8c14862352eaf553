// The field tables of the run config (run_config_sections.h) drive reading,
// writing and the accepted keys: every key of every table is written by
// to_yaml_text, in table order, read back to the same value, and listed in
// the section's unknown-key message.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "../core/test_support.h"
#include "run_config.h"
#include "run_config_sections.h"

namespace sparsity::demo {
namespace {

using sparsity::testing::error_of;

std::vector<std::string> keys_of(const YAML::Node& mapping) {
  std::vector<std::string> keys;
  for (const auto& entry : mapping) keys.push_back(entry.first.Scalar());
  return keys;
}

/// A value other than the default for every key of every table.
const char* const kEveryKey = R"(seed: 7
threads: 1
data:
  source: synthetic
  directory: /tmp/nowhere
  batch_size: 32
  validation_split: 0.25
  train_limit: 100
  synthetic: {train_size: 64, test_size: 16, classes: 3, image_size: 6, noise: 0.25}
model:
  type: cnn
  hidden: [12]
  channels: [4, 8]
  blocks: 3
  lossy: {eps: 0.5, a: 2, penalty: L2, penalty_weight: 0.5, l0_b: 0.001}
optimizer: {type: sgd, lr: 0.5, momentum: 0.5, weight_decay: 0.25}
trainer: {epochs: 2, progress: false, checkpoint: false, resume: true, log_level: warn}
callbacks:
  - type: LossySparsifierCallback
sensitivity: {levels: [0.25, 0.75], target: 0.5, examples: 10}
)";

TEST(RunConfigTable, EveryTableKeyIsWrittenInTableOrder) {
  const YAML::Node written = YAML::Load(to_yaml_text(parse_run_config(kEveryKey, "every.yaml")));
  EXPECT_EQ(keys_of(written), detail::run_config_table().keys());
  EXPECT_EQ(keys_of(written["data"]), detail::data_table().keys());
  EXPECT_EQ(keys_of(written["data"]["synthetic"]), detail::synthetic_table().keys());
  EXPECT_EQ(keys_of(written["model"]), detail::model_table().keys());
  EXPECT_EQ(keys_of(written["model"]["lossy"]), detail::lossy_table().keys());
  EXPECT_EQ(keys_of(written["optimizer"]), detail::optimizer_table().keys());
  EXPECT_EQ(keys_of(written["trainer"]), detail::trainer_table().keys());
  EXPECT_EQ(keys_of(written["sensitivity"]), detail::sensitivity_table().keys());
  // The test config sets every key: a new row needs a value here too.
  const YAML::Node given = YAML::Load(kEveryKey);
  EXPECT_EQ(keys_of(given), keys_of(written));
  for (const char* section : {"data", "model", "optimizer", "trainer", "sensitivity"}) {
    EXPECT_EQ(keys_of(given[section]), keys_of(written[section])) << section;
  }
  EXPECT_EQ(keys_of(given["data"]["synthetic"]), keys_of(written["data"]["synthetic"]));
  EXPECT_EQ(keys_of(given["model"]["lossy"]), keys_of(written["model"]["lossy"]));
}

TEST(RunConfigTable, EveryTableKeyIsReadBack) {
  const RunConfig c = parse_run_config(to_yaml_text(parse_run_config(kEveryKey, "every.yaml")), "resolved.yaml");
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.data.source, "synthetic");
  EXPECT_EQ(c.data.directory, "/tmp/nowhere");
  EXPECT_EQ(c.data.batch_size, 32);
  EXPECT_EQ(c.data.validation_split, 0.25);
  EXPECT_EQ(c.data.train_limit, 100);
  EXPECT_EQ(c.data.synthetic.train_size, 64);
  EXPECT_EQ(c.data.synthetic.test_size, 16);
  EXPECT_EQ(c.data.synthetic.classes, 3);
  EXPECT_EQ(c.data.synthetic.image_size, 6);
  EXPECT_EQ(c.data.synthetic.noise, 0.25);
  EXPECT_EQ(c.model.type, "cnn");
  EXPECT_EQ(c.model.hidden, (std::vector<int64_t>{12}));
  EXPECT_EQ(c.model.channels, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c.model.blocks, 3);
  ASSERT_TRUE(c.model.lossy.has_value());
  EXPECT_EQ(c.model.lossy->eps, 0.5);
  EXPECT_EQ(c.model.lossy->a, 2.0);
  EXPECT_EQ(c.model.lossy->penalty, "L2");
  EXPECT_EQ(c.model.lossy->penalty_weight, 0.5);
  EXPECT_EQ(c.model.lossy->l0_b, 0.001);
  EXPECT_EQ(c.optimizer.type, "sgd");
  EXPECT_EQ(c.optimizer.lr, 0.5);
  EXPECT_EQ(c.optimizer.momentum, 0.5);
  EXPECT_EQ(c.optimizer.weight_decay, 0.25);
  EXPECT_EQ(c.trainer.epochs, 2);
  EXPECT_FALSE(c.trainer.progress);
  EXPECT_FALSE(c.trainer.checkpoint);
  EXPECT_TRUE(c.trainer.resume);
  EXPECT_EQ(c.trainer.log_level, "warn");
  ASSERT_EQ(c.callbacks.size(), 1u);
  EXPECT_EQ(c.callbacks[0].type, "LossySparsifierCallback");
  ASSERT_TRUE(c.sensitivity.has_value());
  EXPECT_EQ(c.sensitivity->levels, (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(c.sensitivity->target, 0.5);
  EXPECT_EQ(c.sensitivity->examples, 10);
  // Absent: no analysis, and nothing written.
  const RunConfig without = parse_run_config("seed: 1\n", "plain.yaml");
  EXPECT_FALSE(without.sensitivity.has_value());
  EXPECT_FALSE(YAML::Load(to_yaml_text(without))["sensitivity"].IsDefined());
}

TEST(RunConfigTable, SensitivityLevelsAreCheckedWhereWritten) {
  const auto message = [](const std::string& yaml) {
    return error_of<ConfigError>([&] { parse_run_config(yaml, "run.yaml"); });
  };
  EXPECT_NE(message("sensitivity: {levels: [0.5, 0.5]}\n").find(
                "run.yaml:1:23: sensitivity.levels: the levels must increase, got 0.5 after 0.5"),
            std::string::npos)
      << message("sensitivity: {levels: [0.5, 0.5]}\n");
  EXPECT_NE(message("sensitivity: {levels: [0.5, 0]}\n").find("sensitivity.levels[1]: expected a fraction in (0, 1], got 0"),
            std::string::npos);
  EXPECT_NE(message("sensitivity: {levels: []}\n").find("expected at least one level"), std::string::npos);
  EXPECT_NE(message("sensitivity: {target: 1.5}\n").find("sensitivity.target: expected a fraction in [0, 1], got 1.5"),
            std::string::npos);
  EXPECT_NE(message("sensitivity: {examples: 0}\n").find("sensitivity.examples"), std::string::npos);
}

TEST(RunConfigTable, UnknownKeyMessagesListTheTableKeys) {
  const auto expect_listed = [](const std::string& yaml, const std::vector<std::string>& keys) {
    const std::string message = error_of<ConfigError>([&] { parse_run_config(yaml, "run.yaml"); });
    EXPECT_NE(message.find("expected one of: " + detail::one_of(keys)), std::string::npos) << message;
  };
  expect_listed("bogus: 1\n", detail::run_config_table().keys());
  expect_listed("data: {bogus: 1}\n", detail::data_table().keys());
  expect_listed("data: {synthetic: {bogus: 1}}\n", detail::synthetic_table().keys());
  expect_listed("model: {bogus: 1}\n", detail::model_table().keys());
  expect_listed("model: {lossy: {bogus: 1}}\n", detail::lossy_table().keys());
  expect_listed("optimizer: {bogus: 1}\n", detail::optimizer_table().keys());
  expect_listed("trainer: {bogus: 1}\n", detail::trainer_table().keys());
  expect_listed("sensitivity: {bogus: 1}\n", detail::sensitivity_table().keys());
}

}  // namespace
}  // namespace sparsity::demo
