// MaskGuard: pruned weights stay exactly zero under real training with each
// kind of optimizer, and the guard's hooks, masks and errors.
#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;

torch::nn::Sequential make_mlp() {
  torch::manual_seed(3);
  return torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::ReLU(), torch::nn::Linear(16, 3));
}

// A fixed regression task, so that every weight gets a nonzero gradient.
std::pair<at::Tensor, at::Tensor> task() {
  torch::manual_seed(5);
  const at::Tensor x = torch::randn({64, 8});
  const at::Tensor y = torch::randn({64, 3});
  return {x, y};
}

using OptimizerFactory = std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<at::Tensor>)>;

struct OptimizerCase {
  const char* name;
  OptimizerFactory make;
};

std::vector<OptimizerCase> optimizer_cases() {
  return {
      {"SGD momentum 0.9",
       [](std::vector<at::Tensor> p) {
         return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.05).momentum(0.9));
       }},
      {"SGD weight decay",
       [](std::vector<at::Tensor> p) {
         return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.05).weight_decay(0.1));
       }},
      {"Adam",
       [](std::vector<at::Tensor> p) {
         return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(0.01));
       }},
      {"AdamW weight decay",
       [](std::vector<at::Tensor> p) {
         return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(0.01).weight_decay(0.1));
       }},
  };
}

TEST(MaskGuard, PrunedWeightsStayZeroUnderEveryOptimizer) {
  const auto [x, y] = task();
  for (const auto& optimizer_case : optimizer_cases()) {
    SCOPED_TRACE(optimizer_case.name);
    auto model = make_mlp();
    auto optimizer = optimizer_case.make(model->parameters());
    // Momentum and moments built up while dense: what moves zeros back.
    for (int i = 0; i < 5; ++i) {
      optimizer->zero_grad();
      torch::mse_loss(model->forward(x), y).backward();
      optimizer->step();
    }
    DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(0.5));
    MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"*weight"}, {}}));
    ASSERT_EQ(guard.parameter_names(), (std::vector<std::string>{"0.weight", "2.weight"}));
    sparsifier.step();
    guard.update_masks();

    std::map<std::string, at::Tensor> before;
    for (const auto& item : model->named_parameters()) before[item.key()] = item.value().detach().clone();
    for (const auto& name : guard.parameter_names()) {
      const at::Tensor pruned = guard.mask(name) == 0;
      ASSERT_GT(pruned.sum().item<int64_t>(), 0);
      ASSERT_TRUE(before.at(name).masked_select(pruned).eq(0.0).all().item<bool>()) << name << " not zeroed";
    }

    for (int i = 0; i < 100; ++i) {
      optimizer->zero_grad();
      torch::mse_loss(model->forward(x), y).backward();
      for (const auto& name : guard.parameter_names()) {
        const at::Tensor grad = model->named_parameters()[name].grad();
        ASSERT_TRUE(grad.masked_select(guard.mask(name) == 0).eq(0.0).all().item<bool>()) << name << " step " << i;
      }
      optimizer->step();
      guard.after_step();
    }
    for (const auto& name : guard.parameter_names()) {
      const at::Tensor weight = model->named_parameters()[name].detach();
      const at::Tensor pruned = guard.mask(name) == 0;
      EXPECT_TRUE(weight.masked_select(pruned).eq(0.0).all().item<bool>()) << name;
      // The surviving weights trained (all but a few behind a dead ReLU).
      const int64_t moved = weight.masked_select(~pruned).ne(before.at(name).masked_select(~pruned)).sum().item<int64_t>();
      EXPECT_GE(static_cast<double>(moved), 0.9 * static_cast<double>((~pruned).sum().item<int64_t>())) << name;
    }
    // The unguarded biases trained too.
    EXPECT_FALSE(torch::equal(model->named_parameters()["0.bias"], before.at("0.bias")));
  }
}

// Without the re-zeroing after the step, Adam's moments and weight decay move
// pruned weights: the reason after_step() exists.
TEST(MaskGuard, HooksAloneDoNotHoldZerosUnderAdamW) {
  const auto [x, y] = task();
  auto model = make_mlp();
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(0.01).weight_decay(0.1));
  for (int i = 0; i < 5; ++i) {
    optimizer.zero_grad();
    torch::mse_loss(model->forward(x), y).backward();
    optimizer.step();
  }
  DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(0.5));
  MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"0.weight"}, {}}));
  sparsifier.step();
  guard.update_masks();
  optimizer.zero_grad();
  torch::mse_loss(model->forward(x), y).backward();
  optimizer.step();
  const at::Tensor weight = model->named_parameters()["0.weight"].detach();
  EXPECT_TRUE(weight.masked_select(guard.mask("0.weight") == 0).ne(0.0).any().item<bool>());
  guard.apply();
  EXPECT_TRUE(weight.masked_select(guard.mask("0.weight") == 0).eq(0.0).all().item<bool>());
}

TEST(MaskGuard, DestroyedGuardRemovesItsHooks) {
  const auto [x, y] = task();
  auto model = make_mlp();
  DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(0.5));
  at::Tensor mask;
  {
    MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"0.weight"}, {}}));
    sparsifier.step();
    guard.update_masks();
    mask = guard.mask("0.weight").clone();
  }
  ASSERT_GT((mask == 0).sum().item<int64_t>(), 0);
  torch::mse_loss(model->forward(x), y).backward();
  const at::Tensor grad = model->named_parameters()["0.weight"].grad();
  // The pruned weights' gradients are no longer masked.
  EXPECT_TRUE(grad.masked_select(mask == 0).ne(0.0).any().item<bool>());

  // remove() does the same while the guard lives, and apply() still works.
  MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"0.weight"}, {}}).attach(false));
  guard.remove();
  model->zero_grad();
  torch::mse_loss(model->forward(x), y).backward();
  EXPECT_TRUE(model->named_parameters()["0.weight"].grad().masked_select(mask == 0).ne(0.0).any().item<bool>());
}

TEST(MaskGuard, UpdatedMasksTakeEffect) {
  auto model = make_mlp();
  DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(0.25));
  MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"2.weight"}, {}}));
  // Built on a fresh sparsifier: all ones, nothing zeroed.
  EXPECT_EQ(guard.mask("2.weight").sum().item<double>(), 48.0);
  EXPECT_EQ(guard.mask("2.weight").scalar_type(), at::kFloat);
  sparsifier.step();
  guard.update_masks();
  const at::Tensor weight = model->named_parameters()["2.weight"].detach();
  EXPECT_EQ(weight.eq(0.0).sum().item<int64_t>(), 12);  // 25% of 48
  sparsifier.data_group("2_weight").set("sparsity_level", 0.75);
  sparsifier.step();
  EXPECT_EQ(weight.eq(0.0).sum().item<int64_t>(), 12);  // not until update_masks
  guard.update_masks();
  EXPECT_EQ(weight.eq(0.0).sum().item<int64_t>(), 36);
  EXPECT_TRUE(torch::equal(guard.mask("2.weight"), sparsifier.get_mask("2_weight").to(at::kFloat)));
}

TEST(MaskGuard, ErrorsNameThePatternOrTheParameter) {
  auto model = make_mlp();
  DataNormSparsifier sparsifier;
  const std::string none = error_of<std::invalid_argument>(
      [&] { MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"*conv*"}, {}})); });
  EXPECT_NE(none.find("*conv*"), std::string::npos) << none;
  const std::string excluded = error_of<std::invalid_argument>([&] {
    MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"*weight"}, {"*"}}).attach(false));
  });
  EXPECT_NE(excluded.find("exclude: [*]"), std::string::npos) << excluded;
  const std::string unknown = error_of<std::invalid_argument>(
      [&] { MaskGuard guard(*model, sparsifier, std::vector<std::string>{"1.weight"}); });
  EXPECT_NE(unknown.find("'1.weight'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("0.weight, 0.bias"), std::string::npos) << unknown;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { MaskGuard guard(*model, sparsifier, std::vector<std::string>{}); }),
                  "no parameter names");
  const std::string unregistered = error_of<std::invalid_argument>(
      [&] { MaskGuard guard(*model, sparsifier, std::vector<std::string>{"0.weight"}); });
  EXPECT_NE(unregistered.find("'0_weight'"), std::string::npos) << unregistered;
  MaskGuard guard(*model, sparsifier, MaskGuardOptions().parameters({{"0.weight"}, {}}));
  const std::string not_guarded = error_of<std::invalid_argument>([&] { (void)guard.mask("2.weight"); });
  EXPECT_NE(not_guarded.find("'2.weight'"), std::string::npos) << not_guarded;
}

}  // namespace
}  // namespace sparsity
