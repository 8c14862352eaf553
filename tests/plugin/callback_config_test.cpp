// The data-sparsity callbacks in their typed form, and by type name from a
// Config through the registry: both build the same callback, a Config's
// mistakes carry their key path, and to_config() reads back to itself.
#include <torch/torch.h>

#include "data_sparsity_test_support.h"

namespace sparsity {
namespace {

using testing::error_of;
using StringList = ConfigValue::StringList;

const Config kDataNorm{{"sparsity_level", 0.5}, {"sparse_block_shape", {1, 4}}};

Config component(const std::string& type, const Config& args) { return Config{{"type", type}, {"args", args}}; }

std::unique_ptr<BaseDataSparsifier> typed_sparsifier() {
  return std::make_unique<DataNormSparsifier>(DataNormSparsifierOptions().sparsity_level(0.5).sparse_block_shape({1, 4}));
}

TEST(CallbackConfig, TypedAndNamedPostTrainingSparsityGiveTheSameModel) {
  auto named = std::make_shared<PostTrainingDataSparsity>("DataNormSparsifier", kDataNorm);
  auto typed = std::make_shared<PostTrainingDataSparsity>(typed_sparsifier, PostTrainingDataSparsityOptions().name("typed"));
  testing::TrainingRun run(TrainerOptions().max_epochs(2), {named, typed});
  run.fit();
  const auto a = named->sparsified()->named_parameters();
  const auto b = typed->sparsified()->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  EXPECT_NEAR(overall_sparsity(typed->report()), 0.5, 0.01);
  // A builder has no Config form: only the options are written.
  EXPECT_EQ(typed->to_config(), (Config{{"name", "typed"},
                                        {"fine_tune_epochs", 0},
                                        {"include", StringList{}},
                                        {"exclude", StringList{}}}));
}

TEST(CallbackConfig, TypedAndNamedTrainingAwareSparsityGiveTheSameMasks) {
  auto named = std::make_shared<TrainingAwareDataSparsity>("DataNormSparsifier", kDataNorm, "CubicSLScheduler",
                                                           Config{{"total_t", 3}});
  auto typed = std::make_shared<TrainingAwareDataSparsity>(
      typed_sparsifier,
      [](BaseDataSparsifier& s) {
        return std::make_unique<CubicSLScheduler>(s, CubicSLSchedulerOptions().total_t(3));
      },
      TrainingAwareDataSparsityOptions().name("typed"));
  testing::TrainingRun run(TrainerOptions().max_epochs(3), {named, typed});
  run.fit();
  for (const auto& name : named->data_sparsifier()->names()) {
    EXPECT_TRUE(torch::equal(named->data_sparsifier()->get_mask(name), typed->data_sparsifier()->get_mask(name)))
        << name;
  }
  EXPECT_EQ(named->data_scheduler()->last_epoch(), typed->data_scheduler()->last_epoch());
}

TEST(CallbackConfig, TheRegistryBuildsEachDataSparsityCallbackAndToConfigReadsBack) {
  const Config aware_config{{"sparsifier", component("DataNormSparsifier", kDataNorm)},
                            {"scheduler", component("StepSLScheduler", Config{{"step_size", 2}})},
                            {"name", "aware"},
                            {"apply_to_model", true},
                            {"include", "*weight"}};
  const auto aware = std::dynamic_pointer_cast<TrainingAwareDataSparsity>(
      make_callback("TrainingAwareDataSparsity", aware_config));
  ASSERT_NE(aware, nullptr);
  EXPECT_EQ(aware->name(), "aware");
  EXPECT_TRUE(aware->options().apply_to_model());
  EXPECT_TRUE(aware->changes_trained_model());
  EXPECT_EQ(aware->options().parameters().include, (std::vector<std::string>{"*weight"}));
  const Config full{{"sparsifier", component("DataNormSparsifier", kDataNorm)},
                    {"scheduler", component("StepSLScheduler", Config{{"step_size", 2}})},
                    {"name", "aware"},
                    {"apply_to_model", true},
                    {"update_every_n_steps", 0},
                    {"rewind_to_epoch", -1},
                    {"rewind_at_epoch", -1},
                    {"include", StringList{"*weight"}},
                    {"exclude", StringList{}}};
  EXPECT_EQ(aware->to_config(), full);
  EXPECT_EQ(make_sparsifying_callback("TrainingAwareDataSparsity", full)->to_config(), full);

  const auto post = make_sparsifying_callback(
      "PostTrainingDataSparsity", Config{{"sparsifier", component("DataNormSparsifier", {})}, {"exclude", StringList{"*bias"}}});
  EXPECT_FALSE(post->changes_trained_model());
  EXPECT_EQ(post->to_config().get<StringList>("exclude"), (std::vector<std::string>{"*bias"}));
  EXPECT_EQ(registered_callbacks(),
            (std::vector<std::string>{"LossySparsifierCallback", "PostTrainingDataSparsity", "TrainingAwareDataSparsity"}));
}

/// The ConfigError of building `type` from `config`.
ConfigError config_error(const std::string& type, const Config& config) {
  try {
    make_callback(type, config);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError";
  return ConfigError("", "");
}

TEST(CallbackConfig, MistakesCarryTheirKeyPath) {
  const Config scheduler = component("CubicSLScheduler", {});
  const ConfigError level = config_error(
      "TrainingAwareDataSparsity",
      Config{{"sparsifier", component("DataNormSparsifier", Config{{"sparsity_level", 1.5}})}, {"scheduler", scheduler}});
  EXPECT_EQ(level.key(), "sparsifier.args.sparsity_level");
  EXPECT_EQ(level.at(), ConfigError::At::kValue);
  EXPECT_CONTAINS(level.message(), "invalid arguments for the DataNormSparsifier data sparsifier");
  EXPECT_CONTAINS(level.message(), "expected a sparsity level in [0, 1], got 1.5");

  const ConfigError unknown = config_error(
      "TrainingAwareDataSparsity", Config{{"sparsifier", component("DataNormSparsifier", {})},
                                          {"scheduler", component("CubicSLScheduler", Config{{"total_steps", 3}})}});
  EXPECT_EQ(unknown.key(), "scheduler.args.total_steps");
  EXPECT_EQ(unknown.at(), ConfigError::At::kKey);

  const ConfigError type = config_error("PostTrainingDataSparsity", Config{{"sparsifier", component("DataNormSparsifer", {})}});
  EXPECT_EQ(type.key(), "sparsifier.type");
  EXPECT_CONTAINS(type.message(), "unknown data sparsifier type 'DataNormSparsifer' (did you mean 'DataNormSparsifier'?)");

  EXPECT_EQ(config_error("PostTrainingDataSparsity", Config{{"sparsifier", component("DataNormSparsifier", {})},
                                                            {"exclude", StringList{"*bias", ""}}})
                .key(),
            "exclude.1");
  EXPECT_EQ(config_error("PostTrainingDataSparsity", Config{{"sparsifer", 1}}).key(), "sparsifer");
  EXPECT_EQ(config_error("PostTrainingDataSparsity", Config{{"sparsifier", component("DataNormSparsifier", {})},
                                                            {"apply_to_model", true}})
                .at(),
            ConfigError::At::kKey);
}

TEST(CallbackConfig, ASelectionOfNoParameterFailsAtFitStartNotAtItsEnd) {
  auto post = std::make_shared<PostTrainingDataSparsity>(
      "DataNormSparsifier", kDataNorm, PostTrainingDataSparsityOptions().parameters({{"nothing.*"}, {}}));
  testing::TrainingRun run(TrainerOptions().max_epochs(3), {post});
  try {
    run.fit();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_CONTAINS(e.what(), "callback 'PostTrainingDataSparsity' failed in on_fit_start: callback "
                              "'PostTrainingDataSparsity' selects no parameter of the model (include: [nothing.*]");
    // The callback's own exception is nested inside the Trainer's.
    EXPECT_THROW(std::rethrow_if_nested(e), std::invalid_argument);
  }
  EXPECT_EQ(run.trainer.global_step(), 0) << "nothing was trained";
}

}  // namespace
}  // namespace sparsity
