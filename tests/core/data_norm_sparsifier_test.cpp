// DataNormSparsifier: the reference test-suite's checks, hand-computed masks,
// the improvements over the reference, and bad configs.
#include <cmath>
#include <cstdlib>
#include <string>

#include "test_support.h"

namespace sparsity {
namespace {

using testing::DataKind;
using testing::Datum;
using testing::error_of;
using testing::make_datum;

DataNormSparsifierOptions options(double level, std::array<int64_t, 2> block, int64_t zeros,
                                  Norm norm = Norm::L1) {
  return DataNormSparsifierOptions().sparsity_level(level).sparse_block_shape(block).zeros_per_block(zeros).norm(
      norm);
}

at::Tensor mask_of(const at::Tensor& data, const DataNormSparsifierOptions& opts) {
  DataNormSparsifier s(opts);
  s.add_data("d", data);
  s.step();
  return s.get_mask("d");
}

at::Tensor bytes(std::vector<std::vector<int>> rows) {
  std::vector<uint8_t> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kByte).reshape({static_cast<int64_t>(rows.size()), -1});
}

double sparsity_of(const at::Tensor& mask) { return 1.0 - mask.to(torch::kDouble).mean().item<double>(); }

TEST(DataNormSparsifier, DefaultsMatchTheReference) {
  DataNormSparsifier s;
  EXPECT_EQ(s.defaults(), (Config{{"sparsity_level", 0.5},
                                  {"sparse_block_shape", {1, 4}},
                                  {"zeros_per_block", 4},
                                  {"norm", "L1"}}));
  DataNormSparsifier two_by_three(DataNormSparsifierOptions().sparse_block_shape({2, 3}));
  EXPECT_EQ(two_by_three.defaults().get<int64_t>("zeros_per_block"), 6);
}

TEST(DataNormSparsifier, HandComputedBlockMask) {
  // Block norms (1, 2): 1.5 3.5 | 5.5 7.5; level 0.5 selects the two lowest.
  const at::Tensor data = torch::arange(1, 9, torch::kFloat).reshape({2, 4});
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 2}, 2)), bytes({{0, 0, 0, 0}, {1, 1, 1, 1}})));
  // One zero per selected block: its smaller element.
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 2}, 1)), bytes({{0, 1, 0, 1}, {1, 1, 1, 1}})));
  // Negative values count by magnitude.
  EXPECT_TRUE(torch::equal(mask_of(-data, options(0.25, {2, 1}, 2)), bytes({{0, 1, 1, 1}, {0, 1, 1, 1}})));
}

TEST(DataNormSparsifier, L1AndL2RankBlocksDifferently) {
  // Block A = [3, 3]: L1 mean 3, L2 mean 9. Block B = [0, 5]: L1 mean 2.5, L2 mean 12.5.
  const at::Tensor data = torch::tensor({3.f, 3.f, 0.f, 5.f}).reshape({1, 4});
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 2}, 2, Norm::L1)), bytes({{1, 1, 0, 0}})));
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 2}, 2, Norm::L2)), bytes({{0, 0, 1, 1}})));
}

TEST(DataNormSparsifier, PartialEdgeBlocksAverageTheirOwnElements) {
  // Width 5 with blocks (1, 4): the edge block holds one element, norm 2.5,
  // below the full block's mean of 3 → it is the one selected.
  const at::Tensor data = torch::tensor({3.f, 3.f, 3.f, 3.f, 2.5f}).reshape({1, 5});
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 4}, 4)), bytes({{1, 1, 1, 1, 0}})));
  // Two zeros asked of a one-element block: the element goes, as in the
  // reference, whose NaN padding counts as the largest values.
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 4}, 2)), bytes({{1, 1, 1, 1, 0}})));
  EXPECT_TRUE(torch::equal(mask_of(data, options(1.0, {1, 4}, 2)), bytes({{0, 0, 1, 1, 0}})));
}

TEST(DataNormSparsifier, LevelRoundsHalfToEven) {
  // 5 blocks: 0.5 * 5 = 2.5 → 2; 0.3 * 5 = 1.5 → 2; 0.7 * 5 = 3.5 → 4.
  const at::Tensor data = torch::arange(1, 6, torch::kFloat).reshape({1, 5});
  EXPECT_EQ(mask_of(data, options(0.5, {1, 1}, 1)).eq(0).sum().item<int64_t>(), 2);
  EXPECT_EQ(mask_of(data, options(0.3, {1, 1}, 1)).eq(0).sum().item<int64_t>(), 2);
  EXPECT_EQ(mask_of(data, options(0.7, {1, 1}, 1)).eq(0).sum().item<int64_t>(), 4);
}

TEST(DataNormSparsifier, TwoOfFourPattern) {
  for (Norm norm : {Norm::L1, Norm::L2}) {
    const at::Tensor data = torch::randn({4, 16});
    const at::Tensor mask = mask_of(data, options(1.0, {1, 4}, 2, norm));
    EXPECT_DOUBLE_EQ(sparsity_of(mask), 0.5);
    const at::Tensor blocks = mask.reshape({-1, 4});
    const at::Tensor magnitudes = data.abs().reshape({-1, 4});
    EXPECT_TRUE(blocks.sum(1).eq(2).all().item<bool>());
    for (int64_t b = 0; b < blocks.size(0); ++b) {
      // The kept pair holds the two largest magnitudes of the block.
      const float smallest_kept = magnitudes[b].masked_select(blocks[b].to(torch::kBool)).min().item<float>();
      const float largest_pruned = magnitudes[b].masked_select(blocks[b].eq(0)).max().item<float>();
      EXPECT_GE(smallest_kept, largest_pruned);
    }
  }
}

// The reference's check_sparsity_level: the zero ratio after squash is exactly
// clamp(level, 0, 1) * zeros / block size on data the blocks divide.
TEST(DataNormSparsifier, LevelBlockZerosGrid) {
  const at::Tensor data = torch::randn({4, 4});
  for (Norm norm : {Norm::L1, Norm::L2}) {
    DataNormSparsifier s(DataNormSparsifierOptions().norm(norm));
    struct Case {
      std::string name;
      double level;
      std::array<int64_t, 2> block;
      int64_t zeros;
    };
    std::vector<Case> cases;
    for (double level : {-1.0, 0.0, 0.5, 1.0, 2.0})
      for (std::array<int64_t, 2> block : {std::array<int64_t, 2>{1, 1}, {1, 4}, {2, 2}, {4, 1}})
        for (int64_t zeros = 0; zeros <= 4; ++zeros) {
          if (zeros > block[0] * block[1]) continue;
          Case c{"d_" + std::to_string(cases.size()), level, block, zeros};
          s.add_data(c.name, data.clone(),
                     Config{{"sparsity_level", level}, {"sparse_block_shape", block}, {"zeros_per_block", zeros}});
          cases.push_back(c);
        }
    s.step();
    s.squash_mask();
    for (const Case& c : cases) {
      const double zero_ratio = s.get_data(c.name, false).eq(0).to(torch::kDouble).mean().item<double>();
      const double expected = std::clamp(c.level, 0.0, 1.0) * static_cast<double>(c.zeros) /
                              static_cast<double>(c.block[0] * c.block[1]);
      EXPECT_DOUBLE_EQ(zero_ratio, expected)
          << "level " << c.level << " block " << c.block[0] << "x" << c.block[1] << " zeros " << c.zeros;
    }
  }
}

// The reference's check_step: sparsity within its bounds for every kind of data.
class DataNormSparsifierKinds : public ::testing::TestWithParam<DataKind> {};

TEST_P(DataNormSparsifierKinds, SparsityWithinBoundsAfterStep) {
  for (Norm norm : {Norm::L1, Norm::L2}) {
    DataNormSparsifier s(DataNormSparsifierOptions().sparsity_level(0.5).sparse_block_shape({1, 4}).norm(norm));
    std::vector<std::pair<std::string, Datum>> all = {
        {"d1", make_datum(GetParam(), 10, 3)}, {"d2", make_datum(GetParam(), 4, 4)}, {"d3", make_datum(GetParam(), 5, 5)}};
    for (const auto& [name, d] : all) d.add_to(s, name);
    const Datum d4 = make_datum(GetParam(), 15, 3), d5 = make_datum(GetParam(), 4, 4);
    d4.add_to(s, "d4", Config{{"sparsity_level", 0.7}, {"sparse_block_shape", {2, 3}}, {"zeros_per_block", 6}});
    d5.add_to(s, "d5", Config{{"sparsity_level", 0.3}, {"sparse_block_shape", {2, 3}}, {"zeros_per_block", 6}});
    all.emplace_back("d4", d4);
    all.emplace_back("d5", d5);
    for (const auto& [name, d] : all) EXPECT_EQ(sparsity_of(s.get_mask(name)), 0.0);
    s.step();
    for (const auto& [name, d] : all) {
      const Config& c = s.data_group(name);
      const auto block = c.get<std::vector<int64_t>>("sparse_block_shape");
      const int64_t h = d.weight.size(0), w = d.weight.size(1);
      const int64_t blocks = ((h + block[0] - 1) / block[0]) * ((w + block[1] - 1) / block[1]);
      // Counted in elements, not fractions, so that rounding cannot flip the check.
      const auto selected = static_cast<int64_t>(std::nearbyint(blocks * c.get<double>("sparsity_level")));
      const int64_t zeros = s.get_mask(name).eq(0).sum().item<int64_t>();
      EXPECT_GE(zeros, selected) << name;
      EXPECT_LE(zeros, std::min(h * w, selected * c.get<int64_t>("zeros_per_block"))) << name;
      EXPECT_GT(zeros, 0) << name;
      EXPECT_EQ(s.get_mask(name).sizes(), d.weight.sizes());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllKinds, DataNormSparsifierKinds,
                         ::testing::Values(DataKind::Tensor, DataKind::Parameter, DataKind::Embedding,
                                           DataKind::EmbeddingBag),
                         testing::kind_name);

TEST(DataNormSparsifier, ReplacedDataKeepsGettingSparsified) {
  DataNormSparsifier s(options(0.5, {1, 4}, 4));
  testing::LogCapture quiet;
  for (int i = 0; i < 100; ++i) {
    s.add_data("test_data", torch::randn({20, 20}));
    s.step();
    EXPECT_GT(sparsity_of(s.get_mask("test_data")), 0.0);
  }
}

TEST(DataNormSparsifier, OneDimensionalDataKeepsItsShape) {
  const at::Tensor bias = torch::randn({37});
  const at::Tensor mask = mask_of(bias, options(0.5, {1, 4}, 4));
  EXPECT_EQ(mask.sizes(), bias.sizes());
  EXPECT_TRUE(torch::equal(mask, mask_of(bias.reshape({1, 37}), options(0.5, {1, 4}, 4)).reshape({37})));
}

TEST(DataNormSparsifier, ColumnDataIsNotSqueezedIntoARow) {
  // (8, 1) with blocks (2, 1): four blocks down the column. The reference would
  // squeeze it to a row of 8 and tile it with (2, 1) blocks of one element.
  const at::Tensor column = torch::tensor({1.f, 1.f, 9.f, 9.f, 2.f, 2.f, 8.f, 8.f}).reshape({8, 1});
  const at::Tensor mask = mask_of(column, options(0.5, {2, 1}, 2));
  EXPECT_EQ(mask.sizes(), column.sizes());
  EXPECT_TRUE(torch::equal(mask.flatten(), torch::tensor({0, 0, 1, 1, 0, 0, 1, 1}, torch::kByte)));
}

TEST(DataNormSparsifier, ConvWeightsAreRowsOfFlattenedFilters) {
  const at::Tensor conv = torch::randn({8, 3, 3, 3});
  const at::Tensor mask = mask_of(conv, options(0.5, {1, 9}, 9));
  EXPECT_EQ(mask.sizes(), conv.sizes());
  EXPECT_TRUE(torch::equal(mask, mask_of(conv.reshape({8, 27}), options(0.5, {1, 9}, 9)).reshape(conv.sizes())));
  EXPECT_DOUBLE_EQ(sparsity_of(mask), 0.5);
}

TEST(DataNormSparsifier, ScalarAndEmptyData) {
  EXPECT_TRUE(torch::equal(mask_of(torch::tensor(2.f), options(1.0, {1, 4}, 4)), torch::tensor(0, torch::kByte)));
  EXPECT_EQ(mask_of(torch::randn({0, 5}), options(0.5, {1, 4}, 4)).numel(), 0);
}

TEST(DataNormSparsifier, EqualNormsAreSelectedByLowestIndex) {
  const at::Tensor data = torch::ones({3, 8});
  const at::Tensor mask = mask_of(data, options(0.5, {1, 4}, 4));  // 6 blocks, 3 selected: the first three
  EXPECT_TRUE(torch::equal(mask, bytes({{0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1}})));
  // Within a block too: the first of equal elements goes first.
  EXPECT_TRUE(torch::equal(mask_of(torch::ones({1, 4}), options(1.0, {1, 4}, 2)), bytes({{0, 0, 1, 1}})));
}

TEST(DataNormSparsifier, NaNCountsAsTheLargestNorm) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const at::Tensor data = torch::tensor({nan, 1.f, 5.f, 5.f, 2.f, 2.f}).reshape({1, 6});
  // Blocks (1, 2): NaN, 5, 2. Two selected: 2 and 5; the NaN block survives.
  EXPECT_TRUE(torch::equal(mask_of(data, options(0.6, {1, 2}, 2)), bytes({{1, 1, 0, 0, 0, 0}})));
  // Level 1 takes it too; inside it the number goes before the NaN.
  EXPECT_TRUE(torch::equal(mask_of(data, options(1.0, {1, 2}, 1)), bytes({{1, 0, 0, 1, 0, 1}})));
}

TEST(DataNormSparsifier, EveryFloatingDtypeAndDouble) {
  const at::Tensor data = torch::randn({16, 16}, torch::kDouble);
  const at::Tensor expected = mask_of(data, options(0.5, {2, 2}, 3));
  EXPECT_DOUBLE_EQ(sparsity_of(expected), 0.5 * 3 / 4);
  // float data whose values are exact in half precision: same mask in every dtype.
  const at::Tensor exact = torch::randint(-64, 64, {16, 16}).to(torch::kFloat) / 8;
  const at::Tensor base = mask_of(exact, options(0.5, {2, 2}, 3));
  for (auto dtype : {torch::kHalf, torch::kBFloat16, torch::kDouble})
    EXPECT_TRUE(torch::equal(mask_of(exact.to(dtype), options(0.5, {2, 2}, 3)), base)) << dtype;
}

TEST(DataNormSparsifier, NonContiguousDataIsHandled) {
  const at::Tensor base = torch::randn({12, 8});
  const at::Tensor transposed = base.t();
  EXPECT_TRUE(torch::equal(mask_of(transposed, options(0.5, {1, 4}, 2)),
                           mask_of(transposed.contiguous(), options(0.5, {1, 4}, 2))));
}

TEST(DataNormSparsifier, MaskObjectIsUpdatedInPlace) {
  DataNormSparsifier s;
  at::Tensor data = torch::randn({8, 8});
  s.add_data("x", data);
  const at::Tensor mask = s.get_mask("x");
  const void* storage = mask.data_ptr();
  s.step();
  EXPECT_TRUE(s.get_mask("x").is_same(mask));
  EXPECT_EQ(mask.data_ptr(), storage);
  EXPECT_DOUBLE_EQ(sparsity_of(mask), 0.5);
}

TEST(DataNormSparsifier, PerNameConfigOverridesDefaults) {
  DataNormSparsifier s(options(0.5, {1, 4}, 4));
  s.add_data("light", torch::randn({10, 40}));
  s.add_data("heavy", torch::randn({10, 40}), Config{{"sparsity_level", 0.9}});
  s.add_data("l2", torch::randn({10, 40}), Config{{"norm", "L2"}, {"zeros_per_block", 1}});
  s.step();
  EXPECT_DOUBLE_EQ(sparsity_of(s.get_mask("light")), 0.5);
  EXPECT_DOUBLE_EQ(sparsity_of(s.get_mask("heavy")), 0.9);
  EXPECT_DOUBLE_EQ(sparsity_of(s.get_mask("l2")), 0.5 / 4);
}

TEST(DataNormSparsifier, BadConfigsNameTheValue) {
  using testing::error_of;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataNormSparsifier s(options(0.5, {1, 4}, 5)); }),
                  "got 5");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataNormSparsifier s(options(0.5, {1, 4}, -1)); }),
                  "got -1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataNormSparsifier s(options(0.5, {0, 4}, 0)); }),
                  "[0, 4]");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataNormSparsifier s(options(NAN, {1, 4}, 4)); }),
                  "nan");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataNormSparsifier s(options(INFINITY, {1, 4}, 4)); }),
                  "inf");
  DataNormSparsifier s;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("x", torch::randn({4, 4}), Config{{"norm", "L3"}}); }),
                  "'L3'");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("i", torch::ones({4, 4}, torch::kInt)); }), "Int");
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { s.add_data("z", torch::randn({4, 4}), Config{{"sparse_block_shape", {2, 2, 2}}}); }),
                  "[2, 2, 2]");
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { s.add_data("t", torch::randn({4, 4}), Config{{"sparsity_level", "high"}}); }),
                  "'sparsity_level'");
  EXPECT_TRUE(s.names().empty()) << "rejected data is not added";
  // A config broken after add_data is caught at step().
  s.add_data("x", torch::randn({4, 4}));
  s.data_group("x").set("zeros_per_block", 17);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.step(); }), "data 'x'");
}

TEST(DataNormSparsifierOptions, FromConfigReadsEveryKeyAndRejectsUnknownOnes) {
  const auto opts = DataNormSparsifierOptions::from_config(
      Config{{"sparsity_level", 0.8}, {"sparse_block_shape", {2, 2}}, {"zeros_per_block", 3}, {"norm", "L2"}});
  EXPECT_EQ(opts.sparsity_level(), 0.8);
  EXPECT_EQ(opts.sparse_block_shape(), (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(opts.zeros_per_block(), 3);
  EXPECT_EQ(opts.norm(), Norm::L2);
  const std::string message =
      error_of<std::invalid_argument>([] { DataNormSparsifierOptions::from_config(Config{{"sparsity", 0.8}}); });
  EXPECT_CONTAINS(message, "'sparsity'");
  EXPECT_CONTAINS(message, "sparsity_level");
}

TEST(DataSparsifierRegistry, MakesBuiltInsAndRegisteredTypes) {
  auto s = make_data_sparsifier("DataNormSparsifier",
                                Config{{"sparsity_level", 1.0}, {"sparse_block_shape", {1, 4}}, {"zeros_per_block", 2}});
  at::Tensor data = torch::randn({4, 8});
  s->add_data("x", data);
  s->step();
  EXPECT_DOUBLE_EQ(sparsity_of(s->get_mask("x")), 0.5);

  const std::string message = error_of<std::invalid_argument>([] { make_data_sparsifier("Nope", {}); });
  EXPECT_CONTAINS(message, "'Nope'");
  EXPECT_CONTAINS(message, "DataNormSparsifier");

  register_data_sparsifier("TestImplemented", [](const Config& args) {
    return std::make_unique<testing::ImplementedSparsifier>(args);
  }, /*replace=*/true);
  auto custom = make_data_sparsifier("TestImplemented", Config{{"test", 3}});
  custom->add_data("y", torch::randn({2, 2}));
  custom->step();
  EXPECT_TRUE(custom->get_mask("y")[0].eq(0).all().item<bool>());
  EXPECT_EQ(custom->data_group("y"), (Config{{"test", 3}}));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] {
                    register_data_sparsifier("TestImplemented", [](const Config&) { return nullptr; });
                  }),
                  "already registered");
  const auto known = registered_data_sparsifiers();
  EXPECT_NE(std::find(known.begin(), known.end(), "TestImplemented"), known.end());
}


// The kernel's fast paths (bins in the mask's memory, the sampled window, the
// recount when too many blocks tie) against a plain selection written with
// ATen: (1, w) block norms summed left to right, a stable sort (NaN last, ties
// by position), the k lowest blocks zeroed. Tables far above the kernel's
// sample size, so that no path sees all blocks at once.
at::Tensor plain_block_mask(const at::Tensor& data, int64_t width, double level) {
  const int64_t rows = data.size(0), cols = data.size(1);
  const at::Tensor blocks = data.abs().reshape({rows * cols / width, width});
  at::Tensor sum = blocks.select(1, 0).clone();
  for (int64_t j = 1; j < width; ++j) sum = sum + blocks.select(1, j);
  at::Tensor norm = sum / static_cast<float>(width);
  norm = at::where(norm.isnan(), at::full_like(norm, INFINITY), norm);  // NaN after every number ...
  const at::Tensor nan_last = data.abs().reshape({-1, width}).isnan().any(1);
  const int64_t n = norm.numel();
  const auto k = static_cast<int64_t>(std::nearbyint(level * static_cast<double>(n)));
  // ... and after +inf: sort by (is NaN, norm), stably.
  const at::Tensor by_norm = std::get<1>(norm.sort(/*stable=*/true, 0, false));
  const at::Tensor order = by_norm.index_select(0, std::get<1>(nan_last.index_select(0, by_norm).to(at::kInt).sort(true, 0, false)));
  at::Tensor keep = torch::ones({n}, torch::kByte);
  keep.index_fill_(0, order.slice(0, 0, k), 0);
  return keep.repeat_interleave(width).reshape({rows, cols});
}

// Runs f with the portable kernels, then with the vector ones where the CPU
// has them (SPARSITY_PORTABLE_KERNELS switches them off).
template <typename F>
void with_each_kernel(const F& f) {
  for (const char* portable : {"1", "0"}) {
    ::setenv("SPARSITY_PORTABLE_KERNELS", portable, 1);
    f(std::string(portable) == "1" ? "portable" : "vector");
  }
  ::unsetenv("SPARSITY_PORTABLE_KERNELS");
}

TEST(DataNormSparsifier, LargeTablesMatchAPlainSelection) {
  torch::manual_seed(11);
  const at::Tensor random = torch::randn({3001, 64});
  at::Tensor ties = torch::randn({3001, 64});
  ties.slice(0, 0, 1800).zero_();  // 60% of the blocks tie at norm 0
  at::Tensor clusters = torch::randn({3001, 64}).abs() + 1.0;
  clusters.slice(0, 1000, 1100).fill_(0.5);  // a few exact ties inside the distribution
  at::Tensor with_nan = torch::randn({3001, 64});
  with_nan.index_put_({torch::randint(0, 3001, {300}), torch::randint(0, 64, {300})}, NAN);
  struct Case {
    const char* name;
    at::Tensor data;
    double level;
  };
  // A regular sample of blocks sees only every 12th block here, 100 times
  // smaller than the rest: its window misses the k-th key.
  at::Tensor periodic = torch::rand({3072, 64}) + 1.0;
  periodic.view({-1, 4}).slice(0, 6, c10::nullopt, 12).mul_(0.01);
  for (const Case& c : {Case{"random", random, 0.5}, Case{"random", random, 0.07}, Case{"random", random, 0.93},
                        Case{"ties below", ties, 0.75}, Case{"ties at k", ties, 0.6}, Case{"ties at k", ties, 0.3},
                        Case{"clusters", clusters, 0.34}, Case{"nan", with_nan, 0.5}, Case{"nan", with_nan, 0.999},
                        Case{"periodic", periodic, 0.5}, Case{"periodic", periodic, 0.05}}) {
    const at::Tensor expected = plain_block_mask(c.data, 4, c.level);
    with_each_kernel([&](const std::string& kernel) {
      for (const int threads : {1, 2, 3}) {
        at::set_num_threads(threads);
        const at::Tensor got = mask_of(c.data, options(c.level, {1, 4}, 4));
        EXPECT_TRUE(torch::equal(got, expected))
            << c.name << " at level " << c.level << " with " << threads << " threads, " << kernel << " kernel";
        // The same data again through the same sparsifier's workspace.
        DataNormSparsifier twice(options(c.level, {1, 4}, 4));
        twice.add_data("d", c.data);
        twice.step();
        twice.step();
        EXPECT_TRUE(torch::equal(twice.get_mask("d"), expected)) << c.name << ", second step";
      }
    });
  }
  at::set_num_threads(1);
}

TEST(DataNormSparsifier, SumsEachBlockLeftToRight) {
  // Blocks A = [1, 0, e, e] and B = [e, e, 1, 0] among blocks of clearly
  // smaller and larger norms, the k-th falling on the last A. Summed left to
  // right, as the reference's avg_pool2d, A's e's vanish one at a time, so
  // A < B and exactly the smaller blocks and the A's are selected; summed in
  // pairs, A = B and the lowest-index A's and B's would be.
  torch::manual_seed(14);
  const int64_t blocks = 65536, below = 16384, each = 1024;
  for (const Norm norm : {Norm::L1, Norm::L2}) {
    const float e = norm == Norm::L1 ? std::ldexp(1.0f, -24) : std::ldexp(1.0f, -12);
    at::Tensor table = torch::empty({blocks, 4});
    at::Tensor kind = torch::zeros({blocks}, torch::kLong);  // 0 smaller, 1 A, 2 B, 3 larger
    const at::Tensor order = torch::randperm(blocks);
    const at::Tensor small_ids = order.slice(0, 0, below), a_ids = order.slice(0, below, below + each),
                     b_ids = order.slice(0, below + each, below + 2 * each), large_ids = order.slice(0, below + 2 * each);
    table.index_put_({small_ids}, torch::rand({below, 1}).mul(0.1).expand({below, 4}));
    table.index_put_({large_ids}, torch::rand({large_ids.numel(), 1}).add(1.5).expand({large_ids.numel(), 4}));
    table.index_put_({a_ids}, torch::tensor({1.0f, 0.0f, e, e}).expand({each, 4}));
    table.index_put_({b_ids}, torch::tensor({e, e, 1.0f, 0.0f}).expand({each, 4}));
    kind.index_fill_(0, a_ids, 1).index_fill_(0, b_ids, 2).index_fill_(0, large_ids, 3);
    const at::Tensor expected = kind.ge(2).to(torch::kByte).repeat_interleave(4).view({4096, 64});
    const double level = static_cast<double>(below + each) / static_cast<double>(blocks);
    with_each_kernel([&](const std::string& kernel) {
      EXPECT_TRUE(torch::equal(mask_of(table.view({4096, 64}), options(level, {1, 4}, 4, norm)), expected))
          << (norm == Norm::L1 ? "L1, " : "L2, ") << kernel << " kernel";
    });
  }
}

TEST(DataNormSparsifier, LargeTablesL2AndPartialBlocks) {
  // L2 norms (NaN squares included) and 2 zeros per selected (1, 4) block:
  // the blocks chosen by the plain rule on squares, and in each the two
  // smallest magnitudes (ties by position) zeroed.
  torch::manual_seed(13);
  at::Tensor data = torch::randn({3001, 64});
  data.index_put_({torch::randint(0, 3001, {50}), torch::randint(0, 64, {50})}, -NAN);
  const at::Tensor squares = data * data;
  const at::Tensor rank = std::get<1>(std::get<1>(data.abs().nan_to_num(INFINITY).view({-1, 4}).sort(true, 1, false)).sort(true, 1, false));
  with_each_kernel([&](const std::string& kernel) {
    for (const int threads : {1, 2}) {
      at::set_num_threads(threads);
      EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 4}, 4, Norm::L2)),
                               plain_block_mask(squares, 4, 0.5)))
          << "L2, " << threads << " threads, " << kernel << " kernel";
      EXPECT_TRUE(torch::equal(mask_of(data, options(0.5, {1, 4}, 2)), [&] {
        const at::Tensor sel = plain_block_mask(data, 4, 0.5).view({-1, 4}).select(1, 0).eq(0);
        return (~(sel.unsqueeze(1) & rank.lt(2))).to(torch::kByte).view({3001, 64});
      }())) << "2 of 4, " << threads << " threads, " << kernel << " kernel";
    }
  });
  at::set_num_threads(1);
}

TEST(DataNormSparsifier, LargeTablesWithPartialBlocksAndOddShapes) {
  // Blocks that do not tile the rows, and (1, 1) blocks, whose bins do not fit
  // in the mask: each checked against the zeroed fraction and the plain rule
  // on the whole-block case of the same data.
  torch::manual_seed(12);
  const at::Tensor data = torch::randn({2049, 63});
  for (const int threads : {1, 2}) {
    at::set_num_threads(threads);
    const at::Tensor unstructured = mask_of(data, options(0.5, {1, 1}, 1));
    EXPECT_EQ(unstructured.sum().item<int64_t>(), data.numel() - std::llround(0.5 * data.numel()));
    const at::Tensor threshold = std::get<0>(data.abs().flatten().kthvalue(std::llround(0.5 * data.numel())));
    EXPECT_TRUE(torch::equal(unstructured, (data.abs() > threshold).to(torch::kByte)));
    const at::Tensor tall = mask_of(data, options(0.4, {4, 2}, 8));
    const int64_t blocks = ((2049 + 3) / 4) * ((63 + 1) / 2);
    const at::Tensor per_block = 1 - torch::nn::functional::max_pool2d(
                                         (1 - tall).to(torch::kFloat).unsqueeze(0),
                                         torch::nn::functional::MaxPool2dFuncOptions({4, 2}).ceil_mode(true));
    EXPECT_EQ(per_block.numel(), blocks);
    EXPECT_EQ((per_block == 0).sum().item<int64_t>(), std::llround(0.4 * blocks));
  }
  at::set_num_threads(1);
}

}  // namespace
}  // namespace sparsity
