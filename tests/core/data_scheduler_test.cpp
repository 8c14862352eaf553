// Data schedulers: the reference's semantics, our clamping and range checks,
// late-added data, state and resume, the registry.
#include <cmath>

#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;

std::unique_ptr<DataNormSparsifier> sparsifier_with(std::vector<std::pair<std::string, double>> levels) {
  auto s = std::make_unique<DataNormSparsifier>();
  for (const auto& [name, level] : levels) s->add_data(name, torch::randn({8, 16}), Config{{"sparsity_level", level}});
  return s;
}

double level_of(const BaseDataSparsifier& s, const std::string& name) {
  return s.data_group(name).get<double>("sparsity_level");
}

TEST(BaseDataScheduler, ConstructorTakesTheFirstStep) {
  auto s = sparsifier_with({{"a", 0.2}, {"b", 0.4}});
  StepSLScheduler scheduler(*s);
  EXPECT_EQ(scheduler.last_epoch(), 0);
  EXPECT_EQ(scheduler.schedule_param(), "sparsity_level");
  EXPECT_EQ(scheduler.base_param(), (std::map<std::string, double>{{"a", 0.2}, {"b", 0.4}}));
  EXPECT_EQ(scheduler.get_last_param(), (std::map<std::string, double>{{"a", 0.2}, {"b", 0.4}}));
  EXPECT_EQ(&scheduler.sparsifier(), s.get());
}

TEST(StepSLScheduler, MultipliesByGammaEveryStepSizeEpochs) {
  auto s = sparsifier_with({{"a", 0.01}, {"b", 0.03}});
  StepSLScheduler scheduler(*s, StepSLSchedulerOptions().step_size(2).gamma(3.0));
  for (int epoch = 1; epoch <= 6; ++epoch) {
    s->step();
    scheduler.step();
    const double factor = std::pow(3.0, epoch / 2);
    EXPECT_NEAR(level_of(*s, "a"), 0.01 * factor, 1e-12) << epoch;
    EXPECT_NEAR(scheduler.get_last_param().at("b"), 0.03 * factor, 1e-12) << epoch;
  }
  EXPECT_EQ(scheduler.last_epoch(), 6);
}

TEST(StepSLScheduler, SparsityLevelIsClampedToOne) {
  // The reference's callback test: levels base * gamma^epoch, which it lets
  // reach 8.0; here they stop at 1.
  auto s = sparsifier_with({{"a", 0.5}, {"b", 0.1}});
  StepSLScheduler scheduler(*s, StepSLSchedulerOptions().step_size(1).gamma(2.0));
  for (int epoch = 1; epoch <= 5; ++epoch) {
    s->step();
    scheduler.step();
    EXPECT_DOUBLE_EQ(level_of(*s, "a"), std::min(1.0, 0.5 * std::pow(2.0, epoch)));
    EXPECT_DOUBLE_EQ(level_of(*s, "b"), std::min(1.0, 0.1 * std::pow(2.0, epoch)));
  }
}

TEST(BaseDataScheduler, ReenablesMaskUpdates) {
  auto s = sparsifier_with({{"a", 0.5}});
  StepSLScheduler scheduler(*s);
  s->set_mask_update_enabled(false);
  s->step();
  scheduler.step();
  EXPECT_TRUE(s->mask_update_enabled());
}

TEST(BaseDataScheduler, WarnsOnceWhenSteppedBeforeTheSparsifier) {
  testing::LogCapture log;
  auto s = sparsifier_with({{"a", 0.1}});
  StepSLScheduler scheduler(*s);
  scheduler.step();
  scheduler.step();
  EXPECT_EQ(log.count("before the data sparsifier's first step()"), 1) << log.text();
  testing::LogCapture clean;
  auto s2 = sparsifier_with({{"a", 0.1}});
  StepSLScheduler in_order(*s2);
  s2->step();
  in_order.step();
  EXPECT_EQ(clean.count("before the data sparsifier"), 0) << clean.text();
}

TEST(BaseDataScheduler, DataAddedLaterGetsItsBaseRecordedAtTheNextStep) {
  auto s = sparsifier_with({{"a", 0.1}});
  StepSLScheduler scheduler(*s, StepSLSchedulerOptions().gamma(2.0));
  s->add_data("late", torch::randn({4, 4}), Config{{"sparsity_level", 0.2}});
  s->step();
  scheduler.step();
  EXPECT_DOUBLE_EQ(scheduler.base_param().at("late"), 0.2);
  EXPECT_DOUBLE_EQ(level_of(*s, "late"), 0.4);
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.2);
}

TEST(BaseDataScheduler, OtherParamsAreRangeCheckedByTheSparsifier) {
  auto s = std::make_unique<DataNormSparsifier>(
      DataNormSparsifierOptions().sparse_block_shape({1, 4}).zeros_per_block(1));
  s->add_data("w", torch::randn({8, 8}));
  StepSLScheduler scheduler(*s, StepSLSchedulerOptions().schedule_param("zeros_per_block").gamma(2.0));
  s->step();
  scheduler.step();
  EXPECT_EQ(s->data_group("w").get<int64_t>("zeros_per_block"), 2) << "an int stays an int";
  s->step();
  scheduler.step();
  EXPECT_EQ(s->data_group("w").get<int64_t>("zeros_per_block"), 4);
  s->step();
  const std::string message = error_of<std::invalid_argument>([&] { scheduler.step(); });
  EXPECT_CONTAINS(message, "StepSLScheduler at epoch 3");
  EXPECT_CONTAINS(message, "got 8");
  EXPECT_EQ(s->data_group("w").get<int64_t>("zeros_per_block"), 4) << "nothing written on error";
  EXPECT_EQ(scheduler.last_epoch(), 2);
}

TEST(BaseDataScheduler, MissingOrNonNumericParamIsAClearError) {
  auto s = sparsifier_with({{"a", 0.5}});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    StepSLScheduler scheduler(*s, StepSLSchedulerOptions().schedule_param("threshold"));
                  }),
                  "data 'a' has no 'threshold'");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    StepSLScheduler scheduler(*s, StepSLSchedulerOptions().schedule_param("norm"));
                  }),
                  "'norm'");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { StepSLScheduler bad(*s, StepSLSchedulerOptions().step_size(0)); }),
                  "step_size must be >= 1, got 0");
}

TEST(CubicSLScheduler, FollowsTheCubicFormulaToTheBaseLevel) {
  auto s = sparsifier_with({{"a", 0.8}, {"b", 0.5}});
  CubicSLScheduler scheduler(*s, CubicSLSchedulerOptions().init_sl(0.0).init_t(2).delta_t(1).total_t(10));
  // Epoch 0: before t_0 the value is s_0 (clamped).
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.0);
  for (int t = 1; t <= 15; ++t) {
    s->step();
    scheduler.step();
    for (const auto& [name, s_f] : std::map<std::string, double>{{"a", 0.8}, {"b", 0.5}}) {
      const double progress = (t - 2) / 10.0;
      const double expected =
          std::clamp(s_f + (0.0 - s_f) * std::pow(1.0 - progress, 3), 0.0, s_f);
      EXPECT_NEAR(level_of(*s, name), expected, 1e-12) << name << " at " << t;
    }
  }
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.8);
  EXPECT_DOUBLE_EQ(scheduler.base_param().at("a"), 0.8);
}

TEST(CubicSLScheduler, InitiallyZeroAndDecreasingSchedules) {
  EXPECT_EQ(CubicSLScheduler::sparsity_compute_fn(0.2, 0.8, 1, 3, 1, 10, true), 0.0);
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.2, 0.8, 1, 3, 1, 10, false), 0.2);
  // s_0 > s_f decreases from s_0 to s_f (the reference's clamp pins it to s_0).
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.9, 0.1, 0, 0, 1, 4), 0.9);
  EXPECT_NEAR(CubicSLScheduler::sparsity_compute_fn(0.9, 0.1, 2, 0, 1, 4), 0.1 + 0.8 * 0.125, 1e-12);
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.9, 0.1, 9, 0, 1, 4), 0.1);
}

TEST(PolynomialDecayScheduler, DecaysOnPruningStepsOnly) {
  auto s = sparsifier_with({{"a", 0.3}});
  PolynomialDecayScheduler scheduler(
      *s, PolynomialDecaySchedulerOptions().initial_sparsity(0.1).final_sparsity(0.9).begin_step(2).end_step(10).power(2.0).frequency(2));
  auto formula = [](int64_t t) {
    const double p = std::clamp((t - 2) / 8.0, 0.0, 1.0);
    return 0.9 + (0.1 - 0.9) * std::pow(1.0 - p, 2.0);
  };
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.1) << "before begin_step: initial_sparsity";
  double previous = level_of(*s, "a");
  for (int t = 1; t <= 13; ++t) {
    s->step();
    scheduler.step();
    const bool pruning_step = t <= 2 || t >= 10 || (t - 2) % 2 == 0;
    const double expected = pruning_step ? formula(t) : previous;
    EXPECT_NEAR(level_of(*s, "a"), expected, 1e-12) << t;
    previous = level_of(*s, "a");
  }
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.9);
}

TEST(PolynomialDecayScheduler, FinalSparsityDefaultsToTheBaseLevel) {
  auto s = sparsifier_with({{"a", 0.6}, {"b", 0.2}});
  PolynomialDecayScheduler scheduler(*s, PolynomialDecaySchedulerOptions().begin_step(0).end_step(4).power(1.0));
  for (int t = 1; t <= 4; ++t) {
    s->step();
    scheduler.step();
  }
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.6);
  EXPECT_DOUBLE_EQ(level_of(*s, "b"), 0.2);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    PolynomialDecayScheduler bad(*s, PolynomialDecaySchedulerOptions().begin_step(5).end_step(5));
                  }),
                  "end_step (5) must be greater than begin_step (5)");
}

TEST(LambdaSLScheduler, ScalesTheBaseByTheFunction) {
  auto s = sparsifier_with({{"a", 0.8}});
  LambdaSLScheduler scheduler(*s, [](int64_t epoch) { return std::min(1.0, epoch / 4.0); });
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.0);
  for (int t = 1; t <= 6; ++t) {
    s->step();
    scheduler.step();
    EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.8 * std::min(1.0, t / 4.0));
  }
}

TEST(BaseDataScheduler, StateRoundTripResumesTheSameSchedule) {
  const auto dir = testing::scratch_dir("SchedulerResume");
  torch::manual_seed(3);
  const at::Tensor w0 = torch::randn({16, 16}), w1 = torch::randn({8, 32});
  auto make = [&] {
    auto s = std::make_unique<DataNormSparsifier>(DataNormSparsifierOptions().sparsity_level(0.9));
    s->add_data("w0", w0.clone());
    s->add_data("w1", w1.clone(), Config{{"sparsity_level", 0.6}});
    return s;
  };
  const CubicSLSchedulerOptions options = CubicSLSchedulerOptions().init_t(1).delta_t(2).total_t(4);
  // Uninterrupted: 8 epochs.
  auto straight = make();
  CubicSLScheduler straight_scheduler(*straight, options);
  for (int epoch = 0; epoch < 8; ++epoch) {
    straight->step();
    straight_scheduler.step();
  }
  // Interrupted after 3 epochs, saved, rebuilt and resumed.
  {
    auto first = make();
    CubicSLScheduler scheduler(*first, options);
    for (int epoch = 0; epoch < 3; ++epoch) {
      first->step();
      scheduler.step();
    }
    first->save((dir / "sparsifier.pt").string());
    scheduler.save((dir / "scheduler.pt").string());
  }
  auto resumed = make();
  resumed->load((dir / "sparsifier.pt").string());
  CubicSLScheduler scheduler(*resumed, options);  // its first step rewrites the levels...
  scheduler.load((dir / "scheduler.pt").string());  // ...which loading restores
  EXPECT_EQ(scheduler.last_epoch(), 3);
  for (int epoch = 3; epoch < 8; ++epoch) {
    resumed->step();
    scheduler.step();
  }
  EXPECT_EQ(scheduler.get_last_param(), straight_scheduler.get_last_param());
  EXPECT_EQ(scheduler.base_param(), straight_scheduler.base_param());
  for (const auto& name : straight->names()) {
    EXPECT_TRUE(torch::equal(resumed->get_mask(name), straight->get_mask(name))) << name;
    EXPECT_EQ(resumed->data_group(name), straight->data_group(name)) << name;
  }
}

TEST(BaseDataScheduler, LoadingAnotherSchedulersStateIsAnError) {
  const auto dir = testing::scratch_dir("SchedulerMismatch");
  auto s = sparsifier_with({{"a", 0.5}});
  StepSLScheduler step(*s);
  step.save((dir / "step.pt").string());
  CubicSLScheduler cubic(*s);
  const std::string message = error_of<std::runtime_error>([&] { cubic.load((dir / "step.pt").string()); });
  EXPECT_CONTAINS(message, "StepSLScheduler");
  EXPECT_CONTAINS(message, "step.pt");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { cubic.load((dir / "missing.pt").string()); }), "missing.pt");
}

TEST(DataSchedulerRegistry, MakesEveryBuiltInFromArgs) {
  auto s = sparsifier_with({{"a", 0.5}});
  auto step = make_data_scheduler("StepSLScheduler", *s, Config{{"step_size", 1}, {"gamma", 0.5}});
  s->step();
  step->step();
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.25);
  auto cubic = make_data_scheduler("CubicSLScheduler", *s, Config{{"init_sl", 0.1}, {"delta_t", 1}, {"total_t", 2}});
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.1);
  auto poly = make_data_scheduler("PolynomialDecayScheduler", *s,
                                  Config{{"initial_sparsity", 0.0}, {"final_sparsity", 0.7}, {"end_step", 3}});
  EXPECT_DOUBLE_EQ(level_of(*s, "a"), 0.0);
  EXPECT_EQ(registered_data_schedulers(),
            (std::vector<std::string>{"CubicSLScheduler", "PolynomialDecayScheduler", "StepSLScheduler"}));

  std::string message = error_of<std::invalid_argument>([&] { make_data_scheduler("StepLR", *s, {}); });
  EXPECT_CONTAINS(message, "'StepLR'");
  EXPECT_CONTAINS(message, "CubicSLScheduler, PolynomialDecayScheduler, StepSLScheduler");
  message = error_of<std::invalid_argument>([&] { make_data_scheduler("StepSLScheduler", *s, Config{{"gama", 2.0}}); });
  EXPECT_CONTAINS(message, "'gama'");
  EXPECT_CONTAINS(message, "gamma");
  message = error_of<std::invalid_argument>([&] { make_data_scheduler("StepSLScheduler", *s, Config{{"gamma", "2"}}); });
  EXPECT_CONTAINS(message, "'gamma'");
}

}  // namespace
}  // namespace sparsity

namespace sparsity {
namespace {

TEST(SchedulerOptions, EachFieldTableReadsBackWhatItWrites) {
  const Config step{{"step_size", 3}, {"gamma", 0.5}, {"schedule_param", "sparsity_level"}, {"last_epoch", -1}};
  EXPECT_EQ(StepSLSchedulerOptions::from_config({{"step_size", 3}, {"gamma", 0.5}}).to_config(), step);
  EXPECT_EQ(StepSLSchedulerOptions::from_config(step).to_config(), step);

  const Config cubic = CubicSLSchedulerOptions().total_t(7).initially_zero(true).to_config();
  EXPECT_EQ(cubic.keys(), (std::vector<std::string>{"init_sl", "init_t", "delta_t", "total_t", "initially_zero",
                                                    "schedule_param", "last_epoch"}));
  EXPECT_EQ(cubic.get<int64_t>("total_t"), 7);
  EXPECT_EQ(CubicSLSchedulerOptions::from_config(cubic).to_config(), cubic);

  // final_sparsity is written only when set: absent means each name's base value.
  EXPECT_FALSE(PolynomialDecaySchedulerOptions().to_config().contains("final_sparsity"));
  const Config poly = PolynomialDecaySchedulerOptions().final_sparsity(0.8).end_step(20).to_config();
  EXPECT_EQ(poly.get<double>("final_sparsity"), 0.8);
  EXPECT_EQ(PolynomialDecaySchedulerOptions::from_config(poly).final_sparsity(), std::optional<double>(0.8));
  EXPECT_EQ(PolynomialDecaySchedulerOptions::from_config(poly).to_config(), poly);

  try {
    StepSLSchedulerOptions::from_config({{"step_sise", 2}});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "step_sise");
    EXPECT_EQ(e.at(), ConfigError::At::kKey);
    EXPECT_CONTAINS(e.what(), "did you mean 'step_size'?");
  }
}

}  // namespace
}  // namespace sparsity
