// Saving and loading a sparsifier: in memory, to a file, from Python, and
// against truncated or corrupt files.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "test_support.h"

#ifndef SPARSITY_SOURCE_DIR
#error "SPARSITY_SOURCE_DIR must point at the source tree"
#endif

namespace sparsity {
namespace {

using testing::error_of;
using testing::ImplementedSparsifier;

namespace fs = std::filesystem;

c10::IValue field(const c10::IValue& dict, const std::string& key) {
  return dict.toGenericDict().at(c10::IValue(key));
}

// A sparsifier with a bit of everything: defaults, per-name config and state,
// a squashed name, a parameter, 1-D data.
std::unique_ptr<DataNormSparsifier> populated() {
  auto s = std::make_unique<DataNormSparsifier>(
      DataNormSparsifierOptions().sparsity_level(0.5).sparse_block_shape({1, 4}).norm(Norm::L2));
  s->add_data("table", torch::randn({64, 32}));
  s->add_data("param", torch::randn({16, 16}).requires_grad_(), Config{{"sparsity_level", 0.05}});
  s->add_data("bias", torch::randn({37}), Config{{"zeros_per_block", 2}});
  s->add_data("squashed", torch::randn({8, 8}));
  s->step();
  s->squash_mask({"squashed"});
  s->state("table").set("step_count", 7).set("note", "kept");
  s->set_mask_update_enabled(false);
  return s;
}

void expect_same(const BaseDataSparsifier& a, const BaseDataSparsifier& b) {
  ASSERT_EQ(a.names(), b.names());
  EXPECT_EQ(a.defaults(), b.defaults());
  EXPECT_EQ(a.mask_update_enabled(), b.mask_update_enabled());
  for (const auto& name : a.names()) {
    EXPECT_TRUE(torch::equal(a.get_mask(name), b.get_mask(name))) << name;
    EXPECT_EQ(a.get_mask(name).scalar_type(), b.get_mask(name).scalar_type()) << name;
    EXPECT_EQ(a.data_group(name), b.data_group(name)) << name;
    EXPECT_EQ(a.state(name), b.state(name)) << name;
    EXPECT_EQ(a.is_parametrized(name), b.is_parametrized(name)) << name;
    EXPECT_TRUE(torch::equal(a.get_data(name, false), b.get_data(name, false))) << name;
  }
}

TEST(SparsifierState, InMemoryRoundTrip) {
  auto original = populated();
  DataNormSparsifier restored;
  restored.add_data("table", torch::randn({3, 3}));  // strict load drops it
  restored.load_state_dict(original->state_dict());
  expect_same(*original, restored);
  EXPECT_EQ(restored.state("table").get<int64_t>("step_count"), 7);
  EXPECT_FALSE(restored.is_parametrized("squashed"));
  EXPECT_TRUE(restored.get_data("param").requires_grad());
}

TEST(SparsifierState, FileRoundTripAndResumeGivesTheSameMasks) {
  const fs::path dir = testing::scratch_dir("FileRoundTrip");
  const std::string path = (dir / "state.pt").string();
  auto original = populated();
  original->save(path);
  DataNormSparsifier restored;
  restored.load(path);
  expect_same(*original, restored);
  // Both continue identically.
  original->set_mask_update_enabled(true);
  restored.set_mask_update_enabled(true);
  original->data_group("table").set("sparsity_level", 0.8);
  restored.data_group("table").set("sparsity_level", 0.8);
  original->step();
  restored.step();
  expect_same(*original, restored);
}

TEST(SparsifierState, StringListsAndNestedConfigsInADataGroupRoundTrip) {
  const fs::path dir = testing::scratch_dir("NestedConfigRoundTrip");
  const std::string path = (dir / "state.pt").string();
  const Config rich{{"patterns", ConfigValue::StringList{"*weight", "fc1.*"}},
                    {"nested", Config{{"level", 0.5}, {"shape", {1, 4}}, {"deeper", Config{{"flag", true}}}}}};
  ImplementedSparsifier original(rich);
  original.add_data("w", torch::randn({2, 3}));
  original.save(path);
  ImplementedSparsifier restored;
  restored.load(path);
  EXPECT_EQ(restored.data_group("w"), rich);
  EXPECT_EQ(restored.data_group("w").get<Config>("nested").get<Config>("deeper").get<bool>("flag"), true);
  EXPECT_EQ(restored.data_group("w").get<ConfigValue::StringList>("patterns"),
            (std::vector<std::string>{"*weight", "fc1.*"}));
}

TEST(SparsifierState, MasksAreStoredCompactly) {
  DataNormSparsifier s(DataNormSparsifierOptions().sparsity_level(0.01).sparse_block_shape({1, 1}));
  s.add_data("mostly_kept", torch::randn({100, 100}));
  s.add_data("half", torch::randn({101, 7}), Config{{"sparsity_level", 0.5}});
  s.step();
  const c10::IValue state = s.state_dict();
  const c10::IValue sparse = field(field(field(state, "state"), "mostly_kept"), "mask");
  EXPECT_EQ(field(sparse, "encoding").toStringRef(), "sparse");
  EXPECT_EQ(field(sparse, "fill").toInt(), 1);
  EXPECT_EQ(field(sparse, "indices").toTensor().numel(), 100);  // 1% of 10000
  EXPECT_EQ(field(sparse, "indices").toTensor().scalar_type(), at::kInt);
  const c10::IValue packed = field(field(field(state, "state"), "half"), "mask");
  EXPECT_EQ(field(packed, "encoding").toStringRef(), "bitpacked");
  EXPECT_EQ(field(packed, "bits").toTensor().numel(), (101 * 7 + 7) / 8);
  EXPECT_EQ(field(packed, "shape").toIntVector(), (std::vector<int64_t>{101, 7}));
}

TEST(SparsifierState, PythonTorchLoadReadsTheFile) {
  if (std::system("/usr/bin/python3 -c 'import torch, numpy' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's python3-torch is not installed (scripts/setup.sh installs it)";
  const fs::path dir = testing::scratch_dir("PythonReads");
  const std::string path = (dir / "state.pt").string();
  auto s = populated();
  s->save(path);

  const std::string command = std::string("/usr/bin/python3 ") + SPARSITY_SOURCE_DIR +
                              "/tests/reference/read_saved_state.py " + path + " 2>&1";
  const auto [status, output] = testing::run_command(command);
  ASSERT_EQ(status, 0) << output;

  EXPECT_CONTAINS(output, "defaults {\"norm\": \"L2\", \"sparse_block_shape\": [1, 4], \"sparsity_level\": 0.5, "
                          "\"zeros_per_block\": 4}");
  for (const auto& name : s->names()) {
    const at::Tensor data = s->get_data(name, false).detach();
    const at::Tensor mask = s->get_mask(name);
    const double masked_sum = (data.to(at::kDouble) * mask.to(at::kDouble)).sum().item<double>();
    const std::string line = fmt::format("{} shape=[{}] kept={} encoding=", name, fmt::join(data.sizes(), ", "),
                                         mask.sum().item<int64_t>());
    EXPECT_CONTAINS(output, line);
    EXPECT_CONTAINS(output, fmt::format("parametrized={} masked_sum={:.4f}",
                                        s->is_parametrized(name) ? "True" : "False", masked_sum));
  }
  EXPECT_CONTAINS(output, "state={\"note\": \"kept\", \"step_count\": 7}");
  EXPECT_CONTAINS(output, "\"sparsity_level\": 0.05");
}

TEST(SparsifierState, NonStrictLoadKeepsNamesNotInTheFile) {
  auto saved = populated();
  DataNormSparsifier s;
  s.add_data("mine", torch::randn({4, 4}));
  s.load_state_dict(saved->state_dict(), /*strict=*/false);
  EXPECT_EQ(s.names(), (std::vector<std::string>{"mine", "table", "param", "bias", "squashed"}));
  EXPECT_TRUE(s.mask_update_enabled()) << "a non-strict load keeps this sparsifier's own settings";
  EXPECT_EQ(s.defaults(), DataNormSparsifier().defaults());
  DataNormSparsifier strict;
  strict.add_data("mine", torch::randn({4, 4}));
  strict.load_state_dict(saved->state_dict(), /*strict=*/true);
  EXPECT_FALSE(strict.contains("mine"));
  EXPECT_FALSE(strict.mask_update_enabled());
}

TEST(SparsifierState, LoadWritesIntoTensorsAlreadyRegistered) {
  auto saved = populated();
  DataNormSparsifier s;
  at::Tensor mine = torch::zeros({64, 32});
  s.add_data("table", mine);
  const at::Tensor mask = s.get_mask("table");
  s.load_state_dict(saved->state_dict());
  EXPECT_TRUE(s.get_data("table").is_same(mine));
  EXPECT_TRUE(torch::equal(mine, saved->get_data("table")));
  EXPECT_TRUE(s.get_mask("table").is_same(mask));
  EXPECT_TRUE(torch::equal(mask, saved->get_mask("table")));
}

// Loads `bytes` as a state file into a sparsifier and checks that it fails with
// a message naming the file and changes nothing.
void expect_rejected(const std::vector<char>& bytes, const std::string& label) {
  const fs::path dir = testing::scratch_dir("Rejected");
  const std::string path = (dir / "bad.pt").string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  DataNormSparsifier s;
  at::Tensor data = torch::randn({8, 8});
  s.add_data("mine", data);
  s.step();
  const at::Tensor mask_before = s.get_mask("mine").clone();
  const at::Tensor data_before = data.clone();
  const std::string message = error_of<std::runtime_error>([&] { s.load(path); });
  EXPECT_CONTAINS(message, path) << label;
  EXPECT_EQ(s.names(), std::vector<std::string>{"mine"}) << label;
  EXPECT_TRUE(torch::equal(s.get_mask("mine"), mask_before)) << label;
  EXPECT_TRUE(torch::equal(data, data_before)) << label;
}

TEST(SparsifierState, TruncatedOrCorruptFilesAreErrorsThatChangeNothing) {
  const fs::path dir = testing::scratch_dir("Corrupt");
  const std::string path = (dir / "state.pt").string();
  populated()->save(path);
  const std::vector<char> good = read_file(path);
  ASSERT_GT(good.size(), 1000u);
  for (size_t length : {size_t{0}, size_t{10}, good.size() / 3, good.size() / 2, good.size() - 20, good.size() - 1})
    expect_rejected(std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(length)),
                    "truncated to " + std::to_string(length));
  expect_rejected(std::vector<char>(good.size(), 'x'), "garbage");
}

// A flipped byte is either caught (every record of the archive carries a CRC)
// or lies in metadata nothing reads (e.g. a local header's copy of a file
// name): never a silently different state.
TEST(SparsifierState, FlippedBytesAreCaughtOrHarmless) {
  const fs::path dir = testing::scratch_dir("Flipped");
  const std::string path = (dir / "state.pt").string();
  const auto original = populated();
  original->save(path);
  const std::vector<char> good = read_file(path);
  int rejected = 0, harmless = 0;
  // About 150 positions spread over the file; each rejected load costs a c10 backtrace.
  for (size_t pos = 0; pos < good.size(); pos += good.size() / 150) {
    std::vector<char> flipped = good;
    flipped[pos] = static_cast<char>(flipped[pos] ^ 0x5a);
    write_file_atomically(path, flipped);
    DataNormSparsifier s;
    try {
      s.load(path);
    } catch (const std::runtime_error& e) {
      EXPECT_CONTAINS(e.what(), path);
      EXPECT_TRUE(s.names().empty());
      ++rejected;
      continue;
    }
    ++harmless;
    SCOPED_TRACE("byte flipped at " + std::to_string(pos));
    expect_same(*original, s);
  }
  EXPECT_GT(rejected, 10 * harmless) << "most flips must be caught";
}

TEST(SparsifierState, WrongShapesInTheStateAreRejected) {
  auto saved = populated();
  c10::IValue state = saved->state_dict();
  // Replace one data tensor by one of another shape than its mask.
  field(state, "data").toGenericDict().insert_or_assign(c10::IValue(std::string("table")), torch::randn({3, 3}));
  DataNormSparsifier s;
  s.add_data("mine", torch::randn({2, 2}));
  const std::string message = error_of<std::invalid_argument>([&] { s.load_state_dict(state); });
  EXPECT_CONTAINS(message, "'table'");
  EXPECT_CONTAINS(message, "[3, 3]");
  EXPECT_EQ(s.names(), std::vector<std::string>{"mine"});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.load_state_dict(c10::IValue(3)); }), "expected a dict");
}

TEST(SparsifierState, MissingFileAndUnwritablePathNameThePath) {
  DataNormSparsifier s;
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.load("/nonexistent/dir/state.pt"); }),
                  "/nonexistent/dir/state.pt");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.save("/nonexistent/dir/state.pt"); }),
                  "/nonexistent/dir/state.pt");
}

TEST(SparsifierState, SaveReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  const fs::path dir = testing::scratch_dir("Atomic");
  const std::string path = (dir / "state.pt").string();
  auto s = populated();
  s->save(path);
  s->data_group("table").set("sparsity_level", 0.9);
  s->save(path);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "state.pt");
  }
  EXPECT_EQ(files, 1u);
  DataNormSparsifier restored;
  restored.load(path);
  EXPECT_EQ(restored.data_group("table").get<double>("sparsity_level"), 0.9);
}

}  // namespace
}  // namespace sparsity
