// UnitNormSparsifier (whole output units) and shrink (a smaller dense model).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "sparsity/data_scheduler/step_sl_scheduler.h"
#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/data_sparsifier/unit_norm_sparsifier.h"
#include "sparsity/structured/shrink.h"

namespace sparsity {
namespace {

// Which dim-0 units of `mask` are all ones (kept); a unit must be all ones or all zeros.
std::vector<int64_t> kept_units(const at::Tensor& mask) {
  std::vector<int64_t> kept;
  const at::Tensor flat = mask.reshape({mask.size(0), -1});
  for (int64_t u = 0; u < mask.size(0); ++u) {
    const int64_t ones = flat[u].sum().item<int64_t>();
    EXPECT_TRUE(ones == 0 || ones == flat.size(1)) << "unit " << u << " is partly masked";
    if (ones > 0) kept.push_back(u);
  }
  return kept;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument)";
}

TEST(UnitNormSparsifier, PrunesTheRowsOfLowestMeanMagnitudeAndTheirBias) {
  // Row means of |x|: 2, 0.5, 3, 1, 4, 0.25 -> the three lowest are rows 5, 1, 3.
  const at::Tensor weight = torch::tensor({{2.0f, -2.0f}, {0.5f, -0.5f}, {-3.0f, 3.0f}, {1.0f, 1.0f}, {4.0f, 4.0f},
                                           {0.0f, 0.5f}});
  const at::Tensor bias = torch::tensor({9.0f, 9.0f, 9.0f, 9.0f, 9.0f, 9.0f});
  UnitNormSparsifier s(UnitNormSparsifierOptions().sparsity_level(0.5));
  s.add_data("fc1_bias", bias);  // before its weight: the step still does the weight first
  s.add_data("fc1_weight", weight);
  s.step();
  EXPECT_EQ(kept_units(s.get_mask("fc1_weight")), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(s.get_mask("fc1_weight").sizes(), weight.sizes());
  EXPECT_EQ(s.get_mask("fc1_bias").sizes(), bias.sizes());
  EXPECT_TRUE(torch::equal(s.get_mask("fc1_bias"), torch::tensor({1, 0, 1, 0, 1, 0}, torch::kByte)));
}

TEST(UnitNormSparsifier, L2RanksByEuclideanNorm) {
  // Row 0: L1 mean 1, L2 3; row 1: L1 mean 1.5, L2 2.6. L1 prunes row 0, L2 row 1.
  const at::Tensor weight = torch::tensor({{3.0f, 0.0f, 0.0f}, {1.5f, 1.5f, 1.5f}, {5.0f, 5.0f, 5.0f}});
  for (const auto& [norm, expected] : {std::pair{Norm::L1, std::vector<int64_t>{1, 2}},
                                       std::pair{Norm::L2, std::vector<int64_t>{0, 2}}}) {
    UnitNormSparsifier s(UnitNormSparsifierOptions().sparsity_level(1.0 / 3).norm(norm));
    s.add_data("w", weight);
    s.step();
    EXPECT_EQ(kept_units(s.get_mask("w")), expected) << to_string(norm);
  }
}

TEST(UnitNormSparsifier, RoundsHalfToEvenAndBreaksTiesByLowestIndex) {
  const at::Tensor weight = torch::ones({5, 4});  // all equal: the lowest indices go first
  for (const auto& [level, pruned] : {std::pair{0.5, 2}, std::pair{0.3, 2}, std::pair{0.1, 0}, std::pair{0.7, 4},
                                      std::pair{1.5, 5}, std::pair{-1.0, 0}}) {
    UnitNormSparsifier s;
    s.add_data("w", weight, Config().set("sparsity_level", level));
    s.step();
    std::vector<int64_t> expected;
    for (int64_t u = pruned; u < 5; ++u) expected.push_back(u);
    EXPECT_EQ(kept_units(s.get_mask("w")), expected) << "level " << level;
  }
}

TEST(UnitNormSparsifier, PrunesWholeConvFilters) {
  torch::manual_seed(3);
  at::Tensor weight = torch::randn({6, 2, 3, 3});
  const std::vector<float> scale{5, 0.1f, 3, 0.2f, 4, 0.3f};
  for (int64_t f = 0; f < 6; ++f) weight[f].mul_(scale[static_cast<size_t>(f)]);
  UnitNormSparsifier s(UnitNormSparsifierOptions().sparsity_level(0.5).norm(Norm::L2));
  s.add_data("0_weight", weight);
  s.add_data("0_bias", torch::randn({6}));
  s.step();
  // The expected filters from the norms themselves.
  const at::Tensor norms = weight.reshape({6, -1}).norm(2, 1);
  const at::Tensor order = std::get<1>(norms.sort());
  std::vector<int64_t> expected;
  for (int64_t i = 3; i < 6; ++i) expected.push_back(order[i].item<int64_t>());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(expected, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(kept_units(s.get_mask("0_weight")), expected);
  EXPECT_EQ(kept_units(s.get_mask("0_bias").unsqueeze(1)), expected);
  s.squash_mask();
  EXPECT_EQ(weight[1].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(weight[0].abs().sum().item<float>(), 0.0f);
}

TEST(UnitNormSparsifier, SchedulerSteersTheLevelOfEveryName) {
  auto s = make_data_sparsifier("UnitNormSparsifier", Config().set("sparsity_level", 0.125));
  at::Tensor weight = torch::arange(1, 9, torch::kFloat).unsqueeze(1).repeat({1, 3});  // row norms ascending
  s->add_data("l_weight", weight);
  s->add_data("l_bias", torch::ones({8}));
  StepSLScheduler scheduler(*s, StepSLSchedulerOptions().step_size(1).gamma(2.0));
  s->step();
  EXPECT_EQ(kept_units(s->get_mask("l_weight")).front(), 1);  // round(0.125 * 8) = 1 unit
  for (int64_t epoch = 1; epoch <= 3; ++epoch) {
    scheduler.step();  // 0.25, 0.5, 1.0
    s->step();
    const int64_t pruned = std::min<int64_t>(8, int64_t{1} << epoch);
    EXPECT_EQ(s->data_group("l_weight").get<double>("sparsity_level"), 0.125 * (1 << epoch));
    EXPECT_EQ(static_cast<int64_t>(kept_units(s->get_mask("l_weight")).size()), 8 - pruned) << epoch;
    EXPECT_EQ(s->get_mask("l_bias").sum().item<int64_t>(), 8 - pruned) << epoch;
    if (pruned < 8) {
      EXPECT_EQ(kept_units(s->get_mask("l_weight")).front(), pruned) << epoch;
    }
  }
}

TEST(UnitNormSparsifier, RejectsDataItCannotPruneByUnits) {
  UnitNormSparsifier s;
  EXPECT_NE(error_of([&] { s.add_data("scale", torch::ones({4})); }).find("'scale'"), std::string::npos);
  EXPECT_NE(error_of([&] { s.add_data("fc_weight", torch::tensor(1.0f)); }).find("'fc_weight'"), std::string::npos);
  EXPECT_NE(error_of([&] { s.add_data("w", torch::ones({4, 2}), Config().set("norm", "L3")); }).find("L3"),
            std::string::npos);

  UnitNormSparsifier lone;
  lone.add_data("fc2_bias", torch::ones({4}));
  const std::string missing = error_of([&] { lone.step(); });
  EXPECT_NE(missing.find("'fc2_bias'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("'fc2_weight'"), std::string::npos) << missing;

  UnitNormSparsifier mismatch;
  mismatch.add_data("fc_weight", torch::ones({4, 2}));
  mismatch.add_data("fc_bias", torch::ones({3}));
  EXPECT_NE(error_of([&] { mismatch.step(); }).find("'fc_bias' has 3 entries"), std::string::npos);

  EXPECT_NE(error_of([] { UnitNormSparsifierOptions::from_config(Config().set("sparsity_levl", 0.5)); })
                .find("sparsity_levl"),
            std::string::npos);
  EXPECT_NE(error_of([] { UnitNormSparsifierOptions::from_config(Config().set("sparsity_level", 1.5)); }).find("1.5"),
            std::string::npos);
  const Config round_trip = UnitNormSparsifierOptions::from_config(
                                UnitNormSparsifierOptions().sparsity_level(0.25).norm(Norm::L2).to_config())
                                .to_config();
  EXPECT_EQ(round_trip.get<double>("sparsity_level"), 0.25);
  EXPECT_EQ(round_trip.get<std::string>("norm"), "L2");
}

// ---- shrink ----

// Registers every Linear/Conv2d but the last with a UnitNormSparsifier at
// `level`, prunes, and squashes the masks into the model.
void prune_units(const torch::nn::Sequential& model, double level) {
  UnitNormSparsifier s(UnitNormSparsifierOptions().sparsity_level(level));
  std::vector<std::string> weighted;
  for (const auto& child : model->named_children()) {
    if (child.value()->as<torch::nn::LinearImpl>() || child.value()->as<torch::nn::Conv2dImpl>()) {
      weighted.push_back(child.key());
    }
  }
  weighted.pop_back();
  for (const auto& name : weighted) {
    for (const auto& p : model->named_children()[name]->named_parameters(false)) {
      s.add_data(name + "_" + p.key(), p.value());
    }
  }
  s.step();
  s.squash_mask();
}

template <class BatchNormImpl>
void randomize_batchnorm(BatchNormImpl& bn) {
  torch::NoGradGuard no_grad;
  const int64_t n = bn.options.num_features();
  bn.running_mean.copy_(torch::randn({n}) * 0.5);
  bn.running_var.copy_(torch::rand({n}) + 0.5);
  bn.weight.copy_(torch::randn({n}));
  bn.bias.copy_(torch::randn({n}));
}

std::vector<at::Tensor> snapshot(const torch::nn::Module& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : model.buffers()) out.push_back(b.clone());
  return out;
}

void expect_unchanged(const torch::nn::Module& model, const std::vector<at::Tensor>& before) {
  const auto after = snapshot(model);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i])) << "tensor " << i;
}

void expect_same_outputs(torch::nn::Sequential model, torch::nn::Sequential shrunk, const at::Tensor& x) {
  model->eval();
  shrunk->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor expected = model->forward(x), got = shrunk->forward(x);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max().item<float>();
}

TEST(Shrink, MlpLosesItsPrunedUnitsAndKeepsItsOutputs) {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(12, 16), torch::nn::ReLU(), torch::nn::Linear(16, 8),
                              torch::nn::Tanh(), torch::nn::Dropout(0.3), torch::nn::Linear(8, 4));
  prune_units(model, 0.5);
  model->eval();
  const auto before = snapshot(*model);
  const ShrinkResult result = shrink(model);
  expect_unchanged(*model, before);

  ASSERT_EQ(result.model->size(), 6u);
  const auto* l0 = result.model->ptr(0)->as<torch::nn::LinearImpl>();
  const auto* l2 = result.model->ptr(2)->as<torch::nn::LinearImpl>();
  const auto* l5 = result.model->ptr(5)->as<torch::nn::LinearImpl>();
  ASSERT_TRUE(l0 && l2 && l5);
  EXPECT_EQ(l0->weight.sizes(), (c10::IntArrayRef{8, 12}));
  EXPECT_EQ(l2->weight.sizes(), (c10::IntArrayRef{4, 8}));
  EXPECT_EQ(l5->weight.sizes(), (c10::IntArrayRef{4, 4}));
  EXPECT_FALSE(result.model->is_training());

  ASSERT_EQ(result.report.layers.size(), 3u);
  EXPECT_EQ(result.report.layers[0].units_before, 16);
  EXPECT_EQ(result.report.layers[0].units_after, 8);
  EXPECT_EQ(result.report.layers[1].units_after, 4);
  EXPECT_EQ(result.report.layers[2].units_after, 4);  // the output layer keeps all
  EXPECT_EQ(result.report.units_removed(), 12);
  EXPECT_EQ(result.report.parameters_before, count_parameters(*model));
  EXPECT_EQ(result.report.parameters_after, (12 * 8 + 8) + (8 * 4 + 4) + (4 * 4 + 4));
  expect_same_outputs(model, result.model, torch::randn({32, 12}));
}

TEST(Shrink, OutputLayerKeepsItsDeadUnits) {
  torch::manual_seed(1);
  torch::nn::Linear head(6, 5);
  torch::nn::Sequential model(torch::nn::Linear(4, 6), torch::nn::ReLU(), head);
  {
    torch::NoGradGuard no_grad;
    head->weight[2].zero_();
    head->bias[2].zero_();
  }
  const ShrinkResult result = shrink(model);
  EXPECT_EQ(result.report.units_removed(), 0);
  EXPECT_EQ(result.model->ptr(2)->as<torch::nn::LinearImpl>()->weight.size(0), 5);
  expect_same_outputs(model, result.model, torch::randn({3, 4}));
}

// A CNN whose dead filters feed BatchNorm (a nonzero constant), pooling, an
// unpadded Conv2d and, through Flatten, a Linear: every constant is folded.
TEST(Shrink, CnnWithBatchNormFoldsTheDeadUnitsConstants) {
  torch::manual_seed(2);
  torch::nn::BatchNorm2d bn1(8), bn2(6);
  randomize_batchnorm(*bn1);
  randomize_batchnorm(*bn2);
  torch::nn::Sequential model(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), bn1, torch::nn::ReLU(),
                              torch::nn::MaxPool2d(2), torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 6, 3)), bn2,
                              torch::nn::ReLU(), torch::nn::Flatten(), torch::nn::Linear(6 * 3 * 3, 10));
  prune_units(model, 0.5);
  model->eval();
  const auto before = snapshot(*model);
  const ShrinkResult result = shrink(model);
  expect_unchanged(*model, before);

  EXPECT_EQ(result.model->ptr(0)->as<torch::nn::Conv2dImpl>()->weight.sizes(), (c10::IntArrayRef{4, 3, 3, 3}));
  EXPECT_EQ(result.model->ptr(1)->as<torch::nn::BatchNorm2dImpl>()->running_mean.size(0), 4);
  EXPECT_EQ(result.model->ptr(4)->as<torch::nn::Conv2dImpl>()->weight.sizes(), (c10::IntArrayRef{3, 4, 3, 3}));
  EXPECT_EQ(result.model->ptr(5)->as<torch::nn::BatchNorm2dImpl>()->running_var.size(0), 3);
  EXPECT_EQ(result.model->ptr(8)->as<torch::nn::LinearImpl>()->weight.sizes(), (c10::IntArrayRef{10, 3 * 9}));
  EXPECT_TRUE(result.report.kept_for_exactness.empty());
  EXPECT_LT(result.report.parameters_after, result.report.parameters_before);
  expect_same_outputs(model, result.model, torch::randn({5, 3, 12, 12}));
}

// Before a zero-padded Conv2d a dead unit is removed only when its constant
// after BatchNorm and ReLU is 0; the others stay, and the report says so.
TEST(Shrink, PaddedConvKeepsDeadUnitsWithANonzeroConstant) {
  torch::manual_seed(4);
  torch::nn::Conv2d conv1(torch::nn::Conv2dOptions(3, 4, 3).padding(1));
  torch::nn::BatchNorm2d bn(4);
  randomize_batchnorm(*bn);
  {
    torch::NoGradGuard no_grad;
    conv1->weight[1].zero_();
    conv1->bias[1].zero_();
    conv1->weight[3].zero_();
    conv1->bias[3].zero_();
    // Unit 1: relu(beta - gamma*mean/sqrt(var+eps)) = relu(2) = 2; unit 3: relu(-2) = 0.
    bn->running_mean[1] = 0.0;
    bn->bias[1] = 2.0;
    bn->running_mean[3] = 0.0;
    bn->bias[3] = -2.0;
  }
  torch::nn::Sequential model(conv1, bn, torch::nn::ReLU(),
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 2, 3).padding(1)));
  model->eval();
  const ShrinkResult result = shrink(model);
  EXPECT_EQ(result.report.layers[0].units_after, 3);  // unit 3 removed, unit 1 kept
  ASSERT_EQ(result.report.kept_for_exactness.size(), 1u);
  EXPECT_NE(result.report.kept_for_exactness[0].find("'3'"), std::string::npos);
  expect_same_outputs(model, result.model, torch::randn({2, 3, 7, 7}));

  // Without padding both go, unit 1's constant folded into the next bias.
  torch::nn::Sequential unpadded(conv1, bn, torch::nn::ReLU(), torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 2, 3)));
  unpadded->eval();
  const ShrinkResult folded = shrink(unpadded);
  EXPECT_EQ(folded.report.layers[0].units_after, 2);
  EXPECT_TRUE(folded.report.kept_for_exactness.empty());
  expect_same_outputs(unpadded, folded.model, torch::randn({2, 3, 7, 7}));
}

// Zeroes the weight rows and bias entries of `units` of the Linear or Conv2d at `index`.
void kill_units(const torch::nn::Sequential& model, size_t index, const std::vector<int64_t>& units) {
  torch::NoGradGuard no_grad;
  for (const auto& p : model->ptr(index)->parameters(false)) {
    for (int64_t u : units) p[u].zero_();
  }
}

TEST(Shrink, BatchNorm1dConstantsFoldIntoTheNextLinear) {
  torch::manual_seed(5);
  torch::nn::BatchNorm1d bn(8);
  randomize_batchnorm(*bn);
  torch::nn::Sequential model(torch::nn::Linear(6, 8), bn, torch::nn::GELU(), torch::nn::Linear(8, 3));
  kill_units(model, 0, {1, 4});
  model->eval();
  const ShrinkResult result = shrink(model);
  EXPECT_EQ(result.report.layers[0].units_after, 6);
  EXPECT_EQ(result.model->ptr(1)->as<torch::nn::BatchNorm1dImpl>()->running_mean.size(0), 6);
  EXPECT_EQ(result.model->ptr(3)->as<torch::nn::LinearImpl>()->weight.sizes(), (c10::IntArrayRef{3, 6}));
  expect_same_outputs(model, result.model, torch::randn({16, 6}));
}

// An AvgPool2d that averages over zero padding turns a constant channel into
// one that is not constant at the borders: there the dead unit stays.
TEST(Shrink, PaddedAvgPoolKeepsDeadUnitsWithANonzeroConstant) {
  torch::manual_seed(6);
  for (const int64_t padding : {1, 0}) {
    torch::nn::BatchNorm2d bn(4);
    randomize_batchnorm(*bn);
    {
      torch::NoGradGuard no_grad;
      bn->bias[2] = 3.0;  // the dead unit's constant after ReLU: clearly not 0
      bn->running_mean[2] = 0.0;
    }
    torch::nn::Sequential model(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3)), bn, torch::nn::ReLU(),
                                torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(3).stride(1).padding(padding)),
                                torch::nn::Flatten(), torch::nn::Linear(4 * (4 + 2 * padding) * (4 + 2 * padding), 5));
    kill_units(model, 0, {2});
    model->eval();
    const ShrinkResult result = shrink(model);
    EXPECT_EQ(result.report.layers[0].units_after, padding > 0 ? 4 : 3) << "padding " << padding;
    EXPECT_EQ(result.report.kept_for_exactness.size(), padding > 0 ? 1u : 0u) << "padding " << padding;
    expect_same_outputs(model, result.model, torch::randn({3, 2, 8, 8}));
  }
}

TEST(Shrink, RejectsWhatItCannotFollowNamingTheLayer) {
  const std::string not_sequential = error_of([] { shrink(*torch::nn::Linear(3, 2)); });
  EXPECT_NE(not_sequential.find("torch::nn::Linear"), std::string::npos) << not_sequential;
  EXPECT_NE(not_sequential.find("Sequential"), std::string::npos) << not_sequential;

  const auto with_dead_unit = [](torch::nn::Sequential model) {
    torch::NoGradGuard no_grad;
    auto* first = model->ptr(0)->as<torch::nn::LinearImpl>();
    first->weight[0].zero_();
    first->bias[0].zero_();
    return model;
  };
  const auto softmax = with_dead_unit(
      torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::Softmax(1), torch::nn::Linear(4, 2)));
  const std::string message = error_of([&] { shrink(softmax); });
  EXPECT_NE(message.find("layer '1' (torch::nn::Softmax)"), std::string::npos) << message;
  EXPECT_NE(message.find("'0' (torch::nn::Linear)"), std::string::npos) << message;

  const auto layer_norm = with_dead_unit(torch::nn::Sequential(
      torch::nn::Linear(3, 4), torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})), torch::nn::Linear(4, 2)));
  EXPECT_NE(error_of([&] { shrink(layer_norm); }).find("layer '1' (torch::nn::LayerNorm)"), std::string::npos);

  const auto flatten = with_dead_unit(
      torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::Flatten(torch::nn::FlattenOptions().start_dim(0)),
                            torch::nn::Linear(4, 2)));
  EXPECT_NE(error_of([&] { shrink(flatten); }).find("Flatten(0, -1)"), std::string::npos);

  torch::nn::Sequential grouped(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 1)),
                                torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 2, 1).groups(2)));
  kill_units(grouped, 0, {0});
  const std::string groups = error_of([&] { shrink(grouped); });
  EXPECT_NE(groups.find("layer '1' (torch::nn::Conv2d): a grouped Conv2d (groups 2)"), std::string::npos) << groups;

  torch::nn::BatchNorm1d batch_stats(torch::nn::BatchNorm1dOptions(4).track_running_stats(false));
  const auto no_running_stats =
      with_dead_unit(torch::nn::Sequential(torch::nn::Linear(3, 4), batch_stats, torch::nn::Linear(4, 2)));
  const std::string stats = error_of([&] { shrink(no_running_stats); });
  EXPECT_NE(stats.find("layer '1' (torch::nn::BatchNorm1d)"), std::string::npos) << stats;
  EXPECT_NE(stats.find("running stats"), std::string::npos) << stats;

  // Without a dead unit nothing is removed and any layer is copied as it is.
  torch::nn::Sequential untouched(torch::nn::Linear(3, 4), torch::nn::Softmax(1), torch::nn::Linear(4, 2));
  EXPECT_EQ(shrink(untouched).report.units_removed(), 0);
}

}  // namespace
}  // namespace sparsity
