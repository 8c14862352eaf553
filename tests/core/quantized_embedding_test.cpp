// Quantized embedding tables: QuantizedTable's error bound and exact zeros,
// QuantizedEmbeddingBag against a dense EmbeddingBag, post_training_sparse_quantize
// against PyTorch's own (tests/reference/make_quantized_embedding_cases.py, a
// CTest fixture).
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdlib>

#include "sparsity/sparse/quantized_embedding.h"
#include "sparsity/sparse/sparse_file.h"
#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;
namespace F = torch::nn::functional;

// A table with 80% zeros (whole blocks of 4 in a row), as a sparsifier leaves it.
at::Tensor sparse_table(int64_t rows, int64_t dim) {
  at::Tensor t = torch::randn({rows, dim});
  const at::Tensor keep = torch::rand({rows, dim / 4, 1}).lt(0.2).expand({rows, dim / 4, 4}).reshape({rows, dim});
  return t * keep;
}

TEST(QuantizedEmbedding, TableWithinHalfAStep) {
  torch::manual_seed(0);
  const at::Tensor x = sparse_table(200, 32) + torch::randn({200, 32}).mul(0.01) * torch::rand({200, 1}).lt(0.1);
  for (ZeroPointKind kind : {ZeroPointKind::Integer, ZeroPointKind::Float}) {
    const QuantizedTable q = QuantizedTable::quantize(x, kind);
    EXPECT_EQ(q.codes.scalar_type(), at::kByte);
    EXPECT_EQ(q.codes.sizes(), x.sizes());
    const at::Tensor error = (q.dequantize() - x).abs();
    const at::Tensor half_step = q.scales.unsqueeze(1) / 2;
    EXPECT_TRUE(error.le(half_step * (1 + 1e-4) + 1e-7).all().item<bool>())
        << "max error / half step " << (error / half_step).max().item<double>();
    // Not much better either: the codes use the whole range.
    EXPECT_GT((error / half_step).max().item<double>(), 0.5);
  }
  // The integer zero point is an integer code in [0, 255].
  const QuantizedTable q = QuantizedTable::quantize(x);
  EXPECT_TRUE(q.zero_points.eq(q.zero_points.round()).all().item<bool>());
  EXPECT_TRUE(q.zero_points.ge(0).logical_and(q.zero_points.le(255)).all().item<bool>());
}

TEST(QuantizedEmbedding, IntegerZeroPointKeepsZerosExact) {
  torch::manual_seed(1);
  const at::Tensor x = sparse_table(100, 16);
  const at::Tensor zeros = x.eq(0);
  ASSERT_GT(zeros.sum().item<int64_t>(), 1000);
  const at::Tensor ours = QuantizedTable::quantize(x, ZeroPointKind::Integer).dequantize();
  EXPECT_TRUE(ours.masked_select(zeros).eq(0).all().item<bool>());
  // The reference's float zero point: most zeros come back as small nonzeros.
  const at::Tensor reference = QuantizedTable::quantize(x, ZeroPointKind::Float).dequantize();
  // (All but the rows that are all zero, scale 1 and zero point 0, and the
  // rows whose nonzeros share a sign, where min or max is the 0.)
  const at::Tensor zeros_in_live_rows = zeros.logical_and(x.ne(0).any(1, true).expand_as(x));
  ASSERT_GT(zeros_in_live_rows.sum().item<int64_t>(), 300);
  EXPECT_GT(reference.masked_select(zeros_in_live_rows).ne(0).sum().item<int64_t>(),
            zeros_in_live_rows.sum().item<int64_t>() * 2 / 3);
  // A row of one sign: 0 is still representable (the range includes it).
  const at::Tensor positive = torch::tensor({{0.0f, 1.0f, 2.0f, 3.0f}, {0.0f, -5.0f, -1.0f, 0.0f}});
  EXPECT_TRUE(QuantizedTable::quantize(positive).dequantize().masked_select(positive.eq(0)).eq(0).all().item<bool>());
  // An all-zero row gets scale 1 and decodes to zeros.
  const QuantizedTable zero_row = QuantizedTable::quantize(torch::zeros({2, 8}));
  EXPECT_TRUE(zero_row.dequantize().eq(0).all().item<bool>());
  EXPECT_TRUE(zero_row.scales.eq(1).all().item<bool>());
}

TEST(QuantizedEmbedding, BagMatchesDenseEmbeddingBag) {
  torch::manual_seed(2);
  const QuantizedTable q = QuantizedTable::quantize(sparse_table(50, 24));
  const at::Tensor dense = q.dequantize();
  const at::Tensor input = torch::randint(0, 50, {40}, at::kLong);
  const at::Tensor offsets = torch::tensor({0, 3, 3, 10, 25, 39}, at::kLong);
  const at::Tensor weights = torch::rand({40});
  for (int mode = 0; mode < 3; ++mode) {
    torch::nn::EmbeddingBagMode m = torch::kSum;
    if (mode == 1) m = torch::kMean;
    if (mode == 2) m = torch::kMax;
    QuantizedEmbeddingBag bag(q, torch::nn::EmbeddingBagOptions(50, 24).mode(m));
    const at::Tensor got = bag(input, offsets);
    const at::Tensor want = F::embedding_bag(input, dense, F::EmbeddingBagFuncOptions().offsets(offsets).mode(m));
    EXPECT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << "mode " << mode << ": " << (got - want).abs().max().item<double>();
    // int32 indices and a 2-D input (each row a bag).
    EXPECT_TRUE(torch::allclose(bag(input.to(at::kInt), offsets.to(at::kInt)), want, 1e-5, 1e-5));
    const at::Tensor rows = input.view({8, 5});
    EXPECT_TRUE(torch::allclose(bag(rows), F::embedding_bag(rows, dense, F::EmbeddingBagFuncOptions().mode(m)), 1e-5, 1e-5));
  }
  // Weighted sum, and include_last_offset.
  QuantizedEmbeddingBag sum(q, torch::nn::EmbeddingBagOptions(50, 24).mode(torch::kSum));
  EXPECT_TRUE(torch::allclose(
      sum(input, offsets, weights),
      F::embedding_bag(input, dense, F::EmbeddingBagFuncOptions().offsets(offsets).mode(torch::kSum).per_sample_weights(weights)),
      1e-5, 1e-5));
  QuantizedEmbeddingBag last(q, torch::nn::EmbeddingBagOptions(50, 24).mode(torch::kSum).include_last_offset(true));
  const at::Tensor bounds = torch::tensor({0, 3, 3, 10, 25, 39, 40}, at::kLong);
  EXPECT_TRUE(torch::allclose(last(input, bounds), sum(input, offsets), 1e-6, 1e-6));
  // Empty bags are zeros; the state is the compact table.
  EXPECT_TRUE(sum(input, offsets)[1].eq(0).all().item<bool>());
  EXPECT_EQ(sum->named_buffers().size(), 3u);
  EXPECT_EQ(sum->codes.scalar_type(), at::kByte);
  EXPECT_TRUE(sum->named_parameters().is_empty());
}

TEST(QuantizedEmbedding, BagClonesAndSavesAsACompactFile) {
  torch::manual_seed(4);
  const QuantizedTable q = QuantizedTable::quantize(sparse_table(30, 8));
  QuantizedEmbeddingBag bag(q, torch::nn::EmbeddingBagOptions(30, 8).mode(torch::kMean));
  const at::Tensor input = torch::randint(0, 30, {4, 3}, at::kLong);
  const at::Tensor want = bag(input);
  auto copy = std::dynamic_pointer_cast<QuantizedEmbeddingBagImpl>(bag->clone());
  ASSERT_TRUE(copy);
  {
    torch::NoGradGuard no_grad;
    bag->codes.fill_(0);  // the clone does not share the table
  }
  EXPECT_TRUE(torch::equal(copy->forward(input), want));
  const auto dir = testing::scratch_dir("QuantizedEmbedding_save");
  save_sparse(*copy, (dir / "bag.pt").string());
  load_sparse(*bag, (dir / "bag.pt").string());
  EXPECT_TRUE(torch::equal(bag(input), want));
}

TEST(QuantizedEmbedding, BadInputsAreErrors) {
  const QuantizedTable q = QuantizedTable::quantize(torch::randn({10, 4}));
  QuantizedEmbeddingBag bag(q, torch::nn::EmbeddingBagOptions(10, 4).mode(torch::kMean));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bag(torch::tensor({1, 10}), torch::tensor({0})); }),
                  "index 10 at position 1 is out of range [0, 10)");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bag(torch::tensor({1, 2}), torch::tensor({1})); }),
                  "offsets must start at 0");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bag(torch::tensor({1, 2}), torch::tensor({0, 3})); }),
                  "offset 3 at position 1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bag(torch::tensor({1, 2}), torch::tensor({0}), torch::ones({2})); }),
                  "only supported in sum mode");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { QuantizedTable::quantize(torch::randn({3})); }),
                  "expected a 2-D floating table");
}

struct TwoTablesImpl : torch::nn::Module {
  TwoTablesImpl() {
    emb = register_module("emb", torch::nn::Embedding(40, 12));
    towers = register_module("towers", torch::nn::Sequential(torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(64, 16).mode(torch::kSum)),
                                                             torch::nn::Linear(16, 4)));
  }
  torch::nn::Embedding emb{nullptr};
  torch::nn::Sequential towers{nullptr};
};

TEST(QuantizedEmbedding, SparseQuantizeSelectsEmbeddings) {
  torch::manual_seed(3);
  TwoTablesImpl model;
  const at::Tensor linear_before = model.towers[1]->as<torch::nn::Linear>()->weight.clone();
  DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(0.8));
  const auto tables = post_training_sparse_quantize(model, sparsifier);
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].first, "emb");
  EXPECT_EQ(tables[1].first, "towers.0");
  EXPECT_EQ(sparsifier.names(), (std::vector<std::string>{"emb", "towers_0"}));
  EXPECT_TRUE(torch::equal(model.towers[1]->as<torch::nn::Linear>()->weight, linear_before));
  // Sparsified first: the model's weights hold the zeros, and they stay exact.
  const at::Tensor w = model.emb->weight.detach();
  EXPECT_NEAR(w.eq(0).to(at::kFloat).mean().item<double>(), 0.8, 0.01);
  EXPECT_TRUE(tables[0].second.dequantize().masked_select(w.eq(0)).eq(0).all().item<bool>());

  TwoTablesImpl other;
  DataNormSparsifier second(DataNormSparsifierOptions().sparsity_level(0.5));
  const auto one = post_training_sparse_quantize(other, second, SparseQuantizeOptions().select_embeddings(std::vector<std::string>{"towers.0"}));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].first, "towers.0");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    DataNormSparsifier s;
                    post_training_sparse_quantize(other, s, SparseQuantizeOptions().select_embeddings(std::vector<std::string>{"towers.1"}));
                  }),
                  "'towers.1' is not an Embedding or EmbeddingBag of the model (those are: emb, towers.0)");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { post_training_sparse_quantize(other, second); }),
                  "the sparsifier already holds data 'towers_0'");
}

c10::IValue at_key(const c10::IValue& dict, const std::string& key) {
  return dict.toGenericDict().at(c10::IValue(key));
}

// Against PyTorch's post_training_sparse_quantize on the same seeded tables.
TEST(ReferenceQuantizedEmbedding, MatchesPyTorch) {
  const char* path = std::getenv("SPARSITY_REFERENCE_QUANTIZED_EMBEDDINGS");
  if (path == nullptr) GTEST_SKIP() << "SPARSITY_REFERENCE_QUANTIZED_EMBEDDINGS is not set (ctest sets it)";
  const c10::IValue cases = torch::jit::pickle_load(read_file(path));
  for (const bool sparsify_first : {true, false}) {
    const c10::IValue reference = at_key(cases, sparsify_first ? "sparsify_first" : "quantize_first");
    for (ZeroPointKind kind : {ZeroPointKind::Float, ZeroPointKind::Integer}) {
      TwoTablesImpl model;
      {
        torch::NoGradGuard no_grad;
        model.emb->weight.copy_(at_key(at_key(cases, "weights"), "emb").toTensor());
        model.towers[0]->as<torch::nn::EmbeddingBag>()->weight.copy_(at_key(at_key(cases, "weights"), "towers.0").toTensor());
      }
      DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(0.8).sparse_block_shape({1, 4}).zeros_per_block(4));
      const auto tables = post_training_sparse_quantize(
          model, sparsifier, SparseQuantizeOptions().sparsify_first(sparsify_first).zero_point(kind));
      ASSERT_EQ(tables.size(), 2u);
      for (const auto& [name, table] : tables) {
        const c10::IValue ref = at_key(reference, name);
        const at::Tensor ref_table = at_key(ref, "dequantized").toTensor();
        const at::Tensor ref_scales = at_key(ref, "scales").toTensor();
        const at::Tensor ours = table.dequantize();
        const std::string what = name + (sparsify_first ? " sparsify_first " : " quantize_first ") +
                                 (kind == ZeroPointKind::Float ? "float zero point" : "integer zero point");
        // Within one quantization step of the reference's table.
        const at::Tensor step = torch::max(ref_scales, table.scales).unsqueeze(1);
        EXPECT_TRUE((ours - ref_table).abs().le(step * 1.001 + 1e-6).all().item<bool>())
            << what << ": max difference / step " << ((ours - ref_table).abs() / step).max().item<double>();
        // The pruned entries: the sparsifier's masks (after squash the data
        // holds the zeros: the model's weight or the dequantized table).
        const at::Tensor pruned = sparsifier.get_data(name == "emb" ? "emb" : "towers_0", false).eq(0);
        ASSERT_GT(pruned.sum().item<int64_t>(), ours.numel() / 2) << what;
        if (kind == ZeroPointKind::Float) {
          // The reference's parameters: the same codes up to a rounding tie.
          EXPECT_TRUE(torch::allclose(table.scales, ref_scales, 1e-5, 1e-7)) << what;
          EXPECT_LE((table.codes.to(at::kInt) - at_key(ref, "codes").toTensor().to(at::kInt)).abs().max().item<int>(), 1)
              << what;
          const at::Tensor differ = (ours - ref_table).abs().gt(1e-5);
          EXPECT_LE(differ.sum().item<int64_t>() * 1000, ours.numel()) << what;  // rounding ties only
        } else {
          // Ours keeps every pruned entry exactly 0; the reference's do not.
          EXPECT_TRUE(ours.masked_select(pruned).eq(0).all().item<bool>()) << what;
          // (All but the rows pruned whole: scale 1, zero point 0.)
          const at::Tensor live = pruned.logical_and(pruned.logical_not().any(1, true).expand_as(pruned));
          ASSERT_GT(live.sum().item<int64_t>(), 50) << what;
          EXPECT_GT(ref_table.masked_select(live).ne(0).sum().item<int64_t>(), live.sum().item<int64_t>() * 2 / 3)
              << what;
        }
      }
      if (sparsify_first && kind == ZeroPointKind::Float) {
        // The bags of the reference's table.
        for (const auto& c : at_key(cases, "bags").toListRef()) {
          const std::string mode = at_key(c, "mode").toStringRef();
          torch::nn::EmbeddingBagMode m = torch::kSum;
          if (mode == "mean") m = torch::kMean;
          if (mode == "max") m = torch::kMax;
          QuantizedEmbeddingBag bag(tables[1].second, torch::nn::EmbeddingBagOptions(64, 16).mode(m));
          const c10::IValue psw = at_key(c, "per_sample_weights");
          const at::Tensor input = at_key(c, "input").toTensor();
          const at::Tensor got = bag(input, at_key(c, "offsets").toTensor(), psw.isTensor() ? psw.toTensor() : at::Tensor());
          const at::Tensor want = at_key(c, "output").toTensor();
          // Each looked-up element within one step of the reference's.
          const at::Tensor w = psw.isTensor() ? psw.toTensor().abs() : torch::ones({input.numel()});
          const double tolerance = (w * tables[1].second.scales.index_select(0, input)).sum().item<double>() + 1e-5;
          EXPECT_LE((got - want).abs().max().item<double>(), tolerance) << mode;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sparsity
