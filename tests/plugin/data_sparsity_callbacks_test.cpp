// PostTrainingDataSparsity and TrainingAwareDataSparsity: the reference's
// test_callbacks.py hook by hook, then through Trainer::fit, and what goes
// beyond the reference (apply_to_model, step-wise updates, parameter
// selection, model factories, resume).
#include <cmath>

#include "data_sparsity_test_support.h"

namespace sparsity {
namespace {

using testing::error_of;

const Config kSparsifierArgs{{"sparsity_level", 0.5}, {"sparse_block_shape", {1, 4}}, {"zeros_per_block", 4}};

struct DummyModule : TrainingModule {
  torch::nn::Sequential net = testing::dummy_model(100, {128, 256, 16});
  std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
  at::Tensor training_step(const Batch&) override { return {}; }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override { return nullptr; }
};

TEST(PostTrainingDataSparsity, OnFitEndSparsifiesACopy) {
  DummyModule module;
  std::vector<at::Tensor> before;
  for (const auto& p : module.net->parameters()) before.push_back(p.detach().clone());
  PostTrainingDataSparsity callback("DataNormSparsifier", kSparsifierArgs);
  EXPECT_EQ(callback.sparsified(), nullptr);
  EXPECT_EQ(callback.data_sparsifier(), nullptr);
  Trainer trainer;
  callback.on_fit_end(trainer, module);

  BaseDataSparsifier& s = *callback.data_sparsifier();
  for (const auto& [key, value] : kSparsifierArgs.entries()) EXPECT_EQ(s.defaults().at(key), value) << key;
  const auto copy_params = callback.sparsified()->named_parameters();
  size_t i = 0;
  for (const auto& item : module.net->named_parameters()) {
    const std::string name = sparsifier_name(item.key());
    ASSERT_TRUE(s.contains(name)) << name;
    EXPECT_FALSE(s.is_parametrized(name));
    const at::Tensor mask = s.get_mask(name);
    EXPECT_GT(1.0 - mask.to(torch::kDouble).mean().item<double>(), 0.0) << name;
    const at::Tensor sparse = s.get_data(name, false);
    EXPECT_TRUE(sparse.is_same(copy_params[item.key()])) << "the sparsifier holds the copy's parameter";
    const at::Tensor kept = sparse.ne(0);
    EXPECT_TRUE(torch::equal(sparse.masked_select(kept), item.value().detach().masked_select(kept))) << name;
    EXPECT_TRUE(torch::equal(item.value().detach(), before[i++])) << "the trained model is untouched";
  }
  EXPECT_FALSE(callback.sparsified()->is_training());
  EXPECT_NEAR(overall_sparsity(callback.report()), 0.5, 0.01);
  EXPECT_EQ(callback.report().size(), 3u);
}

TEST(TrainingAwareDataSparsity, HookByHookAsTheReferenceTests) {
  DummyModule module;
  TrainingAwareDataSparsity callback("DataNormSparsifier", kSparsifierArgs, "StepSLScheduler",
                                     Config{{"gamma", 2.0}, {"step_size", 1}});
  Trainer trainer;
  callback.on_train_start(trainer, module);
  ASSERT_NE(callback.data_sparsifier(), nullptr);
  ASSERT_NE(callback.data_scheduler(), nullptr);
  for (const auto& [key, value] : kSparsifierArgs.entries())
    EXPECT_EQ(callback.data_sparsifier()->defaults().at(key), value) << key;
  auto* step = dynamic_cast<StepSLScheduler*>(callback.data_scheduler());
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->options().gamma(), 2.0);
  EXPECT_EQ(step->options().step_size(), 1);

  const auto base = callback.data_scheduler()->base_param();
  std::shared_ptr<c10::IValue> previous_state;
  for (int epoch = 0; epoch < 5; ++epoch) {
    callback.on_train_epoch_start(trainer, module);
    if (epoch > 0) {
      // The restored state is the one saved at the last epoch end.
      BaseDataSparsifier& s = *callback.data_sparsifier();
      for (const auto& name : s.names()) EXPECT_TRUE(s.is_parametrized(name));
    }
    {
      torch::NoGradGuard no_grad;
      for (auto& p : module.net->parameters()) p.add_(1.0);  // the reference's simulated update
    }
    callback.on_train_epoch_end(trainer, module);
    BaseDataScheduler& scheduler = *callback.data_scheduler();
    for (const auto& item : module.net->named_parameters()) {
      const std::string name = sparsifier_name(item.key());
      const at::Tensor mask = callback.data_sparsifier()->get_mask(name);
      EXPECT_GT(1.0 - mask.to(torch::kDouble).mean().item<double>(), 0.0) << name;
      // Levels base * gamma^epoch, clamped to 1 (the reference lets them grow past it).
      EXPECT_DOUBLE_EQ(scheduler.get_last_param().at(name),
                       std::min(1.0, base.at(name) * std::pow(2.0, scheduler.last_epoch())));
    }
    EXPECT_EQ(scheduler.last_epoch(), epoch + 1);
    // The copy is the model as it was at this epoch end.
    const auto copy = callback.sparsified()->named_parameters();
    EXPECT_TRUE(torch::equal(copy["0.weight"], module.net->named_parameters()["0.weight"].detach()));
  }

  callback.on_train_end(trainer, module);
  BaseDataSparsifier& s = *callback.data_sparsifier();
  for (const auto& item : callback.sparsified()->named_parameters()) {
    const std::string name = sparsifier_name(item.key());
    EXPECT_FALSE(s.is_parametrized(name));
    EXPECT_TRUE(item.value().detach().masked_select(s.get_mask(name).eq(0)).eq(0).all().item<bool>()) << name;
  }
  // Level 1 everywhere by now: the whole copy is zero; the live model is not.
  EXPECT_DOUBLE_EQ(overall_sparsity(callback.report()), 1.0);
  EXPECT_EQ(measure_sparsity(*module.net.ptr())[0].zeros, 0);
}

using testing::TrainingRun;

TEST(DataSparsityCallbacks, ThroughFitTheModelLearnsAndTheCopiesAreSparse) {
  auto post = std::make_shared<PostTrainingDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.5}, {"sparse_block_shape", {1, 4}}});
  auto aware = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.6}, {"sparse_block_shape", {1, 4}}}, "CubicSLScheduler",
      Config{{"init_t", 0}, {"delta_t", 1}, {"total_t", 3}});
  TrainingRun run(TrainerOptions().max_epochs(5), {post, aware});
  run.fit();
  EXPECT_GT(run.trainer.last_metrics().at("val_acc"), 0.9);
  // The trained model itself is dense.
  EXPECT_EQ(overall_sparsity(measure_sparsity(*run.module->model())), 0.0);
  EXPECT_NEAR(overall_sparsity(post->report()), 0.5, 0.02);
  // The cubic schedule reached its base level 0.6 by epoch 3; the copy is squashed at it.
  EXPECT_DOUBLE_EQ(aware->data_scheduler()->get_last_param().at("0_weight"), 0.6);
  EXPECT_NEAR(overall_sparsity(aware->report()), 0.6, 0.02);
  EXPECT_NEAR(run.trainer.last_metrics().at("data_sparsity"), 0.6, 0.02);
  EXPECT_TRUE(run.trainer.last_metrics().count("sparsity/0.weight"));
  // The sparsified copies still classify.
  torch::NoGradGuard no_grad;
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(post->sparsified());
  ASSERT_NE(copy, nullptr);
  const at::Tensor logits = copy->forward(run.validation->inputs());
  EXPECT_GT(logits.argmax(1).eq(run.validation->targets()).to(torch::kDouble).mean().item<double>(), 0.8);
}

TEST(DataSparsityCallbacks, SeveralOfOneTypeRunSideBySideUnderTheirNames) {
  auto half = std::make_shared<PostTrainingDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.5}}, PostTrainingDataSparsityOptions().name("half"));
  auto most = std::make_shared<PostTrainingDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.9}}, PostTrainingDataSparsityOptions().name("most"));
  auto aware = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.5}}, "StepSLScheduler", Config{{"step_size", 10}},
      TrainingAwareDataSparsityOptions().name("aware_a"));
  auto aware_b = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.7}}, "StepSLScheduler", Config{{"step_size", 10}},
      TrainingAwareDataSparsityOptions().name("aware_b"));
  EXPECT_EQ(half->name(), "half");
  EXPECT_EQ(aware->name(), "aware_a");
  EXPECT_EQ(PostTrainingDataSparsity("DataNormSparsifier", Config{}).name(), "PostTrainingDataSparsity");
  TrainingRun run(TrainerOptions().max_epochs(2), {half, most, aware, aware_b});
  run.fit();
  EXPECT_NEAR(overall_sparsity(half->report()), 0.5, 0.02);
  EXPECT_NEAR(overall_sparsity(most->report()), 0.9, 0.02);
  EXPECT_NEAR(overall_sparsity(aware->report()), 0.5, 0.02);
  EXPECT_NEAR(overall_sparsity(aware_b->report()), 0.7, 0.02);
  // Each logs its metrics under its name.
  EXPECT_NEAR(run.trainer.last_metrics().at("aware_a/data_sparsity"), 0.5, 0.02);
  EXPECT_NEAR(run.trainer.last_metrics().at("aware_b/data_sparsity"), 0.7, 0.02);
  EXPECT_TRUE(run.trainer.last_metrics().count("aware_b/sparsity/0.weight"));
  EXPECT_FALSE(run.trainer.last_metrics().count("data_sparsity"));
}

TEST(TrainingAwareDataSparsity, ApplyToModelKeepsTheLiveModelSparse) {
  auto aware = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.8}, {"sparse_block_shape", {1, 1}}}, "CubicSLScheduler",
      Config{{"delta_t", 1}, {"total_t", 3}},
      TrainingAwareDataSparsityOptions().apply_to_model(true).parameters({{"*weight"}, {}}));
  TrainingRun run(TrainerOptions().max_epochs(6), {aware});
  run.fit();
  // Pruned weights stayed zero through the momentum SGD steps of the last epochs.
  const auto live = measure_sparsity(*run.module->model());
  EXPECT_NEAR(overall_sparsity(live), 0.8, 0.01);
  for (const auto& row : live) {
    const at::Tensor mask = aware->data_sparsifier()->get_mask(sparsifier_name(row.name));
    const at::Tensor weight = run.module->model()->named_parameters()[row.name].detach();
    EXPECT_TRUE(weight.masked_select(mask.eq(0)).eq(0).all().item<bool>()) << row.name;
  }
  EXPECT_GT(run.trainer.last_metrics().at("val_acc"), 0.85) << "the network trained around its sparsity";
  // The gradient hooks are gone after training.
  at::Tensor weight = run.module->model()->named_parameters()["0.weight"];
  weight.mutable_grad() = at::Tensor();
  (weight * 2).sum().backward();
  EXPECT_TRUE(weight.grad().eq(2).all().item<bool>());
}

TEST(TrainingAwareDataSparsity, UpdatesEveryNSteps) {
  auto aware = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.5}}, "StepSLScheduler", Config{{"gamma", 1.0}},
      TrainingAwareDataSparsityOptions().update_every_n_steps(4));
  TrainingRun run(TrainerOptions().max_epochs(2), {aware});
  run.fit();
  // 12 batches per epoch, 24 steps: an update at steps 4, 8, ..., 24.
  EXPECT_EQ(run.trainer.global_step(), 24);
  EXPECT_EQ(aware->data_scheduler()->last_epoch(), 6);
}

TEST(TrainingAwareDataSparsity, ParameterSelectionSkipsExcludedNames) {
  auto aware = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", kSparsifierArgs, "StepSLScheduler", Config{},
      TrainingAwareDataSparsityOptions().parameters({{}, {"2.*"}}));
  TrainingRun run(TrainerOptions().max_epochs(1), {aware});
  run.fit();
  EXPECT_EQ(aware->data_sparsifier()->names(), (std::vector<std::string>{"0_weight", "4_weight"}));
  EXPECT_EQ(ParameterSelection({{"*weight"}, {"*norm*"}}).selects("layer_norm.weight"), false);
  EXPECT_EQ(ParameterSelection({{"*weight"}, {"*norm*"}}).selects("fc.weight"), true);
  EXPECT_EQ(ParameterSelection({{"*weight"}, {}}).selects("fc.bias"), false);
  EXPECT_EQ(sparsifier_name("a.b.weight"), "a_b_weight");
}

TEST(PostTrainingDataSparsity, ConvolutionWeightsArePrunedPerOutputChannel) {
  struct ConvModule : TrainingModule {
    torch::nn::Sequential net{torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), torch::nn::ReLU(),
                              torch::nn::Flatten(), torch::nn::Linear(8 * 6 * 6, 4)};
    std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
    at::Tensor training_step(const Batch&) override { return {}; }
    std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override { return nullptr; }
  } module;
  // Blocks of one whole 3x3x3 filter: half of the output channels go.
  PostTrainingDataSparsity post("DataNormSparsifier",
                                Config{{"sparsity_level", 0.5}, {"sparse_block_shape", {1, 27}}},
                                PostTrainingDataSparsityOptions().parameters({{"0.weight"}, {}}));
  Trainer trainer;
  post.on_fit_end(trainer, module);
  ASSERT_EQ(post.report().size(), 1u);
  EXPECT_EQ(post.report()[0].shape, (std::vector<int64_t>{8, 3, 3, 3}));
  const at::Tensor weight = post.sparsified()->named_parameters()["0.weight"];
  const at::Tensor zero_filters = weight.reshape({8, -1}).eq(0).all(1);
  EXPECT_EQ(zero_filters.sum().item<int64_t>(), 4);
  // The pruned filters are those with the lowest mean |w|.
  const at::Tensor norms = module.net->named_parameters()["0.weight"].detach().abs().reshape({8, -1}).mean(1);
  EXPECT_LE(norms.masked_select(zero_filters).max().item<float>(), norms.masked_select(~zero_filters).min().item<float>());
  at::Tensor x = torch::randn({2, 3, 8, 8});
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(post.sparsified());
  EXPECT_EQ(copy->forward(x).sizes(), (std::vector<int64_t>{2, 4}));
}

TEST(DataSparsityCallbacks, NonCloneableModelsNeedAFactory) {
  testing::PlainMlpClassifier module;
  PostTrainingDataSparsity without("DataNormSparsifier", kSparsifierArgs);
  Trainer trainer;
  const std::string message = error_of<std::invalid_argument>([&] { without.on_fit_end(trainer, module); });
  EXPECT_CONTAINS(message, "Cloneable");
  EXPECT_CONTAINS(message, "model_factory");

  PostTrainingDataSparsity with("DataNormSparsifier", kSparsifierArgs,
                                PostTrainingDataSparsityOptions().model_factory([] { return testing::PlainMlp().ptr(); }));
  with.on_fit_end(trainer, module);
  auto copy = std::dynamic_pointer_cast<testing::PlainMlpImpl>(with.sparsified());
  ASSERT_NE(copy, nullptr);
  EXPECT_NE(copy.get(), module.net_.get());
  const at::Tensor kept = copy->fc1->weight.ne(0);
  EXPECT_TRUE(torch::equal(copy->fc1->weight.masked_select(kept), module.net_->fc1->weight.detach().masked_select(kept)));
  EXPECT_GT(overall_sparsity(with.report()), 0.3);

  PostTrainingDataSparsity wrong("DataNormSparsifier", kSparsifierArgs,
                                 PostTrainingDataSparsityOptions().model_factory([] {
                                   return testing::dummy_model(8, {2}).ptr();
                                 }));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wrong.on_fit_end(trainer, module); }), "model_factory");
}

TEST(DataSparsityCallbacks, BadTypesAndArgsFailAtConstruction) {
  std::string message = error_of<std::invalid_argument>(
      [] { PostTrainingDataSparsity("NormSparsifier", Config{}); });
  EXPECT_CONTAINS(message, "'NormSparsifier'");
  EXPECT_CONTAINS(message, "DataNormSparsifier");
  message = error_of<std::invalid_argument>(
      [] { PostTrainingDataSparsity("DataNormSparsifier", Config{{"sparsity", 0.5}}); });
  EXPECT_CONTAINS(message, "'sparsity'");
  message = error_of<std::invalid_argument>([] {
    TrainingAwareDataSparsity("DataNormSparsifier", Config{}, "StepScheduler", Config{});
  });
  EXPECT_CONTAINS(message, "'StepScheduler'");
  EXPECT_CONTAINS(message, "StepSLScheduler");
  message = error_of<std::invalid_argument>([] {
    TrainingAwareDataSparsity("DataNormSparsifier", Config{}, "StepSLScheduler", Config{{"step_size", 0}});
  });
  EXPECT_CONTAINS(message, "step_size");
  message = error_of<std::invalid_argument>([] {
    TrainingAwareDataSparsity("DataNormSparsifier", Config{}, "StepSLScheduler", Config{},
                              TrainingAwareDataSparsityOptions().update_every_n_steps(-1));
  });
  EXPECT_CONTAINS(message, "update_every_n_steps");
  DummyModule module;
  Trainer trainer;
  TrainingAwareDataSparsity nothing("DataNormSparsifier", Config{}, "StepSLScheduler", Config{},
                                    TrainingAwareDataSparsityOptions().parameters({{"nope*"}, {}}));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { nothing.on_train_start(trainer, module); }),
                  "no parameter of the model is selected");
}

// Four epochs straight, or two, a checkpoint, and two more in a fresh process
// (new module, callbacks and Trainer): the same masks, levels and weights.
TEST(TrainingAwareDataSparsity, ResumedRunMatchesAnUninterruptedOne) {
  const auto dir = testing::scratch_dir("TrainingAwareResume");
  auto make_callback = [] {
    return std::make_shared<TrainingAwareDataSparsity>(
        "DataNormSparsifier", Config{{"sparsity_level", 0.7}, {"sparse_block_shape", {1, 4}}}, "CubicSLScheduler",
        Config{{"delta_t", 1}, {"total_t", 3}}, TrainingAwareDataSparsityOptions().apply_to_model(true));
  };
  auto straight = make_callback();
  TrainingRun uninterrupted(TrainerOptions().max_epochs(4), {straight});
  uninterrupted.fit();

  {
    auto first = make_callback();
    TrainingRun half(TrainerOptions().max_epochs(2).output_dir((dir / "run").string()), {first});
    half.fit();
  }
  auto resumed_callback = make_callback();
  TrainingRun resumed(TrainerOptions().max_epochs(4).resume_from((dir / "run" / "checkpoint.pt").string()),
              {resumed_callback});
  resumed.fit();

  EXPECT_EQ(resumed_callback->data_scheduler()->get_last_param(), straight->data_scheduler()->get_last_param());
  EXPECT_EQ(resumed_callback->data_scheduler()->last_epoch(), straight->data_scheduler()->last_epoch());
  for (const auto& name : straight->data_sparsifier()->names()) {
    EXPECT_TRUE(torch::equal(resumed_callback->data_sparsifier()->get_mask(name),
                             straight->data_sparsifier()->get_mask(name)))
        << name;
  }
  const auto a = uninterrupted.module->model()->named_parameters();
  const auto b = resumed.module->model()->named_parameters();
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
}

}  // namespace
}  // namespace sparsity
