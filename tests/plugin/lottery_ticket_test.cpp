// TrainingAwareDataSparsity's lottery-ticket rewinding: the surviving weights
// go back to their saved values bit for bit, the masks stay, a resumed run
// equals an uninterrupted one, and a callback reused for a second fit finds
// that fit's own ticket.
#include "data_sparsity_test_support.h"

namespace sparsity {
namespace {

using testing::TrainingRun;

using Weights = std::map<std::string, at::Tensor>;

Weights snapshot(torch::nn::Module& model) {
  Weights weights;
  for (const auto& item : model.named_parameters()) weights[item.key()] = item.value().detach().clone();
  return weights;
}

// Records the live model's parameters, and the masks, at the start of each
// epoch (after the callbacks before it) and at train start.
struct Probe : Callback {
  std::shared_ptr<TrainingAwareDataSparsity> aware;
  Weights at_train_start;
  std::map<int64_t, Weights> at_epoch_start;
  std::map<int64_t, Weights> masks_at_epoch_start;

  explicit Probe(std::shared_ptr<TrainingAwareDataSparsity> a) : aware(std::move(a)) {}
  std::string name() const override { return "Probe"; }
  void on_train_start(Trainer&, TrainingModule& module) override { at_train_start = snapshot(*module.model()); }
  void on_train_epoch_start(Trainer& trainer, TrainingModule& module) override {
    at_epoch_start[trainer.current_epoch()] = snapshot(*module.model());
    for (const auto& item : module.model()->named_parameters()) {
      if (aware->data_sparsifier()->contains(sparsifier_name(item.key())))
        masks_at_epoch_start[trainer.current_epoch()][item.key()] =
            aware->data_sparsifier()->get_mask(sparsifier_name(item.key())).clone();
    }
  }
};

std::shared_ptr<TrainingAwareDataSparsity> lottery(int64_t to, int64_t at) {
  return std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.8}, {"sparse_block_shape", {1, 4}}}, "CubicSLScheduler",
      Config{{"delta_t", 1}, {"total_t", 2}},
      TrainingAwareDataSparsityOptions().apply_to_model(true).rewind_to_epoch(to).rewind_at_epoch(at).parameters(
          {{"*weight"}, {}}));
}

void expect_same(const Weights& a, torch::nn::Module& b, const std::string& what) {
  const auto theirs = b.named_parameters();
  for (const auto& [name, value] : a) EXPECT_TRUE(torch::equal(value, theirs[name])) << what << ": " << name;
}

// After the rewind at the start of epoch `at`: every surviving weight holds
// its saved value exactly, every pruned one is 0.
void expect_rewound(const Probe& probe, int64_t at, const Weights& saved) {
  const Weights& rewound = probe.at_epoch_start.at(at);
  const Weights& masks = probe.masks_at_epoch_start.at(at);
  int64_t pruned = 0, kept = 0;
  for (const auto& [name, value] : rewound) {
    const auto mask = masks.find(name);
    if (mask == masks.end()) {
      EXPECT_TRUE(torch::equal(value, saved.at(name))) << name;
      continue;
    }
    const at::Tensor keep = mask->second.to(at::kBool);
    EXPECT_TRUE(torch::equal(value.masked_select(keep), saved.at(name).masked_select(keep))) << name;
    EXPECT_TRUE(value.masked_select(~keep).eq(0.0).all().item<bool>()) << name;
    pruned += (~keep).sum().item<int64_t>();
    kept += keep.sum().item<int64_t>();
  }
  EXPECT_GT(pruned, 3 * kept);  // 80% sparse by then
}

TEST(LotteryTicket, RewindToInitialization) {
  auto aware = lottery(0, 3);
  auto probe = std::make_shared<Probe>(aware);
  TrainingRun run(TrainerOptions().max_epochs(5), {aware, probe});
  run.fit();
  ASSERT_TRUE(aware->rewound());
  // The saved weights are the initialization, and the rewind restored them.
  for (const auto& [name, value] : probe->at_train_start) EXPECT_TRUE(torch::equal(aware->rewind_weights().at(name), value));
  expect_rewound(*probe, 3, probe->at_train_start);
  // Trained on after the rewind, under the same masks: zeros where they were.
  EXPECT_FALSE(torch::equal(probe->at_epoch_start.at(4).at("0.weight"), probe->at_epoch_start.at(3).at("0.weight")));
  for (const auto& [name, mask] : probe->masks_at_epoch_start.at(3)) {
    EXPECT_TRUE(torch::equal(mask, probe->masks_at_epoch_start.at(4).at(name))) << name;
    const at::Tensor pruned = mask == 0;
    EXPECT_TRUE(run.module->model()->named_parameters()[name].masked_select(pruned).eq(0.0).all().item<bool>());
    EXPECT_TRUE(aware->sparsified()->named_parameters()[name].masked_select(pruned).eq(0.0).all().item<bool>());
  }
}

TEST(LotteryTicket, RewindToEpochK) {
  auto aware = lottery(1, 3);
  auto probe = std::make_shared<Probe>(aware);
  TrainingRun run(TrainerOptions().max_epochs(4), {aware, probe});
  run.fit();
  const Weights& after_one = probe->at_epoch_start.at(1);
  EXPECT_FALSE(torch::equal(after_one.at("0.weight"), probe->at_train_start.at("0.weight")));
  for (const auto& [name, value] : after_one) EXPECT_TRUE(torch::equal(aware->rewind_weights().at(name), value));
  expect_rewound(*probe, 3, after_one);
}

TEST(LotteryTicket, ResumedRunMatchesUninterrupted) {
  const auto dir = testing::scratch_dir("LotteryTicketResume");
  auto straight = lottery(0, 3);
  TrainingRun uninterrupted(TrainerOptions().max_epochs(5), {straight});
  uninterrupted.fit();
  // Interrupted between the save and the rewind, and after the rewind.
  for (const int64_t stop : {2, 4}) {
    SCOPED_TRACE(stop);
    const auto half = dir / ("after" + std::to_string(stop));
    {
      TrainingRun first(TrainerOptions().max_epochs(stop).output_dir(half.string()), {lottery(0, 3)});
      first.fit();
    }
    auto resumed = lottery(0, 3);
    TrainingRun second(
        TrainerOptions().max_epochs(5).output_dir(half.string()).resume_from((half / "checkpoint.pt").string()),
        {resumed});
    second.fit();
    EXPECT_TRUE(resumed->rewound());
    expect_same(snapshot(*uninterrupted.module->model()), *second.module->model(), "live model");
    expect_same(snapshot(*straight->sparsified()), *resumed->sparsified(), "sparsified");
  }
}

TEST(LotteryTicket, ReusedCallbackFindsTheSecondFitsOwnTicket) {
  auto reused = lottery(0, 3);
  {
    TrainingRun first(TrainerOptions().max_epochs(4), {reused}, /*seed=*/7);
    first.fit();
  }
  auto reused_probe = std::make_shared<Probe>(reused);
  TrainingRun second(TrainerOptions().max_epochs(4), {reused, reused_probe}, /*seed=*/8);
  second.fit();
  auto fresh = lottery(0, 3);
  TrainingRun alone(TrainerOptions().max_epochs(4), {fresh}, /*seed=*/8);
  alone.fit();
  // The second fit saved its own model's initialization, not the first's.
  for (const auto& [name, value] : reused_probe->at_train_start)
    EXPECT_TRUE(torch::equal(reused->rewind_weights().at(name), value)) << name;
  expect_rewound(*reused_probe, 3, reused_probe->at_train_start);
  // And found the same ticket as a fresh callback: masks, weights, result.
  expect_same(snapshot(*alone.module->model()), *second.module->model(), "live model");
  expect_same(snapshot(*fresh->sparsified()), *reused->sparsified(), "sparsified");
  for (const auto& name : reused->data_sparsifier()->names())
    EXPECT_TRUE(torch::equal(reused->data_sparsifier()->get_mask(name), fresh->data_sparsifier()->get_mask(name)));
}

TEST(LotteryTicket, OptionsAreChecked) {
  auto build = [](TrainingAwareDataSparsityOptions options) {
    return std::make_shared<TrainingAwareDataSparsity>("DataNormSparsifier", Config{}, "CubicSLScheduler", Config{},
                                                       options);
  };
  auto key_of = [&](TrainingAwareDataSparsityOptions options) {
    try {
      build(options);
    } catch (const ConfigError& e) {
      return e.key() + ": " + e.what();
    }
    return std::string("no error");
  };
  EXPECT_CONTAINS(key_of(TrainingAwareDataSparsityOptions().rewind_to_epoch(0).rewind_at_epoch(2)),
                  "rewind_to_epoch: ");
  EXPECT_CONTAINS(key_of(TrainingAwareDataSparsityOptions().rewind_to_epoch(0).rewind_at_epoch(2)), "apply_to_model");
  EXPECT_CONTAINS(key_of(TrainingAwareDataSparsityOptions().apply_to_model(true).rewind_to_epoch(2).rewind_at_epoch(2)),
                  "rewind_at_epoch: ");
  EXPECT_CONTAINS(key_of(TrainingAwareDataSparsityOptions().apply_to_model(true).rewind_to_epoch(0)), "got -1");
  EXPECT_CONTAINS(key_of(TrainingAwareDataSparsityOptions().apply_to_model(true).rewind_to_epoch(-5)), "got -5");
  EXPECT_CONTAINS(key_of(TrainingAwareDataSparsityOptions().rewind_at_epoch(3)), "rewind_at_epoch: ");
  EXPECT_CONTAINS(
      key_of(TrainingAwareDataSparsityOptions().apply_to_model(true).rewind_to_epoch(0).rewind_at_epoch(2000000)),
      "got 2000000");

  // A fit that ends before the rewind (one to be resumed) saves the weights and does not rewind.
  auto late = lottery(0, 3);
  TrainingRun run(TrainerOptions().max_epochs(3), {late});
  run.fit();
  EXPECT_FALSE(late->rewound());
  EXPECT_FALSE(late->rewind_weights().empty());

  // The keys go through a Config both ways.
  const Config config{{"sparsifier", Config{{"type", "DataNormSparsifier"}, {"args", Config{}}}},
                      {"scheduler", Config{{"type", "CubicSLScheduler"}, {"args", Config{}}}},
                      {"apply_to_model", true},
                      {"rewind_to_epoch", 1},
                      {"rewind_at_epoch", 4}};
  const auto built = TrainingAwareDataSparsity::from_config(config);
  EXPECT_EQ(built->options().rewind_to_epoch(), 1);
  EXPECT_EQ(built->options().rewind_at_epoch(), 4);
  EXPECT_EQ(built->to_config().get<int64_t>("rewind_at_epoch"), 4);
}

}  // namespace
}  // namespace sparsity
