// TrainingAwareDataSparsity with mask updates every N steps: the result is the
// final weights under the last update's masks, the same bit for bit whether
// the run was interrupted and resumed or not (issue: the uninterrupted run
// dropped the steps after the last update, the resumed one mixed weights of
// two steps).
#include "data_sparsity_test_support.h"

namespace sparsity {
namespace {

using testing::TrainingRun;

std::shared_ptr<TrainingAwareDataSparsity> every_five_steps(bool apply_to_model) {
  return std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.6}, {"sparse_block_shape", {1, 4}}}, "CubicSLScheduler",
      Config{{"delta_t", 1}, {"total_t", 3}},
      TrainingAwareDataSparsityOptions().update_every_n_steps(5).apply_to_model(apply_to_model));
}

void expect_same_parameters(torch::nn::Module& a, torch::nn::Module& b, const std::string& what) {
  const auto theirs = b.named_parameters();
  for (const auto& item : a.named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), theirs[item.key()])) << what << ": " << item.key();
  }
}

TEST(TrainingAwareResume, EveryNStepsGivesTheFinalWeightsMasked) {
  for (const bool apply_to_model : {false, true}) {
    // 12 batches per epoch, 24 steps: updates at 5, ..., 20; steps 21-24 come after.
    auto straight = every_five_steps(apply_to_model);
    TrainingRun run(TrainerOptions().max_epochs(2), {straight});
    run.fit();
    ASSERT_EQ(run.trainer.global_step(), 24);
    const auto final_weights = run.module->model()->named_parameters();
    int64_t pruned = 0;
    for (const auto& item : straight->sparsified()->named_parameters()) {
      const std::string name = item.key();
      at::Tensor expected = final_weights[name];
      if (name.find("weight") != std::string::npos) {
        const at::Tensor mask = straight->data_sparsifier()->get_mask(sparsifier_name(name));
        expected = expected * mask;
        pruned += mask.numel() - mask.sum().item<int64_t>();
      }
      EXPECT_TRUE(torch::equal(item.value(), expected)) << name << (apply_to_model ? ", apply_to_model" : "");
    }
    EXPECT_GT(pruned, 0);
  }
}

TEST(TrainingAwareResume, EveryNStepsResumedMatchesUninterrupted) {
  const auto dir = testing::scratch_dir("TrainingAwareResumeEveryN");
  auto straight = every_five_steps(false);
  TrainingRun uninterrupted(TrainerOptions().max_epochs(2), {straight});
  uninterrupted.fit();

  {  // one epoch (step 12, between updates at 10 and 15), then a fresh process's resume
    TrainingRun half(TrainerOptions().max_epochs(1).output_dir((dir / "half").string()), {every_five_steps(false)});
    half.fit();
  }
  auto resumed = every_five_steps(false);
  TrainingRun second(TrainerOptions().max_epochs(2).output_dir((dir / "half").string())
                         .resume_from((dir / "half" / "checkpoint.pt").string()),
                     {resumed});
  second.fit();
  expect_same_parameters(*uninterrupted.module->model(), *second.module->model(), "live model");
  expect_same_parameters(*straight->sparsified(), *resumed->sparsified(), "resumed at step 12");

  // Resuming a run that already finished changes nothing.
  auto again = every_five_steps(false);
  TrainingRun finished(TrainerOptions().max_epochs(2).resume_from((dir / "half" / "checkpoint.pt").string()),
                       {again});
  finished.fit();
  expect_same_parameters(*straight->sparsified(), *again->sparsified(), "resumed after the end");
}

}  // namespace
}  // namespace sparsity
