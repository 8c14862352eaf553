// Behaviours of the reference's test_data_sparsifier.py (BaseDataSparsifier
// part) for every kind of data, and the base class's own guarantees.
#include <fstream>

#include <cstring>

#include "test_support.h"

namespace sparsity {
namespace {

using testing::DataKind;
using testing::Datum;
using testing::ImplementedSparsifier;
using testing::error_of;
using testing::make_datum;

// The reference's layout: three names with the defaults, two with a config.
struct ReferenceLayout {
  std::vector<std::pair<std::string, Datum>> plain;
  std::vector<std::tuple<std::string, Datum, Config>> configured;
  Config defaults{{"test", 3}};

  explicit ReferenceLayout(DataKind kind) {
    plain = {{"d1", make_datum(kind, 3, 3)}, {"d2", make_datum(kind, 4, 4)}, {"d3", make_datum(kind, 5, 5)}};
    configured = {{"d4", make_datum(kind, 1, 1), Config{{"test", 7}}},
                  {"d5", make_datum(kind, 4, 4), Config{{"test", 8}}}};
  }

  std::unique_ptr<ImplementedSparsifier> make() const {
    auto s = std::make_unique<ImplementedSparsifier>(defaults);
    for (const auto& [name, d] : plain) d.add_to(*s, name);
    for (const auto& [name, d, config] : configured) d.add_to(*s, name, config);
    return s;
  }

  std::vector<std::pair<std::string, at::Tensor>> all() const {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& [name, d] : plain) out.emplace_back(name, d.weight);
    for (const auto& [name, d, config] : configured) out.emplace_back(name, d.weight);
    return out;
  }
};

class BaseDataSparsifierKinds : public ::testing::TestWithParam<DataKind> {};

TEST_P(BaseDataSparsifierKinds, ConstructorMergesDefaultsWithConfig) {
  ReferenceLayout setup(GetParam());
  auto s = setup.make();
  EXPECT_EQ(s->names(), (std::vector<std::string>{"d1", "d2", "d3", "d4", "d5"}));
  EXPECT_EQ(s->data_group("d1"), (Config{{"test", 3}}));
  EXPECT_EQ(s->data_group("d4"), (Config{{"test", 7}}));
  EXPECT_EQ(s->data_group("d5"), (Config{{"test", 8}}));
}

TEST_P(BaseDataSparsifierKinds, StepCallsUpdateMaskForEveryName) {
  ReferenceLayout setup(GetParam());
  auto s = setup.make();
  for (const auto& [name, weight] : setup.all()) {
    EXPECT_TRUE(torch::equal(s->get_data(name, false), weight.detach()));
    EXPECT_TRUE(s->get_data(name).is_same(weight));
    EXPECT_TRUE(s->get_mask(name)[0].eq(1).all().item<bool>());
  }
  for (int i = 0; i < 3; ++i) s->step();
  EXPECT_FALSE(s->saw_grad_mode) << "update_mask must run under no-grad";
  for (const auto& [name, weight] : setup.all()) {
    EXPECT_TRUE(s->get_data(name, false)[0].eq(0).all().item<bool>()) << name;
    EXPECT_TRUE(s->get_data(name).is_same(weight));
    EXPECT_TRUE(s->get_mask(name)[0].eq(0).all().item<bool>());
    EXPECT_EQ(s->state(name).get<int64_t>("step_count"), 3);
  }
}

TEST_P(BaseDataSparsifierKinds, SquashMaskWritesIntoTheUsersDataAndDropsTheMask) {
  ReferenceLayout setup(GetParam());
  auto s = setup.make();
  std::vector<at::Tensor> before;
  for (const auto& [name, weight] : setup.all()) {
    EXPECT_TRUE(s->is_parametrized(name));
    before.push_back(weight.detach().clone());
  }
  s->step();
  s->squash_mask();
  size_t i = 0;
  for (const auto& [name, weight] : setup.all()) {
    EXPECT_FALSE(s->is_parametrized(name));
    const std::string message = error_of<std::logic_error>([&] { s->get_data(name, true); });
    EXPECT_CONTAINS(message, "squashed");
    // Row 0 was pruned in the caller's own tensor; the rest is untouched.
    EXPECT_TRUE(weight[0].eq(0).all().item<bool>()) << name;
    if (weight.size(0) > 1) {
      EXPECT_TRUE(torch::equal(weight.detach().slice(0, 1), before[i].slice(0, 1)));
    }
    EXPECT_TRUE(s->get_data(name, false).is_same(weight));
    ++i;
  }
}

TEST_P(BaseDataSparsifierKinds, AddDataReplacesDataKeepingConfigAndMask) {
  ReferenceLayout setup(GetParam());
  auto s = setup.make();
  s->step();
  const at::Tensor mask = s->get_mask("d2");
  const Datum replacement = make_datum(GetParam(), 4, 4);
  replacement.add_to(*s, "d2");
  EXPECT_TRUE(s->get_data("d2").is_same(replacement.weight));
  EXPECT_EQ(s->data_group("d2"), (Config{{"test", 3}}));
  EXPECT_TRUE(s->get_mask("d2").is_same(mask));
  EXPECT_TRUE(mask[0].eq(0).all().item<bool>()) << "reuse_mask keeps the pruned row";
  // Replacing with another shape needs a fresh mask.
  const Datum other = make_datum(GetParam(), 5, 5);
  const std::string message = error_of<std::invalid_argument>([&] { other.add_to(*s, "d2"); });
  EXPECT_CONTAINS(message, "reuse_mask=false");
  EXPECT_CONTAINS(message, "[4, 4]");
  EXPECT_CONTAINS(message, "[5, 5]");
  EXPECT_TRUE(s->get_data("d2").is_same(replacement.weight)) << "a failed add_data changes nothing";
  other.add_to(*s, "d2", Config{{"test", 9}}, /*reuse_mask=*/false);
  EXPECT_TRUE(s->get_mask("d2").is_same(mask)) << "the same mask object for the life of the name";
  EXPECT_EQ(mask.sizes(), other.weight.sizes());
  EXPECT_TRUE(mask.eq(1).all().item<bool>());
  EXPECT_EQ(s->data_group("d2"), (Config{{"test", 9}}));
}

TEST_P(BaseDataSparsifierKinds, HoldsTheCallersMemoryNotACopy) {
  ReferenceLayout setup(GetParam());
  auto s = setup.make();
  for (const auto& [name, weight] : setup.all()) {
    {
      torch::NoGradGuard no_grad;
      weight.add_(torch::randn(weight.sizes()));
    }
    const at::Tensor held = s->get_data(name);
    EXPECT_EQ(held.data_ptr(), weight.data_ptr());
    EXPECT_TRUE(torch::equal(held, weight));
  }
}

TEST_P(BaseDataSparsifierKinds, MasksAreBytesOfTheDataShape) {
  ReferenceLayout setup(GetParam());
  auto s = setup.make();
  for (const auto& [name, weight] : setup.all()) {
    const at::Tensor mask = s->get_mask(name);
    EXPECT_EQ(mask.scalar_type(), at::kByte);
    EXPECT_EQ(mask.sizes(), weight.sizes());
    EXPECT_EQ(mask.device(), weight.device());
    EXPECT_FALSE(mask.requires_grad());
  }
}

INSTANTIATE_TEST_SUITE_P(AllKinds, BaseDataSparsifierKinds,
                         ::testing::Values(DataKind::Tensor, DataKind::Parameter, DataKind::Embedding,
                                           DataKind::EmbeddingBag),
                         testing::kind_name);

TEST(BaseDataSparsifier, AddDataReturnsTheMaskedData) {
  ImplementedSparsifier s;
  at::Tensor data = torch::randn({3, 4});
  s.add_data("x", data);
  s.step();
  const at::Tensor masked = s.add_data("x", data);
  EXPECT_TRUE(masked[0].eq(0).all().item<bool>());
  EXPECT_TRUE(torch::equal(masked.slice(0, 1), data.slice(0, 1)));
}

// add_data and get_data compute data * mask in one pass, without converting
// the mask; the values must be those of the plain product, bit for bit.
at::Tensor plain_product(const at::Tensor& data, const at::Tensor& mask) { return data * mask.to(data.scalar_type()); }

// Bit for bit, -0 included; a NaN matches any NaN (LibTorch's own bfloat16
// kernels do not agree with its scalar conversion on a NaN's sign).
bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const at::Tensor both_nan = a.isnan().logical_and(b.isnan());
  if (!a.isnan().logical_xor(b.isnan()).logical_not().all().item<bool>()) return false;
  const at::Tensor x = a.masked_fill(both_nan, 0).contiguous(), y = b.masked_fill(both_nan, 0).contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), static_cast<size_t>(x.numel() * x.element_size())) == 0;
}

TEST(BaseDataSparsifier, AddDataReturnsThePlainProductBitForBit) {
  ImplementedSparsifier s;
  for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
    at::Tensor data = torch::randn({5, 7}).to(dtype);
    data[1][2] = NAN;
    data[2][3] = INFINITY;
    data[3][4] = -INFINITY;
    data[4][5] = -0.0;
    data[0][1] = NAN;  // row 0 is masked: NaN * 0 stays NaN, as in the reference
    data[0][2] = -3.0;  // -3 * 0 = -0
    data[0][3] = INFINITY;
    const at::Tensor fresh = s.add_data("x", data, {}, /*reuse_mask=*/false);
    EXPECT_TRUE(same_bits(fresh, data)) << dtype;
    EXPECT_FALSE(fresh.is_same(data));
    EXPECT_NE(fresh.data_ptr(), data.data_ptr()) << "the result is new memory, the data is not touched";
    s.step();
    const at::Tensor masked = s.add_data("x", data);
    const at::Tensor plain = plain_product(data, s.get_mask("x"));
    EXPECT_TRUE(same_bits(masked, plain)) << dtype << "\n" << masked << "\n" << plain;
    EXPECT_TRUE(std::signbit(masked[0][2].item<double>())) << "-3 * 0 is -0";
    EXPECT_TRUE(std::isnan(masked[0][3].item<double>())) << "inf * 0 is NaN";
    EXPECT_TRUE(same_bits(s.get_data("x", /*return_original=*/false), masked)) << dtype;
    EXPECT_TRUE(s.get_data("x").is_same(data)) << "the sparsifier still holds the caller's tensor";
  }
}

TEST(BaseDataSparsifier, AddDataProductOfNonContiguousData) {
  ImplementedSparsifier s;
  const at::Tensor base = torch::randn({6, 9});
  const at::Tensor data = base.t();  // [9, 6], strides (1, 9)
  s.add_data("t", data);
  s.step();
  s.get_mask("t")[3][2] = 0;
  const at::Tensor masked = s.get_data("t", false);
  EXPECT_TRUE(same_bits(masked, plain_product(data, s.get_mask("t"))));
  EXPECT_EQ(masked.strides(), data.strides()) << "the product keeps the data's layout";
  const at::Tensor every_other = torch::randn({8, 10}).slice(1, 0, 10, 2);
  s.add_data("slice", every_other);
  s.step();
  EXPECT_TRUE(same_bits(s.get_data("slice", false), plain_product(every_other, s.get_mask("slice"))));
}

TEST(BaseDataSparsifier, AddDataOfAParameterIsDifferentiable) {
  ImplementedSparsifier s;
  at::Tensor param = torch::randn({3, 4}).requires_grad_();
  s.add_data("p", param);
  s.step();
  at::Tensor masked = s.add_data("p", param);
  ASSERT_TRUE(masked.requires_grad());
  (masked * torch::arange(12).reshape({3, 4})).sum().backward();
  EXPECT_TRUE(torch::equal(param.grad(), torch::arange(12).reshape({3, 4}).to(torch::kFloat) *
                                             s.get_mask("p").to(torch::kFloat)));
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(s.add_data("p", param).requires_grad()) << "no graph under no-grad";
  }
}

TEST(BaseDataSparsifier, SquashMultipliesInPlaceWithThePlainProductsValues) {
  ImplementedSparsifier s;
  at::Tensor data = torch::randn({4, 4});
  data[0][0] = NAN;
  data[0][1] = -2.0;
  const at::Tensor expected_later = data.clone();
  void* storage = data.data_ptr();
  s.add_data("x", data);
  s.step();
  const at::Tensor expected = plain_product(expected_later, s.get_mask("x"));
  s.squash_mask({}, /*leave_parametrized=*/true);
  EXPECT_EQ(data.data_ptr(), storage);
  EXPECT_TRUE(same_bits(data, expected));
}

TEST(BaseDataSparsifier, ParameterKeepsAutogradThroughTheMaskedView) {
  ImplementedSparsifier s;
  at::Tensor param = torch::randn({3, 4}).requires_grad_();
  s.add_data("p", param);
  s.step();
  at::Tensor masked = s.get_data("p", false);
  ASSERT_TRUE(masked.requires_grad());
  masked.sum().backward();
  EXPECT_TRUE(param.grad()[0].eq(0).all().item<bool>()) << "pruned entries get no gradient";
  EXPECT_TRUE(param.grad().slice(0, 1).eq(1).all().item<bool>());
}

TEST(BaseDataSparsifier, BadNamesAreRejected) {
  ImplementedSparsifier s;
  const at::Tensor t = torch::randn({2, 2});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("", t); }), "empty");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("a.b", t); }), "'a.b'");
  EXPECT_TRUE(s.names().empty());
}

TEST(BaseDataSparsifier, BadDataIsRejectedWithItsType) {
  ImplementedSparsifier s;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("i", torch::ones({2, 2}, torch::kLong)); }),
                  "Long");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("b", torch::ones({2}, torch::kBool)); }),
                  "Bool");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("u", at::Tensor()); }), "undefined");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("s", torch::eye(3).to_sparse()); }),
                  "layout");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("e", torch::nn::Embedding(nullptr)); }),
                  "empty");
}

TEST(BaseDataSparsifier, AcceptsEveryFloatingDtype) {
  ImplementedSparsifier s;
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
    const std::string name = std::string("t_") + c10::toString(dtype);
    s.add_data(name, torch::randn({2, 3}).to(dtype));
  }
  s.step();
  for (const auto& name : s.names()) {
    EXPECT_TRUE(s.get_data(name, false)[0].eq(0).all().item<bool>()) << name;
    EXPECT_EQ(s.get_data(name, false).scalar_type(), s.get_data(name).scalar_type()) << name;
  }
}

TEST(BaseDataSparsifier, UnknownNamesAreErrorsThatListTheKnownOnes) {
  ImplementedSparsifier s;
  s.add_data("weights", torch::randn({2, 2}));
  s.add_data("other", torch::randn({2, 2}));
  const std::string message = error_of<std::out_of_range>([&] { s.get_mask("wieghts"); });
  EXPECT_CONTAINS(message, "'wieghts'");
  EXPECT_CONTAINS(message, "weights");
  EXPECT_CONTAINS(error_of<std::out_of_range>([&] { s.get_data("nope"); }), "'nope'");
  EXPECT_CONTAINS(error_of<std::out_of_range>([&] { s.data_group("nope"); }), "'nope'");
  // squash_mask checks every name first: nothing is squashed.
  EXPECT_CONTAINS(error_of<std::out_of_range>([&] { s.squash_mask({"weights", "nope"}); }), "'nope'");
  EXPECT_TRUE(s.is_parametrized("weights"));
}

TEST(BaseDataSparsifier, SquashSelectedNamesWithoutApplyingTheMask) {
  ImplementedSparsifier s;
  at::Tensor a = torch::randn({3, 3}), b = torch::randn({3, 3});
  const at::Tensor a_before = a.clone();
  s.add_data("a", a);
  s.add_data("b", b);
  s.step();
  s.squash_mask({"a"}, /*leave_parametrized=*/false);
  EXPECT_FALSE(s.is_parametrized("a"));
  EXPECT_TRUE(s.is_parametrized("b"));
  EXPECT_TRUE(torch::equal(a, a_before)) << "leave_parametrized=false leaves the data as it was";
  // step() skips squashed names; squashing again is a no-op.
  s.step();
  EXPECT_EQ(s.state("a").get<int64_t>("step_count"), 1);
  EXPECT_EQ(s.state("b").get<int64_t>("step_count"), 2);
  s.squash_mask();
  s.squash_mask();
  EXPECT_TRUE(b[0].eq(0).all().item<bool>());
  // Adding data again re-attaches the name.
  s.add_data("a", a);
  EXPECT_TRUE(s.is_parametrized("a"));
}

TEST(BaseDataSparsifier, DisabledMaskUpdatesMakeStepANoOp) {
  ImplementedSparsifier s;
  s.add_data("x", torch::randn({2, 2}));
  s.set_mask_update_enabled(false);
  s.step();
  EXPECT_TRUE(s.get_mask("x").eq(1).all().item<bool>());
  EXPECT_FALSE(s.state("x").contains("step_count"));
  s.set_mask_update_enabled(true);
  s.step();
  EXPECT_EQ(s.state("x").get<int64_t>("step_count"), 1);
}

TEST(BaseDataSparsifier, ReplacingWarnsOncePerName) {
  testing::LogCapture log;
  ImplementedSparsifier s;
  for (int i = 0; i < 5; ++i) s.add_data("batch", torch::randn({2, 2}));
  EXPECT_EQ(log.count("replacing the data named 'batch'"), 1) << log.text();
  s.add_data("other", torch::randn({2, 2}));
  s.add_data("other", torch::randn({2, 2}));
  EXPECT_EQ(log.count("replacing the data named"), 2) << log.text();
  s.set_replace_warning(false);
  s.add_data("third", torch::randn({2, 2}));
  s.add_data("third", torch::randn({2, 2}));
  EXPECT_EQ(log.count("replacing the data named"), 2) << log.text();
}

TEST(BaseDataSparsifier, MasksUserEditsAreLive) {
  ImplementedSparsifier s;
  at::Tensor data = torch::ones({3, 3});
  s.add_data("x", data);
  s.get_mask("x")[2][2] = 0;
  EXPECT_EQ(s.get_data("x", false)[2][2].item<float>(), 0.0f);
}

// The reference's "input data" loop: a new batch under the same name each
// iteration. The mask object stays, old batches are released.
// Everything a sparsifier holds, including which tensor objects it holds.
struct Snapshot {
  struct Name {
    at::Tensor data, data_values, mask, mask_values;
    Config config, state;
    bool parametrized;
  };
  std::vector<std::string> names;
  Config defaults;
  bool mask_update_enabled;
  std::vector<Name> entries;

  explicit Snapshot(const BaseDataSparsifier& s)
      : names(s.names()), defaults(s.defaults()), mask_update_enabled(s.mask_update_enabled()) {
    for (const auto& name : names) {
      const at::Tensor data = s.get_data(name, /*return_original=*/true);
      entries.push_back({data, data.clone(), s.get_mask(name), s.get_mask(name).clone(), s.data_group(name),
                         s.state(name), s.is_parametrized(name)});
    }
  }

  void expect_unchanged(const BaseDataSparsifier& s) const {
    ASSERT_EQ(s.names(), names);
    EXPECT_EQ(s.defaults(), defaults);
    EXPECT_EQ(s.mask_update_enabled(), mask_update_enabled);
    for (size_t i = 0; i < names.size(); ++i) {
      SCOPED_TRACE(names[i]);
      const Name& e = entries[i];
      const at::Tensor data = s.get_data(names[i], /*return_original=*/true);
      EXPECT_TRUE(data.is_same(e.data));
      EXPECT_TRUE(torch::equal(data, e.data_values));
      EXPECT_TRUE(s.get_mask(names[i]).is_same(e.mask));
      EXPECT_TRUE(torch::equal(s.get_mask(names[i]), e.mask_values));
      EXPECT_EQ(s.data_group(names[i]), e.config);
      EXPECT_EQ(s.state(names[i]), e.state);
      EXPECT_EQ(s.is_parametrized(names[i]), e.parametrized);
    }
  }
};

// A sparsifier over "a" and "b" (4x4, stepped once: row 0 of each mask is
// zero) and a state for the same names with other values, defaults and masks.
struct LoadFixture {
  ImplementedSparsifier target{Config{{"test", 1}}};
  c10::impl::GenericDict state = new_state_dict();

  explicit LoadFixture(at::Tensor b_data = torch::full({4, 4}, 2.0)) {
    target.add_data("a", torch::full({4, 4}, 1.0), Config{{"level", 0.25}});
    target.add_data("b", std::move(b_data));
    target.step();
    target.set_mask_update_enabled(false);
    ImplementedSparsifier source(Config{{"test", 9}});
    source.add_data("a", torch::full({4, 4}, 10.0), Config{{"level", 0.75}});
    source.add_data("b", torch::full({4, 4}, 20.0));
    source.get_mask("a")[1] = 0;
    source.get_mask("b")[2] = 0;
    source.state("a").set("step_count", 40);
    state = source.state_dict().toGenericDict();
  }
};

TEST(BaseDataSparsifier, LoadingAStateWhoseLastEntryIsBadChangesNothing) {
  LoadFixture f;
  const Snapshot before(f.target);
  // The last entry's data is integral: found after "a" was parsed.
  f.state.at("data").toGenericDict().insert_or_assign("b", torch::ones({4, 4}, torch::kLong));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { f.target.load_state_dict(f.state); }),
                  "sparsifier state of 'b': data has non-floating dtype Long");
  before.expect_unchanged(f.target);
  EXPECT_EQ(f.target.get_data("a", true)[0][0].item<float>(), 1.0f);
}

TEST(BaseDataSparsifier, LoadingAStateThatCannotBeWrittenInPlaceChangesNothing) {
  // "b" is registered as an expanded tensor: its 16 elements share 4 floats,
  // so the state's values cannot be copied into it. That is found when "a"
  // would already have received its values.
  LoadFixture f(torch::full({1, 4}, 2.0).expand({4, 4}));
  const Snapshot before(f.target);
  const std::string message = error_of<c10::Error>([&] { f.target.load_state_dict(f.state); });
  EXPECT_CONTAINS(message, "more than one element of the written-to tensor refers to a single memory location");
  before.expect_unchanged(f.target);
  EXPECT_EQ(f.target.get_data("a", true)[0][0].item<float>(), 1.0f);
  EXPECT_EQ(f.target.get_mask("a")[0][0].item<uint8_t>(), 0);
  EXPECT_EQ(f.target.get_mask("a")[1][0].item<uint8_t>(), 1);
}

TEST(BaseDataSparsifier, LoadingTheFixturesStateWritesEveryNameInPlace) {
  // The fixture's state is good: what the two tests above expect to stay
  // unchanged is what a successful load changes.
  LoadFixture f;
  const Snapshot before(f.target);
  f.target.load_state_dict(f.state);
  EXPECT_TRUE(f.target.get_data("a", true).is_same(before.entries[0].data));
  EXPECT_TRUE(torch::equal(f.target.get_data("a", true), torch::full({4, 4}, 10.0)));
  EXPECT_TRUE(torch::equal(f.target.get_data("b", true), torch::full({4, 4}, 20.0)));
  EXPECT_TRUE(f.target.get_mask("b").is_same(before.entries[1].mask));
  EXPECT_EQ(f.target.get_mask("a")[1].sum().item<int64_t>(), 0);
  EXPECT_EQ(f.target.get_mask("a")[0].sum().item<int64_t>(), 4);
  EXPECT_EQ(f.target.data_group("a"), (Config{{"test", 9}, {"level", 0.75}}));
  EXPECT_EQ(f.target.state("a").get<int64_t>("step_count"), 40);
  EXPECT_EQ(f.target.defaults(), (Config{{"test", 9}}));
  EXPECT_TRUE(f.target.mask_update_enabled());
}

TEST(BaseDataSparsifier, InputDataLoopRunsWithSteadyMemory) {
  if (testing::kUnderAddressSanitizer) {
    GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine: resident memory measures no leak here "
                    "(LeakSanitizer checks for leaks instead)";
  }
  ImplementedSparsifier s;
  testing::LogCapture quiet;
  auto rss_kb = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0L;
  };
  at::Tensor first_mask;
  long warm = 0;
  for (int i = 0; i < 3000; ++i) {
    at::Tensor batch = torch::randn({64, 256});  // 64 KiB: a leak of every batch would be 190 MiB
    at::Tensor x = s.add_data("train_data", batch);
    EXPECT_EQ(x.sizes(), batch.sizes());
    s.step();
    if (i == 0) first_mask = s.get_mask("train_data");
    if (i == 300) warm = rss_kb();
  }
  EXPECT_TRUE(s.get_mask("train_data").is_same(first_mask));
  EXPECT_EQ(s.names().size(), 1u);
  EXPECT_EQ(s.state("train_data").get<int64_t>("step_count"), 3000);
  EXPECT_LT(rss_kb() - warm, 32 * 1024) << "resident memory grew by more than 32 MiB";
}

}  // namespace
}  // namespace sparsity
