// SparseLinear and SparseInputLinear against the dense Linear (both kernel
// paths, each format, odd shapes, batch 0 and 1, leading dims, strided
// inputs), their errors, and the inference policy and to_sparse_inference.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "sparsity/sparse/sparse_inference.h"
#include "sparsity/sparse/sparse_linear.h"
#include "test_support.h"

namespace sparsity {

// gtest prints the parameter with this (found by argument-dependent lookup).
void PrintTo(SparseKernelIsa isa, std::ostream* os);

namespace {

// Asks for one kernel level while it lives (then back to the default).
struct KernelPath {
  explicit KernelPath(SparseKernelIsa isa) { set_sparse_kernel_isa(isa); }
  ~KernelPath() { set_sparse_kernel_isa(SparseKernelIsa::Avx512); }
};

bool env_forces_portable() {
  const char* env = std::getenv("SPARSITY_PORTABLE_KERNELS");
  return !(env == nullptr || *env == '\0' || std::string(env) == "0");
}

// The level a request gets on this CPU under this environment.
SparseKernelIsa expected_isa(SparseKernelIsa asked) {
  if (env_forces_portable()) return SparseKernelIsa::Portable;
  return std::min(asked, sparse_kernel_isa_supported());
}

// Skips a level the CPU lacks (the test would repeat a lower one).
#define SKIP_UNLESS_SUPPORTED(isa)                                                       \
  if (!env_forces_portable() && (isa) > sparse_kernel_isa_supported()) {                \
    GTEST_SKIP() << "this CPU lacks the kernels asked for";                            \
  }

const char* isa_string(SparseKernelIsa isa) {
  switch (isa) {
    case SparseKernelIsa::Portable: return "Portable";
    case SparseKernelIsa::Avx2: return "Avx2";
    default: return "Avx512";
  }
}

std::string isa_name(const ::testing::TestParamInfo<SparseKernelIsa>& info) { return isa_string(info.param); }

// The message of the std::invalid_argument `f` throws (a test failure if none).
template <class F>
std::string error_message(F&& f) {
  return testing::error_of<std::invalid_argument>(std::forward<F>(f));
}

// max |a - b| / max |b|: the error relative to the result's scale.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-30);
  return (a - b).abs().max().item<double>() / scale;
}

enum class Pattern { Unstructured, Rows4, Cols4 };

// A Linear whose weight has `sparsity` zeros in the pattern: single values,
// (1, 4) blocks or (4, 1) blocks.
torch::nn::Linear sparse_linear(int64_t in, int64_t out, double sparsity, Pattern pattern, bool bias = true,
                                uint64_t seed = 1) {
  torch::manual_seed(seed);
  torch::nn::Linear linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::NoGradGuard no_grad;
  at::Tensor keep;
  switch (pattern) {
    case Pattern::Unstructured: keep = torch::rand({out, in}) >= sparsity; break;
    case Pattern::Rows4: keep = (torch::rand({out, in / 4, 1}) >= sparsity).expand({out, in / 4, 4}).reshape({out, in}); break;
    case Pattern::Cols4: keep = (torch::rand({out / 4, 1, in}) >= sparsity).expand({out / 4, 4, in}).reshape({out, in}); break;
  }
  linear->weight.mul_(keep);
  if (bias) linear->bias.normal_();
  return linear;
}

void expect_matches(SparseLinear& sparse, torch::nn::Linear& dense, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  const at::Tensor expected = dense(x);
  const at::Tensor got = sparse(x);
  ASSERT_EQ(got.sizes(), expected.sizes());
  if (expected.numel() > 0) {
    EXPECT_LE(relative_error(got, expected), 1e-5) << "shape " << x.sizes();
  }
}

struct FormatCase {
  const char* name;
  SparseLinearOptions options;
  Pattern pattern;
  SparseFormat format;
  std::array<int64_t, 2> block;
};

std::vector<FormatCase> format_cases() {
  return {
      {"csr", SparseLinearOptions().format(SparseFormat::CSR), Pattern::Unstructured, SparseFormat::CSR, {1, 1}},
      {"auto-unstructured", SparseLinearOptions(), Pattern::Unstructured, SparseFormat::CSR, {1, 1}},
      {"auto-1x4", SparseLinearOptions(), Pattern::Rows4, SparseFormat::BlockCSR, {1, 4}},
      {"auto-4x1", SparseLinearOptions(), Pattern::Cols4, SparseFormat::BlockCSR, {4, 1}},
      {"1x4-holding-zeros", SparseLinearOptions().block_shape({1, 4}), Pattern::Unstructured, SparseFormat::BlockCSR,
       {1, 4}},
      {"4x1-holding-zeros", SparseLinearOptions().format(SparseFormat::BlockCSR).block_shape({4, 1}),
       Pattern::Unstructured, SparseFormat::BlockCSR, {4, 1}},
  };
}

class SparseLinearKernels : public ::testing::TestWithParam<SparseKernelIsa> {};

TEST_P(SparseLinearKernels, MatchesDenseForEachFormatShapeAndBatch) {
  SKIP_UNLESS_SUPPORTED(GetParam());
  SKIP_UNLESS_SUPPORTED(GetParam());
  KernelPath path(GetParam());
  EXPECT_EQ(sparse_kernel_isa(), expected_isa(GetParam()));
  EXPECT_EQ(sparse_kernels_use_avx2(), sparse_kernel_isa() != SparseKernelIsa::Portable);
  if (!env_forces_portable()) {
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    EXPECT_EQ(sparse_kernel_isa_supported(),
              avx512 ? SparseKernelIsa::Avx512 : avx2 ? SparseKernelIsa::Avx2 : SparseKernelIsa::Portable);
  }
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{16, 8}, {36, 20}, {784, 128}, {100, 64}, {2100, 24}, {4100, 8}};
  for (const auto& c : format_cases()) {
    for (const auto& [in, out] : shapes) {
      for (double sparsity : {0.5, 0.9}) {
        SCOPED_TRACE(std::string(c.name) + " in=" + std::to_string(in) + " out=" + std::to_string(out) +
                     " sparsity=" + std::to_string(sparsity));
        auto dense = sparse_linear(in, out, sparsity, c.pattern);
        SparseLinear sparse(dense, c.options);
        EXPECT_EQ(sparse->format(), c.format);
        EXPECT_EQ(sparse->block_shape(), c.block);
        EXPECT_TRUE(torch::equal(sparse->dense_weight(), dense->weight));
        for (int64_t batch : {0, 1, 3, 7, 8, 13, 24, 40, 64, 70, 130}) {
          SCOPED_TRACE("batch=" + std::to_string(batch));
          expect_matches(sparse, dense, torch::randn({batch, in}));
        }
      }
    }
  }
}

TEST_P(SparseLinearKernels, OddSizesEmptyRowsAllZeroAndFullyDense) {
  SKIP_UNLESS_SUPPORTED(GetParam());
  KernelPath path(GetParam());
  // in=13, out=7: only CSR fits.
  auto odd = sparse_linear(13, 7, 0.6, Pattern::Unstructured);
  SparseLinear odd_sparse(odd);
  EXPECT_EQ(odd_sparse->format(), SparseFormat::CSR);
  for (int64_t batch : {1, 2, 9, 33}) expect_matches(odd_sparse, odd, torch::randn({batch, 13}));

  // Whole rows of zeros (rows 0, 3 and the last), the rest 80 % sparse.
  for (const auto& c : format_cases()) {
    SCOPED_TRACE(c.name);
    auto rows = sparse_linear(64, 32, 0.8, c.pattern);
    {
      torch::NoGradGuard no_grad;
      rows->weight.slice(0, 0, 4).zero_();
      rows->weight[31].zero_();
      rows->weight.slice(0, 12, 16).zero_();
    }
    SparseLinear sparse(rows, c.options);
    for (int64_t batch : {1, 5, 16, 40}) expect_matches(sparse, rows, torch::randn({batch, 64}));
  }

  // All zeros: the bias alone; no bias: zeros.
  auto zero = sparse_linear(40, 24, 1.0, Pattern::Unstructured);
  SparseLinear zero_sparse(zero);
  EXPECT_EQ(zero_sparse->nnz(), 0);
  EXPECT_DOUBLE_EQ(zero_sparse->weight_sparsity(), 1.0);
  {
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({10, 40});
    EXPECT_TRUE(torch::allclose(zero_sparse(x), zero->bias.expand({10, 24})));
    SparseLinear no_bias(sparse_linear(40, 24, 1.0, Pattern::Unstructured, false));
    EXPECT_EQ(no_bias(x).abs().max().item<float>(), 0.0f);
  }

  // No zeros at all: detected as (4, 1) blocks, equal to the dense layer.
  auto full = sparse_linear(48, 20, 0.0, Pattern::Unstructured);
  SparseLinear full_sparse(full);
  EXPECT_EQ(full_sparse->nnz(), 48 * 20);
  EXPECT_EQ(full_sparse->format(), SparseFormat::BlockCSR);
  for (int64_t batch : {1, 6, 8, 100}) expect_matches(full_sparse, full, torch::randn({batch, 48}));
  SparseLinear full_csr(full, SparseLinearOptions().format(SparseFormat::CSR));
  for (int64_t batch : {1, 6, 8, 100}) expect_matches(full_csr, full, torch::randn({batch, 48}));
}

TEST_P(SparseLinearKernels, LeadingDimsAndStridedInputs) {
  SKIP_UNLESS_SUPPORTED(GetParam());
  KernelPath path(GetParam());
  for (const auto& c : format_cases()) {
    SCOPED_TRACE(c.name);
    auto dense = sparse_linear(32, 12, 0.7, c.pattern);
    SparseLinear sparse(dense, c.options);
    expect_matches(sparse, dense, torch::randn({3, 5, 32}));
    expect_matches(sparse, dense, torch::randn({2, 3, 4, 32}));
    expect_matches(sparse, dense, torch::randn({32}));                        // no batch dim
    expect_matches(sparse, dense, torch::randn({9, 64}).slice(1, 0, 64, 2));  // every other column
    expect_matches(sparse, dense, torch::randn({32, 20}).t());                // transposed
    expect_matches(sparse, dense, torch::randn({4, 0, 32}));                  // empty
    expect_matches(sparse, dense, torch::randn({1, 32}).expand({17, 32}));    // stride 0
  }
}

// The batched kernels take one of two paths: batch tiles per thread, the
// inputs packed a chunk at a time (one thread on small work, or a batch of
// at least 16 columns per thread), or the rows split over the threads with
// xᵀ packed whole. Widths, chunk counts and tile remainders differ with the
// thread count, so both counts run: inputs wider than a chunk (2100 and 4100
// span 2-5 chunks at tiles of 64 to 16), batches that leave a partial tile.
TEST_P(SparseLinearKernels, BatchedPathsMatchDenseAtOneAndTwoThreads) {
  SKIP_UNLESS_SUPPORTED(GetParam());
  KernelPath path(GetParam());
  const int threads_before = at::get_num_threads();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{2100, 24}, {4100, 40}, {1032, 64}};
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    for (const auto& c : format_cases()) {
      for (const auto& [in, out] : shapes) {
        SCOPED_TRACE(std::string(c.name) + " threads=" + std::to_string(threads) + " in=" + std::to_string(in) +
                     " out=" + std::to_string(out));
        auto dense = sparse_linear(in, out, 0.7, c.pattern);
        SparseLinear sparse(dense, c.options);
        for (int64_t batch : {8, 16, 17, 31, 33, 64, 100, 129}) {
          SCOPED_TRACE("batch=" + std::to_string(batch));
          expect_matches(sparse, dense, torch::randn({batch, in}));
        }
      }
    }
  }
  at::set_num_threads(threads_before);
}

INSTANTIATE_TEST_SUITE_P(SparseLinear, SparseLinearKernels, ::testing::Values(SparseKernelIsa::Avx512, SparseKernelIsa::Avx2, SparseKernelIsa::Portable),
                         isa_name);

TEST(SparseLinear, DetectsFormatsAndCountsValues) {
  auto rows = sparse_linear(64, 16, 0.75, Pattern::Rows4);
  SparseLinear a(rows);
  EXPECT_EQ(a->block_shape(), (std::array<int64_t, 2>{1, 4}));
  EXPECT_EQ(a->stored_values(), a->nnz());
  EXPECT_EQ(a->in_features(), 64);
  EXPECT_EQ(a->out_features(), 16);
  EXPECT_NEAR(a->weight_sparsity(), 1.0 - static_cast<double>(rows->weight.ne(0).sum().item<int64_t>()) / 1024, 1e-12);

  // Unstructured zeros in explicit (1, 4) blocks: stored zeros, same weight.
  auto loose = sparse_linear(64, 16, 0.5, Pattern::Unstructured);
  SparseLinear b(loose, SparseLinearOptions().format(SparseFormat::BlockCSR));
  EXPECT_EQ(b->block_shape(), (std::array<int64_t, 2>{1, 4}));
  EXPECT_GT(b->stored_values(), b->nnz());
  EXPECT_EQ(b->stored_values() % 4, 0);
  EXPECT_TRUE(torch::equal(b->dense_weight(), loose->weight));

  // 2:4 (two zeros in each 1x4 group): CSR under Auto.
  torch::nn::Linear two_four(32, 8);
  {
    torch::NoGradGuard no_grad;
    // Row r zeroes positions r % 4 and (r + 1) % 4 of each group: no whole
    // (4, 1) or (1, 4) blocks of zeros.
    for (int64_t r = 0; r < 8; ++r) {
      two_four->weight[r].view({8, 4}).select(1, r % 4).zero_();
      two_four->weight[r].view({8, 4}).select(1, (r + 1) % 4).zero_();
    }
  }
  SparseLinear c(two_four);
  EXPECT_EQ(c->format(), SparseFormat::CSR);
  EXPECT_EQ(c->nnz(), 128);
  EXPECT_DOUBLE_EQ(c->weight_sparsity(), 0.5);

  std::ostringstream text;
  text << *a;
  EXPECT_NE(text.str().find("format=block_csr"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("block_shape={1, 4}"), std::string::npos) << text.str();
}

TEST(SparseLinear, CloneIsIndependentAndStateDictHoldsTheWeight) {
  auto dense = sparse_linear(40, 12, 0.8, Pattern::Unstructured);
  SparseLinear sparse(dense);
  auto copy = std::dynamic_pointer_cast<SparseLinearImpl>(sparse->clone());
  ASSERT_NE(copy, nullptr);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({5, 40});
  EXPECT_TRUE(torch::equal(copy->forward(x), sparse(x)));
  sparse->named_buffers()["values"].mul_(2);
  EXPECT_FALSE(torch::equal(copy->forward(x), sparse(x)));
  EXPECT_TRUE(torch::equal(copy->dense_weight(), dense->weight));
  const auto names = sparse->named_buffers().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"offsets", "cols", "values", "bias"}));
  sparse->reset();  // nothing to re-initialize
  EXPECT_EQ(sparse->named_buffers().size(), 4u);
}

TEST(SparseLinear, ErrorsNameTheValue) {
  auto dense = sparse_linear(16, 8, 0.5, Pattern::Unstructured);
  SparseLinear sparse(dense);
  EXPECT_NE(error_message([&] { sparse(torch::randn({2, 16}, torch::kDouble)); }).find("Double"), std::string::npos);
  EXPECT_NE(error_message([&] { sparse(torch::randn({2, 15})); }).find("[2, 15]"), std::string::npos);
  EXPECT_NE(error_message([&] { sparse(torch::randn({2, 16}).requires_grad_()); }).find("inference only"),
            std::string::npos);
  {
    torch::NoGradGuard no_grad;  // no graph wanted: fine
    EXPECT_EQ(sparse(torch::randn({2, 16}).requires_grad_()).sizes(), (std::vector<int64_t>{2, 8}));
  }
  EXPECT_NE(error_message([&] { SparseLinear(dense, SparseLinearOptions().block_shape({2, 2})); }).find("{2, 2}"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              SparseLinear(dense, SparseLinearOptions().format(SparseFormat::CSR).block_shape({1, 4}));
            }).find("{1, 4}"),
            std::string::npos);
  auto odd = sparse_linear(13, 7, 0.5, Pattern::Unstructured);
  EXPECT_NE(error_message([&] { SparseLinear(odd, SparseLinearOptions().block_shape({1, 4})); }).find("[7, 13]"),
            std::string::npos);
  EXPECT_NE(error_message([&] { SparseLinear(odd, SparseLinearOptions().format(SparseFormat::BlockCSR)); })
                .find("[7, 13]"),
            std::string::npos);
  torch::nn::Linear twice(4, 4);
  twice->to(torch::kDouble);
  EXPECT_NE(error_message([&] { SparseLinear{twice}; }).find("Double"), std::string::npos);
  EXPECT_NE(error_message([&] { SparseInputLinear{twice}; }).find("Double"), std::string::npos);
}

class SparseInputLinearKernels : public ::testing::TestWithParam<SparseKernelIsa> {};

TEST_P(SparseInputLinearKernels, MatchesDenseAtEachInputSparsity) {
  SKIP_UNLESS_SUPPORTED(GetParam());
  KernelPath path(GetParam());
  for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{{13, 7}, {100, 64}, {300, 130}}) {
    for (bool bias : {true, false}) {
      auto dense = sparse_linear(in, out, 0.0, Pattern::Unstructured, bias);
      SparseInputLinear sparse(dense);
      EXPECT_TRUE(torch::equal(sparse->dense_weight(), dense->weight));
      for (double input_sparsity : {0.0, 0.5, 0.95, 1.0}) {
        for (int64_t batch : {0, 1, 5, 33}) {
          SCOPED_TRACE("in=" + std::to_string(in) + " sparsity=" + std::to_string(input_sparsity) +
                       " batch=" + std::to_string(batch));
          const auto x = torch::randn({batch, in}) * (torch::rand({batch, in}) >= input_sparsity);
          torch::NoGradGuard no_grad;
          const auto expected = dense(x);
          const auto got = sparse(x);
          ASSERT_EQ(got.sizes(), expected.sizes());
          if (input_sparsity == 1.0 || batch == 0) {
            EXPECT_TRUE(torch::allclose(got, expected));
          } else {
            EXPECT_LE(relative_error(got, expected), 1e-5);
          }
        }
      }
      torch::NoGradGuard no_grad;
      const auto x = torch::relu(torch::randn({2, 3, 2 * in})).slice(2, 0, 2 * in, 2);
      EXPECT_LE(relative_error(sparse(x), dense(x)), 1e-5);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SparseLinear, SparseInputLinearKernels, ::testing::Values(SparseKernelIsa::Avx512, SparseKernelIsa::Avx2, SparseKernelIsa::Portable),
                         isa_name);

TEST(SparseLinearInput, RejectsGradAndBadInputs) {
  SparseInputLinear sparse(torch::nn::Linear(8, 4));
  EXPECT_NE(error_message([&] { sparse(torch::randn({2, 8}).requires_grad_()); }).find("inference only"),
            std::string::npos);
  EXPECT_NE(error_message([&] { sparse(torch::randn({2, 9})); }).find("[2, 9]"), std::string::npos);
  EXPECT_NE(error_message([&] { sparse(torch::randn({2, 8}, torch::kDouble)); }).find("Double"), std::string::npos);
}

TEST(SparseInference, PolicyKeepsHalfSparseDenseAndReplacesVerySparse) {
  for (int64_t batch : {1, 16, 256}) {
    SCOPED_TRACE(batch);
    const auto options = SparseInferenceOptions().batch_size(batch);
    EXPECT_FALSE(sparse_linear_pays_off(sparse_linear(256, 128, 0.5, Pattern::Unstructured), options));
    EXPECT_FALSE(sparse_linear_pays_off(sparse_linear(256, 128, 0.5, Pattern::Rows4), options));
    EXPECT_FALSE(sparse_linear_pays_off(sparse_linear(256, 128, 0.5, Pattern::Cols4), options));
    EXPECT_TRUE(sparse_linear_pays_off(sparse_linear(256, 128, 0.95, Pattern::Unstructured), options));
    EXPECT_TRUE(sparse_linear_pays_off(sparse_linear(256, 128, 0.9, Pattern::Rows4), options));
    EXPECT_TRUE(sparse_linear_pays_off(sparse_linear(256, 128, 0.9, Pattern::Cols4), options));
    for (auto format : {SparseFormat::CSR, SparseFormat::BlockCSR}) {
      const double crossover = sparse_linear_crossover(format, {1, 4}, batch);
      EXPECT_GT(crossover, 0.5);
      EXPECT_LT(crossover, 0.9);
    }
  }
  // The override, both ways.
  EXPECT_TRUE(sparse_linear_pays_off(sparse_linear(64, 32, 0.5, Pattern::Unstructured),
                                     SparseInferenceOptions().min_sparsity(0.3)));
  EXPECT_FALSE(sparse_linear_pays_off(sparse_linear(64, 32, 0.95, Pattern::Unstructured),
                                      SparseInferenceOptions().min_sparsity(0.99)));
  // Unstructured zeros in forced (1, 4) blocks count by the stored values.
  EXPECT_FALSE(sparse_linear_pays_off(
      sparse_linear(64, 32, 0.8, Pattern::Unstructured),
      SparseInferenceOptions().min_sparsity(0.7).layer(SparseLinearOptions().block_shape({1, 4}))));
  // Not float32: kept.
  auto twice = sparse_linear(64, 32, 0.99, Pattern::Unstructured);
  twice->to(torch::kDouble);
  EXPECT_FALSE(sparse_linear_pays_off(twice));
}

TEST(SparseInference, BadOptionsAreErrors) {
  torch::nn::Sequential net(torch::nn::Linear(4, 4));
  EXPECT_NE(error_message([&] { to_sparse_inference(*net, SparseInferenceOptions().min_sparsity(1.5)); })
                .find("1.5"),
            std::string::npos);
  EXPECT_NE(error_message([&] { to_sparse_inference(*net, SparseInferenceOptions().batch_size(0)); }).find("0"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              to_sparse_inference(*net, SparseInferenceOptions().layer(SparseLinearOptions().block_shape({3, 1})));
            }).find("{3, 1}"),
            std::string::npos);
  EXPECT_NE(error_message([&] { sparse_linear_pays_off(torch::nn::Linear(4, 4), SparseInferenceOptions().min_sparsity(-0.1)); })
                .find("-0.1"),
            std::string::npos);
}

struct CustomImpl : torch::nn::Module {
  CustomImpl() {
    direct = register_module("direct", sparse_linear(16, 16, 0.95, Pattern::Unstructured, true, 7));
    list = register_module("list", torch::nn::ModuleList(sparse_linear(16, 16, 0.95, Pattern::Unstructured, true, 8),
                                                         sparse_linear(16, 16, 0.5, Pattern::Unstructured, true, 9),
                                                         torch::nn::Sequential(sparse_linear(16, 16, 0.96, Pattern::Unstructured, true, 12))));
    dict = register_module(
        "dict", torch::nn::ModuleDict(std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>{
                    {"sparse", sparse_linear(16, 16, 0.97, Pattern::Unstructured, true, 10).ptr()},
                    {"inner", torch::nn::Sequential(torch::nn::ReLU(),
                                                    sparse_linear(16, 16, 0.95, Pattern::Cols4, true, 11))
                                  .ptr()}}));
  }
  torch::nn::Linear direct{nullptr};
  torch::nn::ModuleList list{nullptr};
  torch::nn::ModuleDict dict{nullptr};
};

TEST(SparseInference, ReplacesInNestedContainersAndNamesThem) {
  torch::nn::Sequential net(sparse_linear(16, 16, 0.95, Pattern::Unstructured, true, 1), torch::nn::ReLU(),
                            sparse_linear(16, 16, 0.3, Pattern::Unstructured, true, 2),
                            sparse_linear(16, 16, 0.9, Pattern::Rows4, true, 3));
  net->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({6, 16});
  const auto before = net->forward(x);
  const auto replaced = to_sparse_inference(*net);
  EXPECT_EQ(replaced, (std::vector<std::string>{"0", "3"}));
  EXPECT_NE(std::dynamic_pointer_cast<SparseLinearImpl>(net[0]), nullptr);
  EXPECT_NE(std::dynamic_pointer_cast<torch::nn::LinearImpl>(net[2]), nullptr);
  EXPECT_FALSE(net[0]->is_training());
  EXPECT_LE(relative_error(net->forward(x), before), 1e-5);
  // A second pass finds nothing left.
  EXPECT_TRUE(to_sparse_inference(*net).empty());

  auto custom = std::make_shared<CustomImpl>();
  const auto list_before = custom->list[1]->as<torch::nn::Linear>()->forward(x);
  const auto inner_before = custom->dict["inner"]->as<torch::nn::Sequential>()->forward(x);
  EXPECT_EQ(to_sparse_inference(*custom), (std::vector<std::string>{"list.0", "list.2.0", "dict.sparse", "dict.inner.1"}));
  EXPECT_NE(std::dynamic_pointer_cast<torch::nn::LinearImpl>(custom->named_children()["direct"]), nullptr);
  EXPECT_NE(std::dynamic_pointer_cast<SparseLinearImpl>(custom->list[0]), nullptr);
  EXPECT_NE(std::dynamic_pointer_cast<torch::nn::LinearImpl>(custom->list[1]), nullptr);
  EXPECT_NE(std::dynamic_pointer_cast<SparseLinearImpl>(custom->dict["sparse"]), nullptr);
  EXPECT_NE(std::dynamic_pointer_cast<SparseLinearImpl>(custom->list[2]->as<torch::nn::Sequential>()->ptr(0)), nullptr);
  EXPECT_LE(relative_error(custom->dict["inner"]->as<torch::nn::Sequential>()->forward(x), inner_before), 1e-5);
  EXPECT_TRUE(torch::equal(custom->list[1]->as<torch::nn::Linear>()->forward(x), list_before));
}

}  // namespace
void PrintTo(SparseKernelIsa isa, std::ostream* os) { *os << isa_string(isa); }

}  // namespace sparsity
