// GlobalNormSparsifier: the blocks of all data ranked together. Totals, the
// shares of layers of different scales, blocks and zeros_per_block, ties,
// saved states, bad configs, scheduling; and (suite ReferenceGlobalPruning)
// bit-for-bit equality with torch.nn.utils.prune.global_unstructured.
//
// The reference cases are written by tests/reference/make_global_pruning_cases.py
// (a CTest fixture, see tests/CMakeLists.txt). Run by hand:
//
//   /usr/bin/python3 tests/reference/make_global_pruning_cases.py --output /tmp/global.pt
//   SPARSITY_REFERENCE_GLOBAL_PRUNING=/tmp/global.pt build/tests/sparsity_tests --gtest_filter='Reference*Global*'

#include <torch/csrc/jit/serialization/pickle.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;

std::unique_ptr<BaseDataSparsifier> global(double level, std::vector<int64_t> block = {1, 1},
                                           std::optional<int64_t> zeros = std::nullopt,
                                           const std::string& norm = "L1") {
  Config args{{"sparsity_level", level}, {"sparse_block_shape", block}, {"norm", norm}};
  if (zeros) args.set("zeros_per_block", *zeros);
  return make_data_sparsifier("GlobalNormSparsifier", args);
}

int64_t zeros_of(const at::Tensor& mask) { return mask.numel() - mask.count_nonzero().item<int64_t>(); }

int64_t total_zeros(const BaseDataSparsifier& s) {
  int64_t zeros = 0;
  for (const auto& name : s.names()) zeros += zeros_of(s.get_mask(name));
  return zeros;
}

double sparsity_of(const at::Tensor& mask) { return static_cast<double>(zeros_of(mask)) / mask.numel(); }

// Python's round(level * n): half to even.
int64_t python_round(double x) {
  const double f = std::floor(x);
  if (x - f != 0.5) return static_cast<int64_t>(std::round(x));
  return static_cast<int64_t>(std::fmod(f, 2.0) == 0.0 ? f : f + 1.0);
}

// The magnitudes of the pruned and of the kept elements of every name.
std::pair<at::Tensor, at::Tensor> pruned_and_kept(const BaseDataSparsifier& s) {
  std::vector<at::Tensor> pruned, kept;
  for (const auto& name : s.names()) {
    const at::Tensor x = s.get_data(name).detach().abs().reshape(-1);
    const at::Tensor m = s.get_mask(name).reshape(-1).to(torch::kBool);
    pruned.push_back(x.masked_select(~m));
    kept.push_back(x.masked_select(m));
  }
  return {torch::cat(pruned), torch::cat(kept)};
}

TEST(GlobalNormSparsifier, TheTotalHitsTheLevelAndEveryPrunedWeightIsSmallerThanEveryKeptOne) {
  torch::manual_seed(1);
  const std::vector<at::Tensor> data{torch::randn({300, 78}) * 0.05, torch::randn({100, 30}),
                                     torch::randn({10, 10}) * 3, torch::randn({37})};
  int64_t n = 0;
  for (const auto& t : data) n += t.numel();
  for (const double level : {0.1, 0.37, 0.5, 0.9, 0.999}) {
    auto s = global(level);
    for (size_t i = 0; i < data.size(); ++i) s->add_data("t" + std::to_string(i), data[i]);
    s->step();
    EXPECT_EQ(total_zeros(*s), python_round(level * n)) << "level " << level;
    const auto [pruned, kept] = pruned_and_kept(*s);
    EXPECT_LE(pruned.max().item<float>(), kept.min().item<float>()) << "level " << level;
  }
}

TEST(GlobalNormSparsifier, LevelsZeroAndOne) {
  const at::Tensor a = torch::randn({20, 5}), b = torch::randn({7});
  auto none = global(0.0);
  none->add_data("a", a);
  none->add_data("b", b);
  none->step();
  EXPECT_EQ(total_zeros(*none), 0);
  auto all = global(1.0);
  all->add_data("a", a);
  all->add_data("b", b);
  all->step();
  EXPECT_EQ(total_zeros(*all), a.numel() + b.numel());
}

TEST(GlobalNormSparsifier, ALayerOfSmallWeightsIsPrunedMoreThanALayerOfLargeOnes) {
  torch::manual_seed(2);
  const at::Tensor small = torch::randn({64, 64}) * 0.01, large = torch::randn({64, 64});
  auto g = global(0.5);
  g->add_data("small", small);
  g->add_data("large", large);
  g->step();
  DataNormSparsifier layerwise(DataNormSparsifierOptions().sparsity_level(0.5).sparse_block_shape({1, 1}));
  layerwise.add_data("small", small);
  layerwise.add_data("large", large);
  layerwise.step();
  EXPECT_DOUBLE_EQ(sparsity_of(layerwise.get_mask("small")), 0.5);
  EXPECT_DOUBLE_EQ(sparsity_of(layerwise.get_mask("large")), 0.5);
  // Almost all of `small` is below almost all of `large`.
  EXPECT_GT(sparsity_of(g->get_mask("small")), 0.95);
  EXPECT_LT(sparsity_of(g->get_mask("large")), 0.05);
  EXPECT_EQ(total_zeros(*g), small.numel());
}

TEST(GlobalNormSparsifier, OneTensorGivesDataNormSparsifiersMask) {
  torch::manual_seed(3);
  const at::Tensor data = torch::randn({13, 22});
  for (const std::vector<int64_t>& block : {std::vector<int64_t>{1, 1}, {1, 4}, {2, 3}, {4, 4}}) {
    for (const double level : {0.2, 0.5, 0.8}) {
      for (const std::string norm : {"L1", "L2"}) {
        const int64_t zeros = block[0] * block[1] > 1 ? 2 : 1;
        auto g = global(level, block, zeros, norm);
        g->add_data("d", data);
        g->step();
        DataNormSparsifier d(DataNormSparsifierOptions()
                                 .sparsity_level(level)
                                 .sparse_block_shape({block[0], block[1]})
                                 .zeros_per_block(zeros)
                                 .norm(norm_from_string(norm)));
        d.add_data("d", data);
        d.step();
        EXPECT_TRUE(torch::equal(g->get_mask("d"), d.get_mask("d")))
            << "block [" << block[0] << ", " << block[1] << "], level " << level << ", " << norm;
      }
    }
  }
}

// The mean |x| of each (1, 4) block of a (rows, 4k) matrix.
at::Tensor block_norms_1x4(const at::Tensor& x) { return x.abs().reshape({x.size(0), -1, 4}).mean(-1); }

TEST(GlobalNormSparsifier, BlocksOf1x4WithTwoZerosEach) {
  torch::manual_seed(4);
  const at::Tensor a = torch::randn({16, 32}) * 0.3, b = torch::randn({8, 64});
  const int64_t blocks = (a.numel() + b.numel()) / 4;
  auto s = global(0.6, {1, 4}, 2);
  s->add_data("a", a);
  s->add_data("b", b);
  s->step();
  std::vector<at::Tensor> selected_norms, kept_norms;
  int64_t selected = 0;
  for (const auto& [name, x] : std::map<std::string, at::Tensor>{{"a", a}, {"b", b}}) {
    const at::Tensor zeros_per_block = (s->get_mask(name) == 0).reshape({x.size(0), -1, 4}).sum(-1);
    // Every block keeps all four or loses exactly two: its two smallest.
    EXPECT_TRUE(((zeros_per_block == 0) | (zeros_per_block == 2)).all().item<bool>()) << name;
    const at::Tensor chosen = zeros_per_block == 2;
    selected += chosen.sum().item<int64_t>();
    const at::Tensor norms = block_norms_1x4(x);
    selected_norms.push_back(norms.masked_select(chosen));
    kept_norms.push_back(norms.masked_select(~chosen));
    const at::Tensor mags = x.abs().reshape({x.size(0), -1, 4});
    const at::Tensor pruned_max = mags.masked_fill(s->get_mask(name).reshape(mags.sizes()).to(torch::kBool), -1)
                                      .amax(-1);
    const at::Tensor kept_min = mags.masked_fill(~s->get_mask(name).reshape(mags.sizes()).to(torch::kBool), 1e9)
                                    .amin(-1);
    EXPECT_TRUE((pruned_max.masked_select(chosen) <= kept_min.masked_select(chosen)).all().item<bool>()) << name;
  }
  EXPECT_EQ(selected, python_round(0.6 * blocks));
  EXPECT_LE(torch::cat(selected_norms).max().item<float>(), torch::cat(kept_norms).min().item<float>());
}

TEST(GlobalNormSparsifier, BlockShapeAndZerosMayDifferPerName) {
  torch::manual_seed(5);
  const at::Tensor a = torch::randn({8, 8}), b = torch::randn({8, 8});
  auto s = global(0.5, {1, 1});
  s->add_data("a", a);
  s->add_data("b", b, Config{{"sparse_block_shape", std::vector<int64_t>{2, 2}}, {"zeros_per_block", 4}});
  s->step();
  // a's 64 blocks of one and b's 16 of four: 40 selected, ranked by mean |x|.
  const at::Tensor b_norms = b.abs().reshape({4, 2, 4, 2}).mean({1, 3});
  const at::Tensor b_selected = (s->get_mask("b") == 0).reshape({4, 2, 4, 2}).all(3).all(1);
  EXPECT_EQ(zeros_of(s->get_mask("a")) + b_selected.sum().item<int64_t>(), 40);
  EXPECT_EQ(zeros_of(s->get_mask("b")), 4 * b_selected.sum().item<int64_t>());
  const at::Tensor a_mask = s->get_mask("a").to(torch::kBool);
  const at::Tensor all_selected = torch::cat({a.abs().masked_select(~a_mask), b_norms.masked_select(b_selected)});
  const at::Tensor all_kept = torch::cat({a.abs().masked_select(a_mask), b_norms.masked_select(~b_selected)});
  EXPECT_LE(all_selected.max().item<float>(), all_kept.min().item<float>());
}

TEST(GlobalNormSparsifier, TiesGoToTheFirstNameThenTheLowestIndex) {
  // All magnitudes equal: 15 of 20 go, the whole of the first name and the
  // first five of the second.
  auto s = global(0.75);
  s->add_data("first", torch::full({2, 5}, 1.5));
  s->add_data("second", torch::full({10}, -1.5));
  s->step();
  EXPECT_EQ(zeros_of(s->get_mask("first")), 10);
  EXPECT_TRUE(torch::equal(s->get_mask("second"),
                           torch::tensor({0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, torch::kByte)));
  // Smaller values in a later name still go first.
  auto t = global(0.25);
  t->add_data("ones", torch::ones({6}));
  t->add_data("mixed", torch::tensor({1.0, 0.0, 1.0, 0.0, 1.0, 1.0}));
  t->step();  // 3 of 12: the two zeros, then the first 1.0, which is ones[0]
  EXPECT_TRUE(torch::equal(t->get_mask("ones"), torch::tensor({0, 1, 1, 1, 1, 1}, torch::kByte)));
  EXPECT_TRUE(torch::equal(t->get_mask("mixed"), torch::tensor({1, 0, 1, 0, 1, 1}, torch::kByte)));
}

// The rule written plainly with ATen: all magnitudes concatenated, a stable
// sort (ties in insertion order, then by index), the k lowest zeroed.
std::vector<at::Tensor> plain_global_masks(const std::vector<at::Tensor>& data, double level) {
  std::vector<at::Tensor> flat;
  for (const auto& t : data) flat.push_back(t.abs().reshape(-1).to(torch::kDouble));
  const at::Tensor all = torch::cat(flat);
  const int64_t k = python_round(level * all.numel());
  const at::Tensor order = std::get<1>(torch::sort(all, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  at::Tensor keep = torch::ones({all.numel()}, torch::kByte);
  keep.index_put_({order.slice(0, 0, k)}, 0);
  std::vector<at::Tensor> masks;
  int64_t offset = 0;
  for (const auto& t : data) {
    masks.push_back(keep.slice(0, offset, offset + t.numel()).reshape(t.sizes()));
    offset += t.numel();
  }
  return masks;
}

TEST(GlobalNormSparsifier, AgreesWithAPlainStableSortOverAllTheData) {
  // 200,000 weights in tensors of at most 60,000: more than fit the
  // candidates at once, so the selection takes a pass over the data's top
  // 16 bits first. Then the same on a coarse grid, ties everywhere.
  torch::manual_seed(8);
  // The 1-D ones of more than 2^16 weights are read in shorter rows, one of
  // them (2^17 - 1, a prime) a weight per row.
  std::vector<at::Tensor> data{torch::randn({200, 300}) * 0.02, torch::randn({60000}), torch::randn({50, 40, 20}) * 0.5,
                               torch::randn({30000}) * 3,       torch::randn({10000}) * 0.1, torch::randn({131071}) * 0.3,
                               torch::randn({100000}) * 2};
  for (const bool grid : {false, true}) {
    std::vector<at::Tensor> inputs;
    for (const auto& t : data) inputs.push_back(grid ? (t * 100).round() / 100 : t);
    for (const double level : {0.1, 0.5, 0.77, 0.95}) {
      auto s = global(level);
      for (size_t i = 0; i < inputs.size(); ++i) s->add_data("t" + std::to_string(i), inputs[i]);
      s->step();
      const auto expected = plain_global_masks(inputs, level);
      for (size_t i = 0; i < inputs.size(); ++i) {
        EXPECT_TRUE(torch::equal(s->get_mask("t" + std::to_string(i)), expected[i]))
            << "tensor " << i << ", level " << level << (grid ? ", grid" : "");
      }
    }
  }
}

TEST(GlobalNormSparsifier, ManyTiedZerosAcrossTheSelection) {
  // More equal keys than fit in the candidates kept near the threshold (the
  // largest tensor's blocks): the selection goes digit by digit to the end.
  at::Tensor a = torch::zeros({100000});
  at::Tensor b = torch::zeros({100000});
  b.index_put_({torch::indexing::Slice(0, 10)}, 5.0);
  auto s = global(0.6);
  s->add_data("a", a);
  s->add_data("b", b);
  s->step();
  EXPECT_EQ(zeros_of(s->get_mask("a")), 100000);
  EXPECT_EQ(zeros_of(s->get_mask("b")), 20000);
  // b's first ten (the fives) are kept; its zeros go from index 10 on.
  EXPECT_EQ(s->get_mask("b").slice(0, 0, 10).sum().item<int64_t>(), 10);
  EXPECT_EQ(zeros_of(s->get_mask("b").slice(0, 10, 20010)), 20000);
}

TEST(GlobalNormSparsifier, MixedPrecisionsRankTogether) {
  const at::Tensor f = torch::tensor({0.5f, 2.0f, 3.0f});
  const at::Tensor d = torch::tensor({1.0, 0.25, 4.0}, torch::kDouble);
  const at::Tensor h = torch::tensor({0.75, 5.0}).to(torch::kHalf);
  auto s = global(0.5);  // 4 of 8: 0.25, 0.5, 0.75, 1.0
  s->add_data("f", f);
  s->add_data("d", d);
  s->add_data("h", h);
  s->step();
  EXPECT_TRUE(torch::equal(s->get_mask("f"), torch::tensor({0, 1, 1}, torch::kByte)));
  EXPECT_TRUE(torch::equal(s->get_mask("d"), torch::tensor({0, 0, 1}, torch::kByte)));
  EXPECT_TRUE(torch::equal(s->get_mask("h"), torch::tensor({0, 1}, torch::kByte)));
}

TEST(GlobalNormSparsifier, SquashedNamesLeaveTheRanking) {
  auto s = global(0.5);
  s->add_data("a", torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}));
  s->add_data("b", torch::tensor({10.0f, 20.0f, 30.0f, 40.0f}));
  s->squash_mask({"a"}, /*leave_parametrized=*/false);
  s->step();  // only b's blocks: 2 of 4
  EXPECT_TRUE(torch::equal(s->get_mask("b"), torch::tensor({0, 0, 1, 1}, torch::kByte)));
}

TEST(GlobalNormSparsifier, SavedStateRoundTrip) {
  torch::manual_seed(6);
  const std::filesystem::path dir = testing::scratch_dir("GlobalNormSparsifierState");
  auto s = global(0.7, {1, 4}, 3);
  s->add_data("a", torch::randn({8, 16}) * 0.2);
  s->add_data("b", torch::randn({32}));
  s->step();
  s->save((dir / "global.pt").string());
  auto loaded = global(0.1);
  loaded->load((dir / "global.pt").string());
  EXPECT_EQ(loaded->names(), s->names());
  EXPECT_EQ(loaded->defaults(), s->defaults());
  for (const auto& name : s->names()) {
    EXPECT_TRUE(torch::equal(loaded->get_mask(name), s->get_mask(name))) << name;
    EXPECT_TRUE(torch::equal(loaded->get_data(name), s->get_data(name))) << name;
  }
  const at::Tensor before = loaded->get_mask("a").clone();
  loaded->step();  // the loaded data and level give the same masks again
  EXPECT_TRUE(torch::equal(loaded->get_mask("a"), before));
  EXPECT_GT(zeros_of(before), 0);
}

TEST(GlobalNormSparsifier, BadArgumentsNameTheValue) {
  const std::string level = error_of<std::invalid_argument>([] { global(1.5); });
  EXPECT_CONTAINS(level, "GlobalNormSparsifier");
  EXPECT_CONTAINS(level, "1.5");
  const std::string block = error_of<std::invalid_argument>([] { global(0.5, {0, 4}); });
  EXPECT_CONTAINS(block, "GlobalNormSparsifier");
  EXPECT_CONTAINS(block, "[0, 4]");
  const std::string norm = error_of<std::invalid_argument>([] { global(0.5, {1, 1}, std::nullopt, "L3"); });
  EXPECT_CONTAINS(norm, "L3");
  const std::string key = error_of<std::invalid_argument>(
      [] { make_data_sparsifier("GlobalNormSparsifier", {{"sparsity_levle", 0.5}}); });
  EXPECT_CONTAINS(key, "sparsity_levle");
  const std::string options = error_of<std::invalid_argument>(
      [] { GlobalNormSparsifier bad(DataNormSparsifierOptions().zeros_per_block(9)); });
  EXPECT_CONTAINS(options, "GlobalNormSparsifier");
  EXPECT_CONTAINS(options, "9");
}

TEST(GlobalNormSparsifier, APerNameLevelOrNormIsAnErrorAndNoMaskChanges) {
  auto s = global(0.5);
  s->add_data("a", torch::arange(1.0, 9.0));
  s->add_data("b", torch::arange(1.0, 9.0), Config{{"sparsity_level", 0.3}});
  const std::string level = error_of<std::invalid_argument>([&] { s->step(); });
  EXPECT_CONTAINS(level, "'b'");
  EXPECT_CONTAINS(level, "0.3");
  EXPECT_CONTAINS(level, "0.5");
  EXPECT_EQ(total_zeros(*s), 0);

  auto t = global(0.5);
  t->add_data("a", torch::arange(1.0, 9.0));
  t->add_data("c", torch::arange(1.0, 9.0), Config{{"norm", "L2"}});
  const std::string norm = error_of<std::invalid_argument>([&] { t->step(); });
  EXPECT_CONTAINS(norm, "'c'");
  EXPECT_CONTAINS(norm, "L2");
  EXPECT_EQ(total_zeros(*t), 0);
}

template <class Scheduler, class Options>
void check_scheduled_totals(const Options& options, double final_level) {
  torch::manual_seed(7);
  auto s = global(final_level);
  const at::Tensor a = torch::randn({50, 40}) * 0.1, b = torch::randn({30, 20}), c = torch::randn({25});
  s->add_data("a", a);
  s->add_data("b", b);
  s->add_data("c", c);
  const int64_t n = a.numel() + b.numel() + c.numel();
  Scheduler scheduler(*s, options);
  std::vector<double> levels;
  for (int epoch = 0; epoch < 8; ++epoch) {
    const double level = s->data_group("a").get<double>("sparsity_level");
    levels.push_back(level);
    s->step();
    EXPECT_EQ(total_zeros(*s), python_round(level * n)) << "epoch " << epoch << ", level " << level;
    scheduler.step();
  }
  // The schedule moved the level: several different totals were checked.
  std::sort(levels.begin(), levels.end());
  EXPECT_GE(std::unique(levels.begin(), levels.end()) - levels.begin(), 4);
}

TEST(GlobalNormSparsifier, ACubicScheduleSetsTheTotal) {
  check_scheduled_totals<CubicSLScheduler>(CubicSLSchedulerOptions().init_sl(0.0).init_t(1).delta_t(1).total_t(6),
                                           0.9);
}

TEST(GlobalNormSparsifier, AStepScheduleSetsTheTotal) {
  check_scheduled_totals<StepSLScheduler>(StepSLSchedulerOptions().step_size(1).gamma(0.5), 0.8);
}

TEST(GlobalNormSparsifier, ByNameWithASchedulerByName) {
  auto s = make_data_sparsifier("GlobalNormSparsifier",
                                {{"sparsity_level", 0.8}, {"sparse_block_shape", std::vector<int64_t>{1, 1}}});
  const at::Tensor a = torch::randn({40}), b = torch::randn({60});
  s->add_data("a", a);
  s->add_data("b", b);
  auto scheduler = make_data_scheduler("StepSLScheduler", *s, {{"step_size", 1}, {"gamma", 0.5}});
  s->step();
  EXPECT_EQ(total_zeros(*s), 80);
  scheduler->step();
  s->step();
  EXPECT_EQ(total_zeros(*s), 40);
}

// VmHWM in KiB, or -1.
long vm_hwm_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(GlobalNormSparsifier, AStepNeedsFarLessMemoryThanACopyOfAllTheData) {
  // 24 tensors of 4 MB: a concatenated copy, as PyTorch's global pruning
  // makes, would add 96 MB (and its magnitudes and sort as much again). The
  // keys kept near the threshold are at most 8 MB (the largest tensor's
  // blocks), those of a chunk 0.5 MB.
  if (testing::kUnderAddressSanitizer) {
    GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine and pads every allocation: the resident "
                    "high-water mark measures its allocator, not the step";
  }
  constexpr int kTensors = 24;
  constexpr int64_t kElements = 1 << 20;
  auto s = global(0.8);
  std::vector<at::Tensor> data;
  for (int i = 0; i < kTensors; ++i) {
    data.push_back(torch::randn({kElements}) * (1.0 + i));
    s->add_data("t" + std::to_string(i), data.back());
  }
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  if (!clear || vm_hwm_kib() < 0) GTEST_SKIP() << "cannot reset or read the RSS high-water mark";
  const long before = vm_hwm_kib();
  s->step();
  const long extra_mb = (vm_hwm_kib() - before) / 1024;
  EXPECT_LT(extra_mb, 20) << "a step's extra peak";
  EXPECT_EQ(total_zeros(*s), python_round(0.8 * kTensors * kElements));
}

// ---------------------------------------------------------------------------
// The reference: torch.nn.utils.prune.global_unstructured with L1Unstructured.

constexpr const char* kCasesEnv = "SPARSITY_REFERENCE_GLOBAL_PRUNING";

struct GlobalCase {
  int64_t id = -1;
  std::string kind;
  double level = 0.0;
  std::vector<at::Tensor> tensors, masks;
};

std::vector<GlobalCase> load_global_cases(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const c10::IValue root = torch::jit::pickle_load(bytes);
  std::vector<GlobalCase> cases;
  for (const c10::IValue& value : root.toListRef()) {
    const auto dict = value.toGenericDict();
    GlobalCase c;
    c.id = dict.at(std::string("id")).toInt();
    c.kind = dict.at(std::string("kind")).toStringRef();
    c.level = dict.at(std::string("level")).toDouble();
    for (const c10::IValue& t : dict.at(std::string("tensors")).toTupleRef().elements()) c.tensors.push_back(t.toTensor());
    for (const c10::IValue& m : dict.at(std::string("masks")).toTupleRef().elements()) c.masks.push_back(m.toTensor());
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(ReferenceGlobalPruning, MasksEqualGlobalUnstructuredL1) {
  const char* path = std::getenv(kCasesEnv);
  if (path == nullptr || *path == '\0') {
    GTEST_SKIP() << kCasesEnv << " is not set: run through ctest (reference.compare_global_pruning)";
  }
  const std::vector<GlobalCase> cases = load_global_cases(path);
  ASSERT_GT(cases.size(), 100u) << "too few cases in " << path;
  std::map<std::string, int> per_kind;
  int mismatched = 0;
  for (const GlobalCase& c : cases) {
    ++per_kind[c.kind];
    ASSERT_EQ(c.tensors.size(), c.masks.size());
    auto s = global(c.level);
    for (size_t i = 0; i < c.tensors.size(); ++i) s->add_data("t" + std::to_string(i), c.tensors[i].clone());
    s->step();
    for (size_t i = 0; i < c.tensors.size(); ++i) {
      const at::Tensor got = s->get_mask("t" + std::to_string(i));
      if (torch::equal(got, c.masks[i])) continue;
      ++mismatched;
      ADD_FAILURE() << "case " << c.id << " (" << c.kind << ", level " << c.level << "), tensor " << i << " of shape "
                    << c.tensors[i].sizes() << ": " << got.ne(c.masks[i]).sum().item<int64_t>()
                    << " elements differ";
    }
  }
  EXPECT_EQ(mismatched, 0);
  for (const char* kind : {"random", "repeats", "edge"}) EXPECT_GT(per_kind[kind], 0) << kind;
}

}  // namespace
}  // namespace sparsity
