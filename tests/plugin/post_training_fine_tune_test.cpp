// PostTrainingDataSparsity with fine_tune_epochs: the sparsified copy trains
// on under its masks and recovers, and the trained model is left bit for bit
// as it was.
#include "data_sparsity_test_support.h"

namespace sparsity {
namespace {

using testing::TrainingRun;

std::shared_ptr<PostTrainingDataSparsity> post90(const std::string& name, int64_t fine_tune_epochs) {
  return std::make_shared<PostTrainingDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.9}, {"sparse_block_shape", {1, 4}}},
      PostTrainingDataSparsityOptions().name(name).fine_tune_epochs(fine_tune_epochs));
}

// Loss and accuracy of `model` (a Sequential) on the whole of `source`.
std::pair<double, double> evaluate(torch::nn::Module& model, const DataSource& source) {
  auto& net = dynamic_cast<torch::nn::SequentialImpl&>(model);
  torch::NoGradGuard no_grad;
  double loss = 0.0, correct = 0.0, count = 0.0;
  const auto order = source.order(0);
  for (int64_t b = 0; b < source.num_batches(); ++b) {
    const Batch batch = source.batch(order, b);
    const at::Tensor logits = net.forward(batch.data);
    const double n = static_cast<double>(batch.data.size(0));
    loss += torch::nn::functional::cross_entropy(logits, batch.target).item<double>() * n;
    correct += logits.argmax(1).eq(batch.target).sum().item<double>();
    count += n;
  }
  return {loss / count, correct / count};
}

TEST(PostTrainingFineTune, TheCopyRecoversUnderItsMasksAndTheModelIsUntouched) {
  auto tuned = post90("tuned", 3);
  auto plain = post90("plain", 0);
  // The fine-tuning callback runs first: the one after it must see the model as trained.
  TrainingRun run(TrainerOptions().max_epochs(2), {tuned, plain});
  run.fit();
  auto reference_plain = post90("plain", 0);
  TrainingRun reference(TrainerOptions().max_epochs(2), {reference_plain});
  reference.fit();

  const auto live = run.module->model()->named_parameters();
  for (const auto& item : reference.module->model()->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), live[item.key()])) << "live " << item.key();
    EXPECT_EQ(item.value().grad().defined(), live[item.key()].grad().defined());
    if (item.value().grad().defined()) EXPECT_TRUE(torch::equal(item.value().grad(), live[item.key()].grad()));
  }
  EXPECT_EQ(run.module->model()->is_training(), reference.module->model()->is_training());
  const auto plain_weights = plain->sparsified()->named_parameters();
  for (const auto& item : reference_plain->sparsified()->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), plain_weights[item.key()])) << "plain " << item.key();

  // The fine-tuned copy holds its masks exactly, at 90%, and its weights moved.
  int64_t zeros = 0, total = 0;
  const auto untuned = plain->sparsified()->named_parameters();
  for (const auto& item : tuned->sparsified()->named_parameters()) {
    const at::Tensor mask = tuned->data_sparsifier()->get_mask(sparsifier_name(item.key()));
    EXPECT_TRUE(item.value().masked_select(mask == 0).eq(0.0).all().item<bool>()) << item.key();
    EXPECT_FALSE(torch::equal(item.value(), untuned[item.key()])) << item.key();
    zeros += item.value().eq(0.0).sum().item<int64_t>();
    total += item.value().numel();
  }
  EXPECT_GE(static_cast<double>(zeros), 0.89 * static_cast<double>(total));  // 90% of the blocks of each row, rounded
  EXPECT_FALSE(tuned->sparsified()->is_training());

  const auto [tuned_loss, tuned_acc] = evaluate(*tuned->sparsified(), *run.train);
  const auto [plain_loss, plain_acc] = evaluate(*plain->sparsified(), *run.train);
  EXPECT_LT(tuned_loss, 0.8 * plain_loss);
  EXPECT_GE(tuned_acc, plain_acc);
  const auto [tuned_val_loss, tuned_val_acc] = evaluate(*tuned->sparsified(), *run.validation);
  const auto [plain_val_loss, plain_val_acc] = evaluate(*plain->sparsified(), *run.validation);
  EXPECT_LT(tuned_val_loss, plain_val_loss);
  EXPECT_GE(tuned_val_acc, plain_val_acc);
  EXPECT_TRUE(std::isfinite(tuned->fine_tune_loss()));
  EXPECT_TRUE(std::isnan(plain->fine_tune_loss()));
}

TEST(PostTrainingFineTune, OptionIsCheckedAndRoundTrips) {
  try {
    post90("bad", -1);
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "fine_tune_epochs");
    EXPECT_CONTAINS(e.what(), "got -1");
  }
  EXPECT_THROW(post90("bad", 10001), ConfigError);
  const Config config{{"sparsifier", Config{{"type", "DataNormSparsifier"}, {"args", Config{{"sparsity_level", 0.9}}}}},
                      {"fine_tune_epochs", 2}};
  const auto built = PostTrainingDataSparsity::from_config(config);
  EXPECT_EQ(built->options().fine_tune_epochs(), 2);
  EXPECT_EQ(built->to_config().get<int64_t>("fine_tune_epochs"), 2);
}

TEST(PostTrainingFineTune, TrainEpochsChecksItsCount) {
  TrainingRun run(TrainerOptions().max_epochs(1), {});
  EXPECT_CONTAINS(testing::error_of<std::invalid_argument>([&] { run.trainer.train_epochs(*run.module, *run.train, 0); }),
                  "got 0");
  // Outside fit it trains the module's model, and leaves the Trainer's counters alone.
  const at::Tensor before = run.module->model()->parameters()[0].detach().clone();
  int64_t steps = 0;
  const double loss = run.trainer.train_epochs(*run.module, *run.train, 1, [&] { ++steps; });
  EXPECT_EQ(steps, run.train->num_batches());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_FALSE(torch::equal(before, run.module->model()->parameters()[0]));
  EXPECT_EQ(run.trainer.global_step(), 0);
}

}  // namespace
}  // namespace sparsity
