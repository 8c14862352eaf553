// Compact model files (save_sparse / load_sparse): round trips for each value
// type, the size bound, bad files, and files for Python's decoder.
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>

#include "load_sparse_module.h"
#include "sparsity/sparse/sparse_file.h"
#include "test_support.h"

#ifndef SPARSITY_SOURCE_DIR
#error "SPARSITY_SOURCE_DIR must point at the source tree"
#endif

namespace sparsity {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::scratch_dir;

// The 784-128-64-10 MLP of the size measurements.
torch::nn::Sequential mlp() {
  return torch::nn::Sequential(torch::nn::Linear(784, 128), torch::nn::ReLU(), torch::nn::Linear(128, 64),
                               torch::nn::ReLU(), torch::nn::Linear(64, 10));
}

// Zeroes `level` of every weight matrix (its smallest magnitudes); biases stay dense.
void prune(torch::nn::Module& module, double level) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) {
    at::Tensor w = p.value();
    if (w.dim() < 2) continue;
    const int64_t k = static_cast<int64_t>(std::round(level * static_cast<double>(w.numel())));
    const at::Tensor threshold = std::get<0>(w.abs().flatten().kthvalue(k));
    w.masked_fill_(w.abs().le(threshold), 0.0);
  }
}

// A module with a bit of everything: a sparse matrix, a dense vector, a
// float64 buffer, an int64 buffer, a 0-dim parameter and special values.
struct MixedImpl : torch::nn::Module {
  MixedImpl() {
    torch::NoGradGuard no_grad;
    weight = register_parameter("weight", torch::randn({40, 30}));
    prune(*this, 0.9);
    // Special values, kept bit for bit by the float32 encoding (but for the
    // sign of zero: -0.0 is a zero, and comes back +0.0).
    weight[0][0] = -0.0;
    weight[0][1] = std::numeric_limits<float>::infinity();
    weight[0][2] = -std::numeric_limits<float>::infinity();
    weight[0][3] = std::numeric_limits<float>::denorm_min();
    bias = register_parameter("bias", torch::randn({30}));
    scalar = register_parameter("scalar", torch::tensor(0.25f).squeeze());
    running = register_buffer("running", torch::randn({6, 5}, at::kDouble).masked_fill_(torch::rand({6, 5}).lt(0.5), 0));
    steps = register_buffer("steps", torch::tensor(int64_t{12345}));
    inner = register_module("inner", torch::nn::Linear(7, 3));
  }
  at::Tensor weight, bias, scalar, running, steps;
  torch::nn::Linear inner{nullptr};
};
TORCH_MODULE(Mixed);

std::vector<std::pair<std::string, at::Tensor>> state_of(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& p : module.named_parameters()) state.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : module.named_buffers()) state.emplace_back(b.key(), b.value().detach().clone());
  return state;
}

// `state` as load_sparse gives it back: -0.0 is a zero, read as +0.0.
std::vector<std::pair<std::string, at::Tensor>> as_loaded(std::vector<std::pair<std::string, at::Tensor>> state) {
  for (auto& [name, t] : state) {
    if (t.is_floating_point()) t = at::where(t == 0, at::zeros_like(t), t);
  }
  return state;
}

// Bit-for-bit equality of two tensors of the same dtype.
bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

void expect_same_state(const torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& state) {
  const auto now = state_of(module);
  ASSERT_EQ(now.size(), state.size());
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_EQ(now[i].first, state[i].first);
    EXPECT_TRUE(same_bits(now[i].second, state[i].second)) << state[i].first;
  }
}

// Fills every floating tensor of `module` with new random values.
void scramble(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.normal_();
  for (auto& b : module.buffers()) {
    if (b.is_floating_point()) b.normal_();
  }
}

// Copies `state` (from state_of) back into `module`.
void set_state(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& state) {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  auto buffers = module.named_buffers();
  for (const auto& [name, t] : state) (params.contains(name) ? params[name] : buffers[name]).copy_(t);
}

int64_t bytes_of(const fs::path& path) { return static_cast<int64_t>(fs::file_size(path)); }

TEST(SparseFile, Float32RoundTripIsBitExact) {
  const auto dir = scratch_dir("SparseFile_float32");
  Mixed original;
  {
    torch::NoGradGuard no_grad;
    // A NaN with a payload.
    const int32_t payload = 0x7fc12345;
    float nan_value;
    std::memcpy(&nan_value, &payload, 4);
    original->weight[0][4] = nan_value;
  }
  const auto expected = as_loaded(state_of(*original));
  save_sparse(*original, (dir / "m.pt").string());
  Mixed loaded;
  scramble(*loaded);
  {
    torch::NoGradGuard no_grad;
    loaded->steps.fill_(0);
  }
  load_sparse(*loaded, (dir / "m.pt").string());
  expect_same_state(*loaded, expected);
  EXPECT_FALSE(std::signbit(loaded->weight[0][0].item<float>()));  // -0.0 is a zero: +0.0
  EXPECT_EQ(loaded->steps.item<int64_t>(), 12345);
  EXPECT_EQ(loaded->running.scalar_type(), at::kDouble);
}

TEST(SparseFile, Float16RoundTripIsHalfRounding) {
  const auto dir = scratch_dir("SparseFile_float16");
  Mixed original;
  const auto expected = state_of(*original);
  save_sparse(*original, (dir / "m.pt").string(), SparseSaveOptions().value_type(SparseValueType::Float16));
  Mixed loaded;
  scramble(*loaded);
  load_sparse(*loaded, (dir / "m.pt").string());
  const auto now = state_of(*loaded);
  ASSERT_EQ(now.size(), expected.size());
  for (size_t i = 0; i < now.size(); ++i) {
    const at::Tensor& want = expected[i].second;
    if (!want.is_floating_point()) {
      EXPECT_TRUE(same_bits(now[i].second, want)) << expected[i].first;
      continue;
    }
    // Exactly the half rounding of each value, zeros exactly zero.
    EXPECT_TRUE(torch::equal(now[i].second, want.to(at::kHalf).to(want.scalar_type()))) << expected[i].first;
    EXPECT_TRUE(now[i].second.eq(0).logical_or(want.ne(0)).all().item<bool>()) << expected[i].first;
    const at::Tensor finite = want.isfinite();
    const at::Tensor error = (now[i].second - want).abs().masked_select(finite);
    const at::Tensor bound = want.abs().masked_select(finite) * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
    EXPECT_TRUE(error.le(bound).all().item<bool>()) << expected[i].first;
  }
}

TEST(SparseFile, Int8RoundTripWithinBound) {
  const auto dir = scratch_dir("SparseFile_int8");
  Mixed original;
  {
    torch::NoGradGuard no_grad;
    original->weight[0].fill_(0);  // no inf for int8
    original->weight[0][1] = 3.0;
    original->weight[5].zero_();   // an all-zero row
  }
  const auto expected = state_of(*original);
  save_sparse(*original, (dir / "m.pt").string(), SparseSaveOptions().value_type(SparseValueType::Int8));
  Mixed loaded;
  scramble(*loaded);
  load_sparse(*loaded, (dir / "m.pt").string());
  const auto now = state_of(*loaded);
  double worst_ratio = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    const at::Tensor& want = expected[i].second;
    const at::Tensor& got = now[i].second;
    if (!want.is_floating_point()) {
      EXPECT_TRUE(same_bits(got, want)) << expected[i].first;
      continue;
    }
    EXPECT_TRUE(got.eq(0).logical_or(want.ne(0)).all().item<bool>()) << "a zero is no longer zero in " << expected[i].first;
    const int64_t rows = want.dim() >= 2 ? want.size(0) : 1;
    const at::Tensor w = want.to(at::kDouble).reshape({rows, -1}), g = got.to(at::kDouble).reshape({rows, -1});
    const at::Tensor bound = w.abs().amax(1, true) / 254.0;
    const at::Tensor error = (g - w).abs();
    EXPECT_TRUE(error.le(bound * (1 + 1e-6) + 1e-30).all().item<bool>())
        << expected[i].first << ": max error " << error.max().item<double>();
    const at::Tensor positive = bound.gt(0).expand_as(error);
    if (positive.any().item<bool>()) {
      worst_ratio = std::max(worst_ratio, (error / bound.clamp_min(1e-30)).masked_select(positive).max().item<double>());
    }
  }
  // The bound is nearly reached (so the scale is max|row| / 127, not larger).
  EXPECT_GT(worst_ratio, 0.8);
  EXPECT_LE(worst_ratio, 1.0 + 1e-6);
  EXPECT_TRUE(loaded->weight[5].eq(0).all().item<bool>());
}

TEST(SparseFile, UnencodableValuesAreErrors) {
  const auto dir = scratch_dir("SparseFile_unencodable");
  Mixed m;  // weight[0][1] is inf
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    save_sparse(*m, (dir / "m.pt").string(), SparseSaveOptions().value_type(SparseValueType::Int8));
                  }),
                  "tensor 'weight' of shape [40, 30] holds a non-finite value");
  {
    torch::NoGradGuard no_grad;
    m->weight[0][1] = 1e6;
  }
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    save_sparse(*m, (dir / "m.pt").string(), SparseSaveOptions().value_type(SparseValueType::Float16));
                  }),
                  "tensor 'weight' of shape [40, 30] holds 1000000, beyond float16's range");
  EXPECT_FALSE(fs::exists(dir / "m.pt"));
}

// The file's own dict, as load_state_file reads it.
c10::Dict<c10::IValue, c10::IValue> read_entries(const fs::path& path) {
  return load_state_file(path.string(), "test").toGenericDict().at(c10::IValue("tensors")).toGenericDict();
}

std::string encoding_of(const c10::Dict<c10::IValue, c10::IValue>& entries, const std::string& name) {
  return entries.at(c10::IValue(name)).toGenericDict().at(c10::IValue("encoding")).toStringRef();
}

TEST(SparseFile, DenseTensorsFallBackToDenseStorage) {
  const auto dir = scratch_dir("SparseFile_dense");
  Mixed m;
  for (SparseValueType type : {SparseValueType::Float32, SparseValueType::Float16, SparseValueType::Int8}) {
    {
      torch::NoGradGuard no_grad;
      m->weight[0].fill_(1.0);
    }
    save_sparse(*m, (dir / "m.pt").string(), SparseSaveOptions().value_type(type));
    const auto entries = read_entries(dir / "m.pt");
    EXPECT_EQ(encoding_of(entries, "weight"), "masked") << to_string(type);  // 90% zeros
    EXPECT_EQ(encoding_of(entries, "bias"), "dense") << to_string(type);     // no zeros
    EXPECT_EQ(encoding_of(entries, "inner.weight"), "dense") << to_string(type);
    EXPECT_EQ(encoding_of(entries, "steps"), "plain") << to_string(type);
    // All values of a dtype share one storage; all masks another.
    const auto values = [&](const std::string& name) {
      return entries.at(c10::IValue(name)).toGenericDict().at(c10::IValue("values")).toTensor();
    };
    EXPECT_TRUE(values("weight").storage().is_alias_of(values("bias").storage())) << to_string(type);
    EXPECT_TRUE(values("bias").storage().is_alias_of(values("inner.bias").storage())) << to_string(type);
  }
}

// The bound of docs/sparse_file.md: nonzeros x bytes per value + numel / 8 (+ 4
// bytes a row for int8) + 1% + kFileConstant.
constexpr int64_t kFileConstant = 2048;
// The pickle's bytes per tensor (name, shape, dtype, keys; docs/sparse_file.md).
constexpr int64_t kPerTensor = 128;

TEST(SparseFile, SizeBoundOnSparseMlp) {
  torch::manual_seed(0);
  const auto dir = scratch_dir("SparseFile_size");
  auto model = mlp();
  prune(*model, 0.85);
  int64_t numel = 0, nonzeros = 0, rows = 0;
  c10::impl::GenericDict dense = new_state_dict();
  for (const auto& p : model->named_parameters()) {
    numel += p.value().numel();
    nonzeros += p.value().ne(0).sum().item<int64_t>();
    rows += p.value().dim() >= 2 ? p.value().size(0) : 1;
    dense.insert(p.key(), p.value().detach());
  }
  ASSERT_LE(nonzeros, numel * 16 / 100);
  save_state_file((dir / "dense.pt").string(), dense);
  const int64_t dense_bytes = bytes_of(dir / "dense.pt");
  EXPECT_GE(dense_bytes, numel * 4);
  std::cout << "784-128-64-10 MLP at 85% sparsity: " << numel << " elements, " << nonzeros << " nonzeros, "
            << rows << " rows; dense state file " << dense_bytes << " bytes\n";
  for (const auto& [type, bytes] : std::vector<std::pair<SparseValueType, int64_t>>{
           {SparseValueType::Float32, 4}, {SparseValueType::Float16, 2}, {SparseValueType::Int8, 1}}) {
    const fs::path path = dir / (std::string(to_string(type)) + ".pt");
    save_sparse(*model, path.string(), SparseSaveOptions().value_type(type));
    const int64_t payload = nonzeros * bytes + (numel + 7) / 8 + (type == SparseValueType::Int8 ? 4 * rows : 0);
    const int64_t bound = payload + payload / 100 + kFileConstant;
    const int64_t size = bytes_of(path);
    std::cout << "  " << to_string(type) << ": " << size << " bytes; payload " << payload << ", bound " << bound
              << ", overhead " << (size - payload) << " bytes\n";
    EXPECT_LE(size, bound) << to_string(type);
    EXPECT_GE(size, payload) << to_string(type);
  }
  EXPECT_LT(bytes_of(dir / "float32.pt") * 10, dense_bytes * 3);

  // Many small tensors: the pickle's cost per tensor (its name, shape, keys)
  // shows, about 100 bytes each.
  for (int64_t layers : {1, 40}) {
    torch::nn::Sequential deep;
    for (int64_t i = 0; i < layers; ++i) deep->push_back(torch::nn::Linear(20, 20));
    prune(*deep, 0.85);
    int64_t deep_numel = 0, deep_nonzeros = 0, tensors = 0;
    for (const auto& p : deep->parameters()) {
      deep_numel += p.numel();
      deep_nonzeros += p.ne(0).sum().item<int64_t>();
      ++tensors;
    }
    save_sparse(*deep, (dir / "deep.pt").string());
    const int64_t payload = deep_nonzeros * 4 + (deep_numel + 7) / 8;
    const int64_t size = bytes_of(dir / "deep.pt");
    std::cout << "  " << layers << " Linear(20, 20), float32: " << tensors << " tensors, " << size << " bytes; payload "
              << payload << ", overhead " << (size - payload) << " bytes\n";
    EXPECT_LE(size, payload + payload / 100 + kFileConstant + kPerTensor * tensors);
  }
}

TEST(SparseFile, BadFilesLeaveTheModuleUnchanged) {
  const auto dir = scratch_dir("SparseFile_bad");
  Mixed saved;
  const std::string good = (dir / "good.pt").string();
  save_sparse(*saved, good);
  Mixed target;
  scramble(*target);
  const auto before = state_of(*target);
  const auto expect_unchanged = [&] { expect_same_state(*target, before); };

  // Missing.
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { load_sparse(*target, (dir / "none.pt").string()); }), "none.pt");
  expect_unchanged();

  // Truncated at many lengths.
  const std::string bytes = testing::read_bytes(good);
  for (size_t length : {size_t{0}, size_t{10}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 30, bytes.size() - 1}) {
    testing::write_bytes(dir / "cut.pt", bytes.substr(0, length));
    EXPECT_CONTAINS(error_of<std::runtime_error>([&] { load_sparse(*target, (dir / "cut.pt").string()); }), "cut.pt");
    expect_unchanged();
  }

  // A flipped byte anywhere: an error (or, where the zip format ignores the
  // byte, the saved values exactly), never a partly changed module.
  int rejected = 0, tried = 0;
  for (size_t at = 0; at < bytes.size(); at += std::max<size_t>(1, bytes.size() / 97)) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    testing::write_bytes(dir / "flipped.pt", flipped);
    ++tried;
    try {
      load_sparse(*target, (dir / "flipped.pt").string());
      expect_same_state(*target, as_loaded(state_of(*saved)));
      set_state(*target, before);
    } catch (const std::exception& e) {
      ++rejected;
      EXPECT_CONTAINS(e.what(), "flipped.pt");
    }
    expect_unchanged();
  }
  // (A small file is mostly zip headers and padding, some of which no reader checks.)
  EXPECT_GE(rejected * 10, tried * 6) << rejected << " of " << tried;
  // Every flip inside the tensor data is caught: the bias values lie contiguous in the file.
  const at::Tensor bias = saved->bias.detach().contiguous();
  const std::string bias_bytes(static_cast<const char*>(bias.data_ptr()), bias.numel() * 4);
  const size_t bias_at = bytes.find(bias_bytes);
  ASSERT_NE(bias_at, std::string::npos);
  for (size_t at = bias_at; at < bias_at + bias_bytes.size(); at += 7) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
    testing::write_bytes(dir / "flipped.pt", flipped);
    EXPECT_CONTAINS(error_of<std::runtime_error>([&] { load_sparse(*target, (dir / "flipped.pt").string()); }),
                    "does not match its checksum");
    expect_unchanged();
  }

  // Not a compact file: a state file of another format, and a sparsifier's file.
  c10::impl::GenericDict other = new_state_dict();
  other.insert("format", "something.else");
  save_state_file((dir / "other.pt").string(), other);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { load_sparse(*target, (dir / "other.pt").string()); }),
                  "is not a compact sparse file: its format is 'something.else'");
  DataNormSparsifier sparsifier;
  sparsifier.add_data("w", torch::randn({4, 4}));
  sparsifier.save((dir / "sparsifier.pt").string());
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { load_sparse(*target, (dir / "sparsifier.pt").string()); }),
                  "is not a compact sparse file");
  expect_unchanged();

  // A wrong module: its tensors are not in the file.
  auto wrong = mlp();
  const auto wrong_before = state_of(*wrong);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { load_sparse(*wrong, good); }),
                  "the module's tensor '0.weight' (shape [128, 784]) is not in the file");
  expect_same_state(*wrong, wrong_before);

  // A tensor missing from the file: the module has one more.
  struct MoreImpl : MixedImpl {
    MoreImpl() { extra = register_parameter("extra", torch::ones({2})); }
    at::Tensor extra;
  };
  auto more = std::make_shared<MoreImpl>();
  const auto more_before = state_of(*more);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { load_sparse(*more, good); }),
                  "the module's tensor 'extra' (shape [2]) is not in the file");
  expect_same_state(*more, more_before);
  // An extra tensor in the file: the module has one fewer.
  save_sparse(*more, (dir / "more.pt").string());
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { load_sparse(*target, (dir / "more.pt").string()); }),
                  "the file's tensor 'extra' is not in the module");
  expect_unchanged();

  // A shape and a dtype that differ from the module's.
  struct OtherShapeImpl : torch::nn::Module {
    explicit OtherShapeImpl(at::Tensor w) { weight = register_parameter("weight", std::move(w)); }
    at::Tensor weight;
  };
  auto narrow = std::make_shared<OtherShapeImpl>(torch::zeros({40, 30}));
  save_sparse(*std::make_shared<OtherShapeImpl>(torch::randn({40, 29})), (dir / "shape.pt").string());
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { load_sparse(*narrow, (dir / "shape.pt").string()); }),
                  "tensor 'weight' has shape [40, 29] in the file, the module's is [40, 30]");
  EXPECT_TRUE(narrow->weight.eq(0).all().item<bool>());
  save_sparse(*std::make_shared<OtherShapeImpl>(torch::randn({40, 30}, at::kDouble)), (dir / "dtype.pt").string());
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { load_sparse(*narrow, (dir / "dtype.pt").string()); }),
                  "tensor 'weight' is float64 in the file, the module's is float32");
  EXPECT_TRUE(narrow->weight.eq(0).all().item<bool>());
}

// Files with a valid checksum but an inconsistent content (as a crafted file
// would be): each an error naming the path and the tensor, the module unchanged.
TEST(SparseFile, InconsistentContentIsAnError) {
  const auto dir = scratch_dir("SparseFile_inconsistent");
  Mixed saved;
  const std::string good = (dir / "good.pt").string();
  save_sparse(*saved, good);
  Mixed target;
  const auto before = state_of(*target);
  using Edit = std::function<void(c10::impl::GenericDict&)>;
  const auto entry = [](c10::impl::GenericDict& root, const std::string& name) {
    return root.at(c10::IValue("tensors")).toGenericDict().at(c10::IValue(name)).toGenericDict();
  };
  const std::vector<std::pair<Edit, std::string>> edits = {
      {[&](auto& root) { entry(root, "weight").insert_or_assign("values", torch::zeros({3})); },
       "tensor 'weight': 'values' is float32 of shape [3], expected float32 of shape [" +
           std::to_string(saved->weight.ne(0).sum().item<int64_t>()) + "]"},
      {[&](auto& root) { entry(root, "weight").insert_or_assign("mask", torch::zeros({3}, at::kByte)); },
       "tensor 'weight': 'mask' is uint8 of shape [3], expected uint8 of shape [150]"},
      {[&](auto& root) { entry(root, "weight").insert_or_assign("encoding", "rle"); }, "tensor 'weight': unknown encoding 'rle'"},
      {[&](auto& root) { entry(root, "bias").insert_or_assign("values", torch::zeros({30}, at::kDouble)); },
       "tensor 'bias': 'values' is float64 of shape [30], expected float32 of shape [30]"},
      {[&](auto& root) { (void)entry(root, "steps").erase("tensor"); }, "tensor 'steps': no 'tensor' key"},
      {[&](auto& root) { root.insert_or_assign("version", int64_t{2}); }, "its version is 2, this library reads version 1"},
      {[&](auto& root) { root.insert_or_assign("value_type", "int4"); }, "its 'value_type' is not one of float32, float16, int8"},
      {[&](auto& root) { (void)root.erase("tensors"); }, "it has no 'tensors' dict"},
  };
  for (const auto& [edit, message] : edits) {
    c10::impl::GenericDict root = load_state_file(good, "test").toGenericDict();
    edit(root);
    const std::string path = (dir / "edited.pt").string();
    save_state_file(path, root);
    const std::string what = error_of<std::runtime_error>([&] { load_sparse(*target, path); });
    EXPECT_CONTAINS(what, message);
    EXPECT_CONTAINS(what, "edited.pt");
    expect_same_state(*target, before);
  }
}

using SmallImpl = sparsity::fuzz::LoadSparseModule;  // the module of the fuzz target

// The fuzz target's seed corpus holds valid files of its module, one per value
// type (SPARSITY_WRITE_FUZZ_SEEDS=DIR rewrites them into DIR).
TEST(SparseFile, FuzzSeedCorpusLoads) {
  const fs::path corpus = fs::path(SPARSITY_SOURCE_DIR) / "fuzz" / "corpus" / "load_sparse";
  if (const char* out = std::getenv("SPARSITY_WRITE_FUZZ_SEEDS")) {
    torch::manual_seed(5);
    SmallImpl m;
    {
      torch::NoGradGuard no_grad;
      m.weight.copy_(torch::randn({6, 5}) * torch::rand({6, 5}).lt(0.3));
      m.bias.normal_();
      m.running.copy_(torch::tensor({0.0, 1.5, -2.0}, torch::kDouble));
      m.steps.fill_(7);
    }
    for (SparseValueType type : {SparseValueType::Float32, SparseValueType::Float16, SparseValueType::Int8}) {
      save_sparse(m, (fs::path(out) / (std::string("small_") + to_string(type) + ".pt")).string(),
                  SparseSaveOptions().value_type(type));
    }
  }
  int loaded = 0;
  for (const char* type : {"float32", "float16", "int8"}) {
    SmallImpl m;
    load_sparse(m, (corpus / (std::string("small_") + type + ".pt")).string());
    EXPECT_EQ(m.steps.item<int64_t>(), 7) << type;
    EXPECT_GT(m.weight.eq(0).sum().item<int64_t>(), 10) << type;
    EXPECT_NEAR(m.running[1].item<double>(), 1.5, 0.01) << type;
    ++loaded;
  }
  EXPECT_EQ(loaded, 3);
}

// Writes, for tests/reference/decode_sparse_files.py (the decoder of
// docs/sparse_file.md, run by ctest after this test): one compact file of a
// module per value type and the module's dense state as a plain pickle.
TEST(ReferenceSparseFile, WritesFilesForPython) {
  const char* dir_env = std::getenv("SPARSITY_SPARSE_FILE_DIR");
  if (dir_env == nullptr) GTEST_SKIP() << "SPARSITY_SPARSE_FILE_DIR is not set (ctest sets it)";
  const fs::path dir(dir_env);
  fs::create_directories(dir);
  torch::manual_seed(3);
  Mixed m;
  {
    torch::NoGradGuard no_grad;
    m->weight[0][1] = 2.5;  // finite for int8
    m->weight[0][2] = -1.5;
  }
  c10::impl::GenericDict dense = new_state_dict();
  for (const auto& [name, t] : state_of(*m)) dense.insert(name, t);
  testing::write_bytes(dir / "dense.pt", [&] {
    const std::vector<char> b = torch::jit::pickle_save(dense);
    return std::string(b.begin(), b.end());
  }());
  for (SparseValueType type : {SparseValueType::Float32, SparseValueType::Float16, SparseValueType::Int8}) {
    const fs::path path = dir / (std::string(to_string(type)) + ".pt");
    save_sparse(*m, path.string(), SparseSaveOptions().value_type(type));
    // What C++ decodes, for Python to match bit for bit.
    Mixed loaded;
    load_sparse(*loaded, path.string());
    c10::impl::GenericDict decoded = new_state_dict();
    for (const auto& [name, t] : state_of(*loaded)) decoded.insert(name, t);
    const std::vector<char> b = torch::jit::pickle_save(decoded);
    testing::write_bytes(dir / (std::string(to_string(type)) + ".decoded.pt"), std::string(b.begin(), b.end()));
  }
}

}  // namespace
}  // namespace sparsity
