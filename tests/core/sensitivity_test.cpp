// Sensitivity analysis: exact tables on a model whose metric is computed by
// hand, the order in which values are pruned, bit-identical restoring (also
// when evaluate throws), the call count, suggest_levels against a brute-force
// search, and the errors.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;

const std::vector<double> kLevels = {0.1, 0.3, 0.5, 0.7, 0.9, 1.0};

// fc1.weight = [1, 3, 1, -2, -1] (ties at |1|: flat indices 0, 2, 4),
// fc2.weight = [[0.5, -4], [-0.0, 2]], biases 0.25 and [0, 0].
struct TwoLayers : torch::nn::Module {
  TwoLayers() {
    fc1 = register_module("fc1", torch::nn::Linear(5, 1));
    fc2 = register_module("fc2", torch::nn::Linear(2, 2));
    torch::NoGradGuard no_grad;
    fc1->weight.copy_(torch::tensor({1.f, 3.f, 1.f, -2.f, -1.f}).reshape({1, 5}));
    fc1->bias.fill_(0.25);
    fc2->weight.copy_(torch::tensor({0.5f, -4.f, -0.0f, 2.f}).reshape({2, 2}));
    fc2->bias.zero_();
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// The metric of the hand-computed tables: the sum of every parameter (exact
// in double for these values).
double parameter_sum(torch::nn::Module& model) {
  double sum = 0;
  for (const auto& p : model.parameters()) sum += p.detach().to(at::kDouble).sum().item<double>();
  return sum;
}

// Every byte of every parameter's storage, and where it lives.
struct Snapshot {
  std::vector<std::string> names;
  std::vector<const void*> pointers;
  std::vector<std::vector<char>> bytes;
};

Snapshot snapshot(torch::nn::Module& model) {
  Snapshot s;
  for (const auto& item : model.named_parameters()) {
    const at::Tensor& p = item.value();
    s.names.push_back(item.key());
    s.pointers.push_back(p.data_ptr());
    const auto* begin = static_cast<const char*>(p.storage().data());
    s.bytes.emplace_back(begin, begin + p.storage().nbytes());
  }
  return s;
}

void expect_identical(const Snapshot& before, torch::nn::Module& model) {
  const Snapshot after = snapshot(model);
  ASSERT_EQ(before.names, after.names);
  for (size_t i = 0; i < before.names.size(); ++i) {
    SCOPED_TRACE(before.names[i]);
    EXPECT_EQ(before.pointers[i], after.pointers[i]);
    ASSERT_EQ(before.bytes[i].size(), after.bytes[i].size());
    EXPECT_EQ(std::memcmp(before.bytes[i].data(), after.bytes[i].data(), before.bytes[i].size()), 0);
  }
}

TEST(Sensitivity, HandComputedTableWithTiesAndRounding) {
  TwoLayers model;
  int calls = 0;
  const SensitivityTable table = sensitivity_analysis(
      model,
      [&] {
        ++calls;
        return parameter_sum(model);
      },
      SensitivityOptions().levels(kLevels));

  EXPECT_EQ(calls, 1 + 2 * 6);
  EXPECT_EQ(table.layers, (std::vector<std::string>{"fc1.weight", "fc2.weight"}));  // biases not selected
  EXPECT_EQ(table.numels, (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(table.levels, kLevels);
  EXPECT_EQ(table.baseline, 0.75);
  // fc1 (5 values): k = 0, 2 (1.5 to even), 2 (2.5 to even), 4 (3.5), 4 (4.5), 5;
  // the three |1| are pruned in index order: 1 (index 0), then 1 (index 2), then -1.
  EXPECT_EQ(table.metric[0], (std::vector<double>{0.75, -1.25, -1.25, 1.75, 1.75, -1.25}));
  // fc2 (4 values): k = 0, 1, 2, 3, 4, 4; order -0.0, 0.5, 2, -4.
  EXPECT_EQ(table.metric[1], (std::vector<double>{0.75, 0.75, 0.25, -1.75, 2.25, 2.25}));
  EXPECT_EQ(table.loss(0, 1), 2.0);
  EXPECT_EQ(table.loss(0, 3), -1.0);
  EXPECT_EQ(table.loss(1, 3), 2.5);

  EXPECT_EQ(table.to_csv(),
            "layer,numel,level,metric,loss\n"
            "fc1.weight,5,0.1,0.75,0.0\n"
            "fc1.weight,5,0.3,-1.25,2.0\n"
            "fc1.weight,5,0.5,-1.25,2.0\n"
            "fc1.weight,5,0.7,1.75,-1.0\n"
            "fc1.weight,5,0.9,1.75,-1.0\n"
            "fc1.weight,5,1.0,-1.25,2.0\n"
            "fc2.weight,4,0.1,0.75,0.0\n"
            "fc2.weight,4,0.3,0.75,0.0\n"
            "fc2.weight,4,0.5,0.25,0.5\n"
            "fc2.weight,4,0.7,-1.75,2.5\n"
            "fc2.weight,4,0.9,2.25,-1.5\n"
            "fc2.weight,4,1.0,2.25,-1.5\n");
  EXPECT_EQ(parameter_sum(model), 0.75);
}

TEST(Sensitivity, DefaultOptionsAndCallCount) {
  EXPECT_EQ(SensitivityOptions().levels(), (std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95}));
  EXPECT_EQ(SensitivityOptions().parameters().include, std::vector<std::string>{"*weight"});
  EXPECT_TRUE(SensitivityOptions().parameters().exclude.empty());

  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Linear(6, 5), torch::nn::ReLU(), torch::nn::Linear(5, 4), torch::nn::ReLU(),
                            torch::nn::Linear(4, 2));
  int calls = 0;
  const SensitivityTable table = sensitivity_analysis(*net, [&] { return static_cast<double>(++calls); });
  EXPECT_EQ(calls, 1 + 3 * 10);
  EXPECT_EQ(table.layers, (std::vector<std::string>{"0.weight", "2.weight", "4.weight"}));
  EXPECT_EQ(table.baseline, 1.0);
  EXPECT_EQ(table.metric[2].back(), 31.0);  // layer by layer, levels in order

  calls = 0;
  sensitivity_analysis(*net, [&] { return static_cast<double>(++calls); },
                       SensitivityOptions().levels({0.5}).parameters({{"*"}, {"4.*"}}));
  EXPECT_EQ(calls, 1 + 4 * 1);  // 0.weight, 0.bias, 2.weight, 2.bias
}

// Records the parameter at each call; the expected zeros follow |value|
// ascending, ties by flat index, NaN last.
std::vector<int64_t> expected_order(const std::vector<double>& values) {
  std::vector<int64_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double x = std::fabs(values[static_cast<size_t>(a)]), y = std::fabs(values[static_cast<size_t>(b)]);
    if (std::isnan(x)) return false;
    return std::isnan(y) || x < y;
  });
  return order;
}

struct OneParameter : torch::nn::Module {
  OneParameter(const at::Tensor& values, bool transposed) {
    at::Tensor storage = transposed ? torch::empty({values.size(1), values.size(0)}, values.options()).t()
                                    : torch::empty(values.sizes(), values.options());
    storage.copy_(values);
    w = register_parameter("w", storage);
  }
  at::Tensor w;
};

TEST(Sensitivity, PruningOrderNanInfSignedZeroAnyDtypeAndLayout) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {nan, 2, -0.0, inf, -2, 0.0, 1.0 / 1024, 5};
  const std::vector<int64_t> order = expected_order(values);
  ASSERT_EQ(order, (std::vector<int64_t>{2, 5, 6, 1, 4, 7, 3, 0}));
  std::vector<double> levels;
  for (int k = 1; k <= 8; ++k) levels.push_back(k / 8.0);

  for (at::ScalarType dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    for (bool transposed : {false, true}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + (transposed ? " transposed" : " contiguous"));
      const at::Tensor original = torch::tensor(values, at::kDouble).to(dtype).reshape({2, 4});
      OneParameter model(original, transposed);
      ASSERT_EQ(model.w.is_contiguous(), !transposed);
      const Snapshot before = snapshot(model);
      std::vector<at::Tensor> seen;
      const SensitivityTable table = sensitivity_analysis(
          model,
          [&] {
            seen.push_back(model.w.detach().clone());
            return 1.0;
          },
          SensitivityOptions().levels(levels).parameters({{"w"}, {}}));
      ASSERT_EQ(seen.size(), 9u);
      EXPECT_EQ(table.numels, std::vector<int64_t>{8});
      for (size_t j = 0; j < seen.size(); ++j) {
        SCOPED_TRACE("call " + std::to_string(j));
        at::Tensor expected = original.clone().reshape({-1});
        for (size_t z = 0; z < j; ++z) expected[order[z]] = 0;  // +0.0
        // Compared as bits: -0.0, +0.0 and NaN told apart.
        const at::Tensor got = seen[j].reshape({-1}).contiguous();
        const auto bytes = static_cast<size_t>(got.numel() * got.element_size());
        EXPECT_EQ(std::memcmp(got.data_ptr(), expected.contiguous().data_ptr(), bytes), 0)
            << seen[j] << "\nexpected\n" << expected.reshape({2, 4});
      }
      expect_identical(before, model);
    }
  }
}

// What the analysis measures at each level is what a DataNormSparsifier over
// (1, 1) blocks at that level prunes (docs/sensitivity.md applies plans so).
TEST(Sensitivity, PrunesWhatDataNormSparsifierWithUnitBlocksPrunes) {
  torch::manual_seed(2);
  // Magnitudes 1..3 only: ties everywhere, no zeros.
  const at::Tensor values = torch::randint(1, 4, {6, 7}).to(at::kFloat) * (torch::randint(0, 2, {6, 7}) * 2 - 1);
  OneParameter model(values, /*transposed=*/false);
  const std::vector<double> levels = {0.1, 0.25, 0.5, 0.6, 0.75, 0.9};
  std::vector<at::Tensor> seen;
  sensitivity_analysis(
      model,
      [&] {
        seen.push_back(model.w.detach().clone());
        return 1.0;
      },
      SensitivityOptions().levels(levels).parameters({{"w"}, {}}));
  ASSERT_EQ(seen.size(), levels.size() + 1);
  for (size_t j = 0; j < levels.size(); ++j) {
    SCOPED_TRACE("level " + float_repr(levels[j]));
    at::Tensor data = values.clone();
    DataNormSparsifier sparsifier(
        DataNormSparsifierOptions().sparsity_level(levels[j]).sparse_block_shape({1, 1}).zeros_per_block(1));
    sparsifier.add_data("w", data);
    sparsifier.step();
    const at::Tensor expected = values.masked_fill(sparsifier.get_mask("w") == 0, 0);
    EXPECT_TRUE(torch::equal(seen[j + 1], expected)) << seen[j + 1] << "\nexpected\n" << expected;
  }
}

// Parameters of three dtypes holding -0.0, NaNs with payloads and infinities.
struct Awkward : torch::nn::Module {
  Awkward() {
    uint32_t quiet_payload = 0x7fc00001u, negative_payload = 0xffc00123u;
    float nan1, nan2;
    std::memcpy(&nan1, &quiet_payload, 4);
    std::memcpy(&nan2, &negative_payload, 4);
    a = register_parameter("a_weight", torch::tensor({-0.0f, nan1, 3.f, -0.0f, nan2, -1.f, 0.0f, 1e-30f}).reshape({2, 4}));
    b = register_parameter("b_weight", torch::tensor({-0.0, -std::numeric_limits<double>::infinity(), 7.0, -7.0, 1e-300}, at::kDouble));
    c = register_parameter("c_weight", torch::tensor({-0.0f, 1.f, nan2, -2.f, 0.5f, -0.5f}).to(at::kHalf));
    d = register_parameter("d_weight", torch::randn({3, 5}).t());  // not contiguous
  }
  at::Tensor a, b, c, d;
};

TEST(Sensitivity, RestoresEveryByteInPlace) {
  Awkward model;
  ASSERT_EQ(model.b.scalar_type(), at::kDouble);
  ASSERT_EQ(model.c.scalar_type(), at::kHalf);
  ASSERT_FALSE(model.d.is_contiguous());
  const Snapshot before = snapshot(model);
  int calls = 0;
  const SensitivityTable table = sensitivity_analysis(
      model,
      [&] {
        ++calls;
        int64_t zeros = 0;
        for (const auto& p : model.parameters()) zeros += (p == 0).sum().item<int64_t>();
        return static_cast<double>(zeros);
      },
      SensitivityOptions().levels({0.2, 0.5, 0.9, 1.0}));
  EXPECT_EQ(calls, 1 + 4 * 4);
  expect_identical(before, model);
  // 5 zeros to start with (-0.0 and 0.0 count); level 1.0 of a_weight zeroes all 8 of its values.
  EXPECT_EQ(table.baseline, 5.0);
  EXPECT_EQ(table.metric[0][3], 5.0 - 3 + 8);
}

struct Boom : std::runtime_error {
  Boom() : std::runtime_error("boom") {}
};

TEST(Sensitivity, RestoresWhenEvaluateThrowsOrReturnsNonFinite) {
  for (int fail_at : {2, 3, 7, 12, 13, 17}) {  // a layer's first, middle and last level; 14-17: the transposed d_weight
    SCOPED_TRACE("call " + std::to_string(fail_at));
    Awkward model;
    const Snapshot before = snapshot(model);
    int calls = 0;
    EXPECT_THROW(sensitivity_analysis(
                     model,
                     [&] {
                       if (++calls == fail_at) throw Boom();
                       return 1.0;
                     },
                     SensitivityOptions().levels({0.2, 0.5, 0.9, 1.0})),
                 Boom);
    EXPECT_EQ(calls, fail_at);
    expect_identical(before, model);
  }

  TwoLayers model;
  const Snapshot before = snapshot(model);
  int calls = 0;
  // Call 1 + 6 + 3: fc2.weight at its third level, 0.5.
  const std::string message = error_of<std::invalid_argument>([&] {
    sensitivity_analysis(
        model, [&] { return ++calls == 10 ? std::numeric_limits<double>::quiet_NaN() : 1.0; },
        SensitivityOptions().levels(kLevels));
  });
  EXPECT_CONTAINS(message, "'fc2.weight'");
  EXPECT_CONTAINS(message, "level 0.5");
  EXPECT_CONTAINS(message, "nan");
  expect_identical(before, model);

  calls = 0;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    sensitivity_analysis(model, [&] { return std::numeric_limits<double>::infinity(); });
                  }),
                  "inf for the baseline");
}

TEST(Sensitivity, AnalysisErrorsNameTheValue) {
  TwoLayers model;
  int calls = 0;
  const auto run = [&](const SensitivityOptions& options) {
    return error_of<std::invalid_argument>([&] {
      sensitivity_analysis(
          model,
          [&] {
            ++calls;
            return 1.0;
          },
          options);
    });
  };
  EXPECT_CONTAINS(run(SensitivityOptions().levels({})), "no levels");
  EXPECT_CONTAINS(run(SensitivityOptions().levels({0.0, 0.5})), "level 0.0 (index 0) is outside (0, 1]");
  EXPECT_CONTAINS(run(SensitivityOptions().levels({0.5, 1.5})), "level 1.5 (index 1) is outside (0, 1]");
  EXPECT_CONTAINS(run(SensitivityOptions().levels({0.5, std::nan("")})), "level nan (index 1)");
  EXPECT_CONTAINS(run(SensitivityOptions().levels({0.5, 0.5})), "0.5 (index 1) follows 0.5");
  EXPECT_CONTAINS(run(SensitivityOptions().levels({0.6, 0.3})), "0.3 (index 1) follows 0.6");
  EXPECT_CONTAINS(run(SensitivityOptions().parameters({{"*nothing*"}, {"fc1.*"}})),
                  "include: [*nothing*], exclude: [fc1.*]");

  model.register_parameter("steps", torch::zeros({3}, at::kLong), /*requires_grad=*/false);
  const std::string message = run(SensitivityOptions().parameters({{"*"}, {}}));
  EXPECT_CONTAINS(message, "'steps'");
  EXPECT_CONTAINS(message, "Long");
  EXPECT_EQ(calls, 0);  // every error comes before the first evaluation

  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { sensitivity_analysis(model, {}); }), "evaluate");
}

TEST(Sensitivity, TableLossAndCsvErrors) {
  SensitivityTable table;
  table.layers = {"a,\"b\"", "c"};
  table.numels = {3, 4};
  table.levels = {0.5};
  table.baseline = 1;
  table.metric = {{0.5}, {0.25}};
  EXPECT_EQ(table.to_csv(), "layer,numel,level,metric,loss\n\"a,\"\"b\"\"\",3,0.5,0.5,0.5\nc,4,0.5,0.25,0.75\n");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { table.loss(2, 0); }), "layer index 2");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { table.loss(1, 1); }), "level index 1");
  table.metric[1].push_back(0.0);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { table.to_csv(); }), "metric row 1 ('c') has 2 values for 1 levels");
  table.metric.pop_back();
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { table.to_csv(); }), "2 layers, 2 numels, 1 metric rows");
}

// A table from losses: baseline 1, metric = 1 - loss.
SensitivityTable make_table(std::vector<int64_t> numels, std::vector<double> levels,
                            const std::vector<std::vector<double>>& losses) {
  SensitivityTable table;
  for (size_t i = 0; i < numels.size(); ++i) table.layers.push_back("layer" + std::to_string(i));
  table.numels = std::move(numels);
  table.levels = std::move(levels);
  table.baseline = 1;
  for (const auto& row : losses) {
    std::vector<double> metric;
    for (double loss : row) metric.push_back(1 - loss);
    table.metric.push_back(metric);
  }
  return table;
}

int64_t count_at(int64_t numel, double level) { return static_cast<int64_t>(std::nearbyint(level * numel)); }

// The least sum of losses over every combination (dense or a level per layer)
// that prunes at least `needed` values; infinity when none does.
double brute_force(const SensitivityTable& table, int64_t needed) {
  const size_t layers = table.layers.size(), options = table.levels.size() + 1;
  std::vector<size_t> pick(layers, 0);
  double best = std::numeric_limits<double>::infinity();
  while (true) {
    int64_t pruned = 0;
    double loss = 0;
    for (size_t i = 0; i < layers; ++i) {
      if (pick[i] == 0) continue;
      pruned += count_at(table.numels[i], table.levels[pick[i] - 1]);
      loss += table.loss(i, pick[i] - 1);
    }
    if (pruned >= needed) best = std::min(best, loss);
    size_t i = 0;
    while (i < layers && ++pick[i] == options) pick[i++] = 0;
    if (i == layers) return best;
  }
}

int64_t total_of(const SensitivityTable& table) {
  int64_t total = 0;
  for (int64_t n : table.numels) total += n;
  return total;
}

// What the suggestion itself prunes and costs, recomputed from the table.
void check_consistent(const SensitivityTable& table, const LevelSuggestion& s, int64_t needed) {
  ASSERT_EQ(s.levels.size(), table.layers.size());
  int64_t pruned = 0;
  double loss = 0;
  for (size_t i = 0; i < s.levels.size(); ++i) {
    if (s.levels[i] == 0) continue;
    const auto it = std::find(table.levels.begin(), table.levels.end(), s.levels[i]);
    ASSERT_NE(it, table.levels.end()) << s.levels[i];
    pruned += count_at(table.numels[i], s.levels[i]);
    loss += table.loss(i, static_cast<size_t>(it - table.levels.begin()));
  }
  EXPECT_GE(pruned, needed);
  EXPECT_EQ(s.sparsity, static_cast<double>(pruned) / static_cast<double>(total_of(table)));
  EXPECT_NEAR(s.predicted_loss, loss, 1e-12);
}

TEST(Sensitivity, SuggestLevelsHandChecked) {
  const SensitivityTable table = make_table({100, 300}, {0.5, 0.9}, {{0.0625, 0.5}, {0.125, 0.25}});
  LevelSuggestion s = suggest_levels(table, 0.0);
  EXPECT_EQ(s.levels, (std::vector<double>{0, 0}));
  EXPECT_EQ(s.predicted_loss, 0.0);
  EXPECT_EQ(s.sparsity, 0.0);
  EXPECT_EQ(s.unit, 1);
  // 200 values: both at 0.5 (0.1875) beats 300 · 0.9 alone (0.25).
  s = suggest_levels(table, 0.5);
  EXPECT_EQ(s.levels, (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(s.predicted_loss, 0.1875);
  EXPECT_EQ(s.sparsity, 0.5);
  // 240 values: 300 · 0.9 alone (0.25) beats 0.5 + 0.9 (0.3125) and 0.9 + 0.5 (0.625).
  s = suggest_levels(table, 0.6);
  EXPECT_EQ(s.levels, (std::vector<double>{0, 0.9}));
  EXPECT_EQ(s.predicted_loss, 0.25);
  EXPECT_EQ(s.sparsity, 270.0 / 400);
  s = suggest_levels(table, 0.9);
  EXPECT_EQ(s.levels, (std::vector<double>{0.9, 0.9}));
  EXPECT_EQ(s.sparsity, 0.9);
  // 0.7 · 10 is 7.000000000000001 in doubles: 7 values are enough.
  s = suggest_levels(make_table({10}, {0.7, 0.8}, {{0.5, 0.25}}), 0.7);
  EXPECT_EQ(s.levels, std::vector<double>{0.8});  // cheaper and prunes more
  s = suggest_levels(make_table({10}, {0.7, 0.8}, {{0.25, 0.5}}), 0.7);
  EXPECT_EQ(s.levels, std::vector<double>{0.7});

  // Negative losses (pruning helped) are taken even at target 0.
  TwoLayers model;
  const SensitivityTable measured =
      sensitivity_analysis(model, [&] { return parameter_sum(model); }, SensitivityOptions().levels(kLevels));
  s = suggest_levels(measured, 0.0);
  EXPECT_EQ(s.levels, (std::vector<double>{0.7, 0.9}));  // ties (0.7 and 0.9; 0.9 and 1.0) to the lower level
  EXPECT_EQ(s.predicted_loss, -2.5);
  EXPECT_EQ(s.sparsity, 8.0 / 9);
}

TEST(Sensitivity, SuggestLevelsMatchesBruteForceOnRandomTables) {
  std::mt19937 rng(1234);
  const auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 300; ++trial) {
    const int layers = uniform(1, 5), levels_count = uniform(1, 4);
    std::vector<double> grid;
    for (int g = 1; g <= 20; ++g) grid.push_back(g / 20.0);
    std::shuffle(grid.begin(), grid.end(), rng);
    std::vector<double> levels(grid.begin(), grid.begin() + levels_count);
    std::sort(levels.begin(), levels.end());
    std::vector<int64_t> numels;
    std::vector<std::vector<double>> losses;
    for (int i = 0; i < layers; ++i) {
      numels.push_back(i == 0 ? uniform(1, 40) : uniform(0, 40));
      std::vector<double> row;
      for (int j = 0; j < levels_count; ++j) row.push_back(uniform(-100, 1000) / 1024.0);  // sums exact
      losses.push_back(row);
    }
    const SensitivityTable table = make_table(numels, levels, losses);
    const int64_t total = total_of(table);
    int64_t reachable = 0;
    for (int64_t n : numels) reachable += count_at(n, levels.back());

    std::vector<double> targets = {0.0, static_cast<double>(reachable) / static_cast<double>(total)};
    for (int t = 0; t < 4; ++t) {
      targets.push_back(static_cast<double>(uniform(0, static_cast<int>(reachable))) / static_cast<double>(total));
      targets.push_back(std::uniform_real_distribution<double>(0, targets[1])(rng));
    }
    for (double target : targets) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " target " + std::to_string(target));
      const auto needed = static_cast<int64_t>(std::ceil(target * static_cast<double>(total) - 1e-9));
      const LevelSuggestion s = suggest_levels(table, target);
      EXPECT_EQ(s.unit, 1);
      EXPECT_EQ(s.predicted_loss, brute_force(table, needed));
      check_consistent(table, s, needed);
    }
    if (reachable < total) {
      const double beyond = static_cast<double>(reachable + 1) / static_cast<double>(total);
      EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(table, beyond); }),
                      float_repr(static_cast<double>(reachable) / static_cast<double>(total)));
    }
  }
}

TEST(Sensitivity, SuggestLevelsExactForMillionsOfValues) {
  std::mt19937 rng(7);
  std::vector<std::vector<double>> losses;
  for (int i = 0; i < 10; ++i) {
    losses.push_back({});
    for (int j = 0; j < 3; ++j) losses.back().push_back(std::uniform_int_distribution<int>(0, 4096)(rng) / 4096.0);
  }
  const SensitivityTable table = make_table(std::vector<int64_t>(10, 300007), {0.3, 0.6, 0.9}, losses);
  const LevelSuggestion s = suggest_levels(table, 0.6);
  EXPECT_EQ(s.unit, 1);
  const int64_t needed = 1800042;  // 0.6 · 3,000,070
  EXPECT_EQ(s.predicted_loss, brute_force(table, needed));
  check_consistent(table, s, needed);
}

TEST(Sensitivity, SuggestLevelsBucketedWithinItsBound) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 5; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::vector<std::vector<double>> losses;
    for (int i = 0; i < 3; ++i) {
      losses.push_back({});
      for (int j = 0; j < 3; ++j) losses.back().push_back(std::uniform_int_distribution<int>(0, 1024)(rng) / 1024.0);
    }
    const SensitivityTable table = make_table({30000001, 25000003, 40000007}, {0.3, 0.55, 0.8}, losses);
    const LevelSuggestion s = suggest_levels(table, 0.5);
    const int64_t needed = 47500006;  // ceil(0.5 · 95,000,011)
    ASSERT_GT(s.unit, 1);
    EXPECT_EQ(s.unit, 12);  // the least u with ceil(needed / u) <= 2^22
    check_consistent(table, s, needed);
    EXPECT_GE(s.predicted_loss, brute_force(table, needed));
    EXPECT_LE(s.predicted_loss, brute_force(table, needed + 3 * (s.unit - 1)));
  }
}

TEST(Sensitivity, SuggestLevelsErrorsNameTheValue) {
  const SensitivityTable table = make_table({10, 10}, {0.5}, {{0.1}, {0.2}});
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(table, bad); }),
                    "target sparsity " + float_repr(bad) + " is outside [0, 1]");
  }
  const std::string message = error_of<std::invalid_argument>([&] { suggest_levels(table, 0.6); });
  EXPECT_CONTAINS(message, "target sparsity 0.6 cannot be reached");
  EXPECT_CONTAINS(message, "prunes 0.5 of the values (10 of 20)");

  SensitivityTable bad = table;
  bad.metric[1].push_back(0.5);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(bad, 0.5); }), "metric row 1");
  bad = table;
  bad.numels.pop_back();
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(bad, 0.5); }), "2 layers, 1 numels");
  bad = table;
  bad.levels = {1.5};
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(bad, 0.5); }), "level 1.5");
  bad = table;
  bad.numels[0] = -3;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(bad, 0.5); }), "numel -3");
  bad = table;
  bad.metric[0][0] = std::numeric_limits<double>::infinity();
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(bad, 0.5); }), "layer 'layer0' at level 0.5 is inf");
  bad = table;
  bad.numels = {0, 0};
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(bad, 0.5); }), "hold no values");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { suggest_levels(SensitivityTable{}, 0.5); }), "no layers");
}

}  // namespace
}  // namespace sparsity
