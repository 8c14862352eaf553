// Reliability: integer bounds of the sparsifier's and the schedulers' options,
// errors for misuse that LibTorch would report as its own bug (resized data),
// unreadable paths, the reserved state key, and misspelt per-name keys.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "sparsity/file_io.h"
#include "sparsity/state_file.h"
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;
using testing::ImplementedSparsifier;
using testing::scratch_dir;

constexpr int64_t kMaxDim = 2147483647;  // 2^31 - 1
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

at::Tensor bytes(std::vector<std::vector<int>> rows) {
  std::vector<uint8_t> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kByte).reshape({static_cast<int64_t>(rows.size()), -1});
}

at::Tensor floats(std::vector<std::vector<float>> rows) {
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kFloat).reshape({static_cast<int64_t>(rows.size()), -1});
}

Config block(int64_t h, int64_t w, double level, std::optional<int64_t> zeros = std::nullopt) {
  Config c;
  c.set("sparse_block_shape", std::vector<int64_t>{h, w}).set("sparsity_level", level);
  if (zeros) c.set("zeros_per_block", *zeros);
  return c;
}

at::Tensor mask_of(const at::Tensor& data, const Config& config) {
  DataNormSparsifier s;
  s.add_data("w", data, config);
  s.step();
  return s.get_mask("w");
}

// ---- Defect: integer overflow in the block shape and zeros_per_block --------

TEST(ReliabilityBlockShape, DimensionsPastTheMaximumAreRejectedBeforeMultiplying) {
  // 2^32 * 2^32 wraps to 0 in int64 (a level of 1.0 then pruned nothing), and
  // 3037000500^2 just exceeds 2^63 - 1.
  for (int64_t dim : {int64_t{4294967296}, int64_t{3037000500}, kMaxDim + 1}) {
    const std::string shown = fmt::format("[{}, {}]", dim, dim);
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                      DataNormSparsifier s(DataNormSparsifierOptions().sparse_block_shape({dim, dim}));
                    }),
                    "DataNormSparsifier: sparse_block_shape must be two integers, each between 1 and "
                    "2147483647, got " + shown);
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                      DataNormSparsifierOptions().sparse_block_shape({dim, dim}).zeros_per_block(1).to_config();
                    }),
                    "got " + shown);
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                      DataNormSparsifierOptions::from_config(
                          Config().set("sparse_block_shape", std::vector<int64_t>{1, dim}));
                    }),
                    fmt::format("each between 1 and 2147483647, got [1, {}]", dim));
    DataNormSparsifier s;
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("w", torch::ones({4, 4}), block(dim, dim, 1.0)); }),
                    "data 'w': sparse_block_shape must be two integers, each between 1 and 2147483647, got " + shown);
    EXPECT_FALSE(s.contains("w"));
  }
  DataNormSparsifier s;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("w", torch::ones({4}), block(0, 4, 1.0)); }),
                  "got [0, 4]");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.add_data("w", torch::ones({4}), block(kInt64Min, -1, 1.0)); }),
                  "got [-9223372036854775808, -1]");
}

TEST(ReliabilityBlockShape, ZerosPerBlockIsBoundedByTheLargestBlock) {
  const int64_t largest = kMaxDim * kMaxDim;  // 4611686014132420609, no overflow
  DataNormSparsifier s;
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { s.add_data("w", torch::ones({2, 2}), block(kMaxDim, kMaxDim, 1.0, largest + 1)); }),
                  "data 'w': zeros_per_block must be between 0 and the block size 4611686014132420609 (block shape "
                  "[2147483647, 2147483647]), got 4611686014132420610");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    DataNormSparsifier(DataNormSparsifierOptions().sparse_block_shape({1, 4}).zeros_per_block(-1));
                  }),
                  "zeros_per_block must be between 0 and the block size 4 (block shape [1, 4]), got -1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    DataNormSparsifierOptions::from_config(Config().set("zeros_per_block", kInt64Max));
                  }),
                  "got 9223372036854775807");
}

TEST(ReliabilityBlockShape, TheLargestBlocksGiveTheMasksOfTheRule) {
  // Blocks far larger than the data: one block (whole, or two columns wide).
  const at::Tensor x = floats({{3, 1}, {2, 4}});
  EXPECT_TRUE(mask_of(x, block(kMaxDim, kMaxDim, 1.0)).equal(bytes({{0, 0}, {0, 0}})));
  EXPECT_TRUE(mask_of(x, block(kMaxDim, kMaxDim, 1.0, kMaxDim * kMaxDim)).equal(bytes({{0, 0}, {0, 0}})));
  EXPECT_TRUE(mask_of(x, block(kMaxDim, kMaxDim, 1.0, 1)).equal(bytes({{1, 0}, {1, 1}})));
  EXPECT_TRUE(mask_of(x, block(kMaxDim, kMaxDim, 1.0, 3)).equal(bytes({{0, 0}, {0, 1}})));
  EXPECT_TRUE(mask_of(x, block(kMaxDim, kMaxDim, 0.4)).equal(bytes({{1, 1}, {1, 1}})));
  // Two blocks of all three rows: the one of lower mean magnitude goes.
  const at::Tensor y = floats({{1, 1, 9, 9}, {1, 1, 9, 9}, {1, -1, 1, 1}});
  EXPECT_TRUE(mask_of(y, block(kMaxDim, 2, 0.5, 2 * kMaxDim)).equal(bytes({{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}})));
  // Two blocks of two rows and one (the bottom one partial, of lower mean).
  EXPECT_TRUE(mask_of(y, block(2, kMaxDim, 0.5, 2 * kMaxDim)).equal(bytes({{1, 1, 1, 1}, {1, 1, 1, 1}, {0, 0, 0, 0}})));
  // Four of the six elements of the left block: the defaults' zeros_per_block.
  EXPECT_TRUE(mask_of(y, block(kMaxDim, 2, 0.5)).equal(bytes({{0, 0, 1, 1}, {0, 0, 1, 1}, {1, 1, 1, 1}})));
  // 1-D data, block wider than it.
  EXPECT_TRUE(mask_of(torch::tensor({5.f, 1.f, 3.f}), block(1, kMaxDim, 1.0, 2)).equal(
      torch::tensor({1, 0, 0}, torch::kByte)));
}

TEST(ReliabilityBlockShape, BlocksWiderThanTheDataOrderNaNsAsThePaddedBlock) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // A partial block of the kernel itself (columns 3-4 of a [2, 3] tiling):
  // in the padded block (NaN, 1, pad / NaN, 2, pad) the 4 zeros go to 1, 2,
  // then the NaN-keyed positions by index: (0, 0) and the padding (0, 2).
  const at::Tensor wide = floats({{5, 5, 5, nan, 1}, {5, 5, 5, nan, 2}});
  EXPECT_TRUE(mask_of(wide, block(2, 3, 1.0, 4)).equal(bytes({{0, 0, 0, 0, 0}, {0, 1, 1, 1, 0}})));
  // The same block alone, so wider than the data: the same mask.
  const at::Tensor x = floats({{nan, 1}, {nan, 2}});
  EXPECT_TRUE(mask_of(x, block(2, 3, 1.0, 4)).equal(bytes({{0, 0}, {1, 0}})));
  EXPECT_TRUE(mask_of(x, block(2, 3, 1.0, 5)).equal(bytes({{0, 0}, {0, 0}})));
  EXPECT_TRUE(mask_of(x, block(2, 3, 1.0, 2)).equal(bytes({{1, 0}, {1, 0}})));
  // With 2^31 - 3 padding positions after the first row, the second NaN
  // ranks 2 + 1 + (2^31 - 3) = 2^31 (from 0) in its block.
  EXPECT_TRUE(mask_of(x, block(2, kMaxDim, 1.0, 3)).equal(bytes({{0, 0}, {1, 0}})));
  EXPECT_TRUE(mask_of(x, block(2, kMaxDim, 1.0, 2147483648)).equal(bytes({{0, 0}, {1, 0}})));
  EXPECT_TRUE(mask_of(x, block(2, kMaxDim, 1.0, 2147483649)).equal(bytes({{0, 0}, {0, 0}})));
  // Double data, three rows in a block of two: the bands are blocks.
  const at::Tensor d = x.to(torch::kDouble).repeat({2, 1}).narrow(0, 0, 3);
  EXPECT_TRUE(mask_of(d, block(2, 3, 1.0, 4)).equal(bytes({{0, 0}, {1, 0}, {0, 0}})));
}

// ---- Defect: integer overflow in the schedulers ----------------------------

TEST(ReliabilityScheduler, CubicSLIsExactForExtremeTimes) {
  // n * dt = (2^63 - 1)^2 once wrapped to 1: the final level at epoch 1.
  EXPECT_EQ(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, 1, 0, kInt64Max, kInt64Max, false), 0.0);
  // n * dt = 2^64 once wrapped to 0; t is half of it: 0.8 * (1 - 0.5^3).
  const int64_t two_32 = int64_t{1} << 32;
  EXPECT_NEAR(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, kInt64Max, 0, two_32, two_32, false), 0.7, 1e-12);
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, kInt64Max, 0, kInt64Max, 1, false), 0.8);
  // t - t_0 = 2^63 once wrapped to -2^63: the initial level instead of the final.
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, 0, kInt64Min, 10, 100, false), 0.8);
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, kInt64Min, kInt64Max, 10, 100, false), 0.0);
  EXPECT_DOUBLE_EQ(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, kInt64Min, kInt64Max, 10, 100, true), 0.0);
  // Halfway through a span of 2^64 - 2 epochs: 0.8 * (1 - 0.5^3).
  EXPECT_NEAR(CubicSLScheduler::sparsity_compute_fn(0.0, 0.8, 0, kInt64Min + 1, kInt64Max, 2, false), 0.7, 1e-12);

  DataNormSparsifier s(DataNormSparsifierOptions().sparsity_level(0.8));
  s.add_data("w", torch::randn({4, 8}));
  CubicSLScheduler late(s, CubicSLSchedulerOptions().init_t(kInt64Min));
  EXPECT_DOUBLE_EQ(s.data_group("w").get<double>("sparsity_level"), 0.8);

  DataNormSparsifier s2(DataNormSparsifierOptions().sparsity_level(0.8));
  s2.add_data("w", torch::randn({4, 8}));
  CubicSLScheduler slow(s2, CubicSLSchedulerOptions().delta_t(kInt64Max).total_t(kInt64Max));
  s2.step();
  slow.step();
  EXPECT_EQ(slow.last_epoch(), 1);
  EXPECT_EQ(s2.data_group("w").get<double>("sparsity_level"), 0.0);
}

TEST(ReliabilityScheduler, PolynomialDecayIsExactForExtremeSteps) {
  DataNormSparsifier s(DataNormSparsifierOptions().sparsity_level(0.8));
  s.add_data("w", torch::randn({4, 8}));
  // end - begin = 2^64 - 1 once wrapped to -1 (progress clamped to 1: 0.8).
  PolynomialDecayScheduler scheduler(
      s, PolynomialDecaySchedulerOptions().begin_step(kInt64Min).end_step(kInt64Max).frequency(3).power(1.0));
  // Epoch 0 is 2^63 steps past begin, not a pruning step (2^63 mod 3 = 2):
  // the value stays.
  EXPECT_EQ(scheduler.last_epoch(), 0);
  EXPECT_DOUBLE_EQ(s.data_group("w").get<double>("sparsity_level"), 0.8);
  s.step();
  scheduler.step();  // epoch 1: 2^63 + 1 = 0 mod 3, progress (2^63 + 1) / (2^64 - 1) = 0.5
  EXPECT_NEAR(s.data_group("w").get<double>("sparsity_level"), 0.4, 1e-12);
}

TEST(ReliabilityScheduler, SteppingPastTheLargestEpochIsAnError) {
  DataNormSparsifier s;
  s.add_data("w", torch::randn({4, 8}));
  StepSLScheduler scheduler(s, StepSLSchedulerOptions().gamma(1.0).last_epoch(kInt64Max - 1));
  EXPECT_EQ(scheduler.last_epoch(), kInt64Max);
  s.step();
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { scheduler.step(); }),
                  "StepSLScheduler: cannot step past last_epoch 9223372036854775807");
  EXPECT_EQ(scheduler.last_epoch(), kInt64Max);
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { StepSLScheduler at_the_end(s, StepSLSchedulerOptions().last_epoch(kInt64Max)); }),
                  "cannot step past last_epoch 9223372036854775807");
}

TEST(ReliabilityScheduler, AnIntegerKeyScheduledOutOfRangeIsAnError) {
  DataNormSparsifier s(DataNormSparsifierOptions().sparse_block_shape({1, 4}).zeros_per_block(2));
  s.add_data("w", torch::randn({4, 8}));
  StepSLScheduler scheduler(s, StepSLSchedulerOptions().gamma(1e300).schedule_param("zeros_per_block"));
  s.step();
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { scheduler.step(); }),
                  "StepSLScheduler at epoch 1: scheduled zeros_per_block = 2e+300 for 'w' is not representable as "
                  "a 64-bit integer");
  EXPECT_EQ(s.data_group("w").get<int64_t>("zeros_per_block"), 2);
  EXPECT_EQ(scheduler.last_epoch(), 0);
}

// ---- Defect: load() of a directory, the reserved state key, resized data ----

TEST(ReliabilityFiles, LoadingADirectoryNamesIt) {
  const auto dir = scratch_dir("ReliabilityFiles_dir");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { read_file(dir.string()); }),
                  fmt::format("cannot read '{}': Is a directory", dir.string()));
  DataNormSparsifier s;
  s.add_data("w", torch::randn({4, 8}));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.load(dir.string()); }),
                  fmt::format("cannot read '{}': Is a directory", dir.string()));
  EXPECT_TRUE(s.contains("w"));
  StepSLScheduler scheduler(s);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { scheduler.load(dir.string()); }), "Is a directory");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.load((dir / "missing.pt").string()); }),
                  fmt::format("cannot open '{}': No such file or directory", (dir / "missing.pt").string()));
}

TEST(ReliabilityFiles, ReadFileReadsWhatWasWritten) {
  const auto dir = scratch_dir("ReliabilityFiles_roundtrip");
  std::vector<char> big(200000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  write_file_atomically((dir / "big").string(), big);
  EXPECT_EQ(read_file((dir / "big").string()), big);
  write_file_atomically((dir / "empty").string(), std::string_view());
  EXPECT_TRUE(read_file((dir / "empty").string()).empty());
  // A file whose size stat reports as 0 (an ifstream could not even seek it).
  const std::vector<char> status = read_file("/proc/self/status");
  ASSERT_GE(status.size(), 5u);
  EXPECT_EQ(std::string(status.begin(), status.begin() + 5), "Name:");
}

TEST(ReliabilityFiles, TensorsThatReachPastTheirStorageAreRejected) {
  // Files found by the fuzz targets: pickles whose tensors declare more
  // elements than their bytes hold. Reading them overran the heap (ASan);
  // now they are corrupt files, named.
  const std::filesystem::path corpus = std::filesystem::path(SPARSITY_SOURCE_DIR) / "fuzz" / "corpus";
  for (const auto& file : {corpus / "sparsifier_state" / "tensor_past_its_storage.pt",
                           corpus / "checkpoint" / "tensor_past_its_storage.pt"}) {
    ASSERT_TRUE(std::filesystem::exists(file)) << file;
    DataNormSparsifier s;
    const std::string message = error_of<std::runtime_error>([&] { s.load(file.string()); });
    EXPECT_CONTAINS(message, file.string());
    EXPECT_CONTAINS(message, "reaches past its storage");
  }
  // A saved state still loads, views included (their storage is saved whole).
  const at::Tensor base = torch::arange(12, torch::kFloat);
  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(c10::IValue(base.slice(0, 2, 10).view({2, 4})));
  list.push_back(c10::IValue(base.as_strided({3, 2}, {4, 2}, 1)));
  const c10::IValue loaded = checked_pickle_load(torch::jit::pickle_save(c10::IValue(list)));
  EXPECT_TRUE(torch::equal(loaded.toListRef()[0].toTensor(), base.slice(0, 2, 10).view({2, 4})));
  EXPECT_TRUE(torch::equal(loaded.toListRef()[1].toTensor(), base.as_strided({3, 2}, {4, 2}, 1)));
}

TEST(ReliabilityFiles, AZipDirectoryPastTheFileIsACorruptFile) {
  // Found by the fuzz target: a zip64 end record pointing past the file made
  // LibTorch's in-memory reader copy from beyond the buffer (ASan: SEGV).
  const std::filesystem::path file = std::filesystem::path(SPARSITY_SOURCE_DIR) / "fuzz" / "corpus" /
                                     "sparsifier_state" / "zip_directory_past_the_file.pt";
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  DataNormSparsifier s;
  const std::string message = error_of<std::runtime_error>([&] { s.load(file.string()); });
  EXPECT_CONTAINS(message, file.string());
  EXPECT_CONTAINS(message, "the file is truncated or corrupt");
  // A record of zero bytes: the zip reader asks for it with no buffer, and
  // the adapter passed that null to memcpy (UBSan).
  const std::filesystem::path empty = file.parent_path() / "empty_record.pt";
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.load(empty.string()); }), "the file is truncated or corrupt");
  // A checkpoint whose pickle consumed the values under a mark (ASan: a bad
  // free in the Unpickler's destructor, its stack erased past the end).
  const std::filesystem::path checkpoint = file.parent_path().parent_path() / "checkpoint" /
                                           "values_under_a_mark_consumed.pt";
  const std::string corrupt = error_of<std::runtime_error>([&] { load_state_file(checkpoint.string(), "a checkpoint"); });
  EXPECT_CONTAINS(corrupt, "the pickle is malformed");
}

// A zip archive as torch::jit::pickle_save writes it, holding `pickle` as is.
std::vector<char> archive_of(const std::string& pickle) {
  std::vector<char> out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
    out.insert(out.end(), static_cast<const char*>(data), static_cast<const char*>(data) + n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeEndOfFile();
  return out;
}

TEST(ReliabilityFiles, PickleSizesAreCheckedBeforeLibTorchAllocatesThem) {
  using namespace std::string_literals;
  // Found by the fuzz targets: LibTorch's Unpickler reserves a string's
  // declared length (here 4 GiB - 16) before reading it, and fills a memo gap
  // with that many values; the pickle holds a few bytes.
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { checked_pickle_load(archive_of("\x80\x02X\xf0\xff\xff\xff" "abc."s)); }),
                  "the pickle declares a string of 4294967280 bytes at byte 2 with 4 bytes left");
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { checked_pickle_load(archive_of("\x80\x02Nr\xf0\xff\xff\xff."s)); }),
                  "the pickle stores memo entry 4294967280 at byte 3 when it holds 0 entries");
  // Found by the checkpoint fuzz target: the Unpickler trusts its marks and
  // pairs. A mark above the stack (the values under it consumed since) made
  // TUPLE erase past the stack's end, corrupting the heap; DICT over an odd
  // number of values reads past it.
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { checked_pickle_load(archive_of("\x80\x02NN(\x86t."s)); }),
                  "the pickle is malformed: opcode 0x74 at byte 6 refers to a mark at depth 2 above the stack's 1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { checked_pickle_load(archive_of("\x80\x02(NNNd."s)); }),
                  "the pickle is malformed: opcode 0x64 at byte 6 pairs 3 values");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { checked_pickle_load(archive_of("\x80\x02Ns."s)); }),
                  "opcode 0x73 at byte 3 needs 3 values, the stack holds 1");
  EXPECT_EQ(checked_pickle_load(archive_of("\x80\x02}(X\x01\x00\x00\x00" "aK\x01u."s)).toGenericDict().size(), 1u);
  // What is within the pickle's bytes still loads: a string, a short memo gap.
  EXPECT_EQ(checked_pickle_load(archive_of("\x80\x02X\x03\x00\x00\x00" "abcq\x05."s)).toStringRef(), "abc");
  // And load_state_file names the file.
  const auto dir = scratch_dir("ReliabilityFiles_pickle_sizes");
  const std::string path = (dir / "s.pt").string();
  write_file_atomically(path, archive_of("\x80\x02X\x00\x00\x00\x10" "abc."s));
  const std::string message = error_of<std::runtime_error>([&] { load_state_file(path, "a sparsifier state"); });
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "the pickle declares a string of 268435456 bytes at byte 2 with 4 bytes left");
}

TEST(ReliabilityState, TheReservedKeyMaskIsRejectedBeforeAnythingIsWritten) {
  const auto dir = scratch_dir("ReliabilityState_mask");
  const std::string path = (dir / "s.pt").string();
  ImplementedSparsifier s;
  s.add_data("w", torch::randn({3, 4}));
  s.step();
  s.state("w").set("mask", int64_t{1});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.save(path); }),
                  "the state of data 'w' has an entry 'mask', a key reserved for the saved mask");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.state_dict(); }), "data 'w'");
  // Without it the file loads back, state included.
  s.state("w").erase("mask");
  s.save(path);
  ImplementedSparsifier loaded;
  loaded.load(path);
  EXPECT_EQ(loaded.state("w"), (Config{{"step_count", int64_t{1}}}));
  EXPECT_TRUE(loaded.get_mask("w").equal(s.get_mask("w")));
}

TEST(ReliabilityResize, ResizedDataIsAnErrorNamingIt) {
  at::Tensor other = torch::randn({2, 8});
  at::Tensor data = torch::randn({4, 4});
  DataNormSparsifier s;
  s.add_data("a", other);
  s.add_data("w", data);
  data.resize_({3, 5});
  data.copy_(torch::arange(15, torch::kFloat).reshape({3, 5}));
  const std::string message =
      "data 'w' has shape [3, 5] but its mask has shape [4, 4]: the data or its mask was resized after add_data";
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.step(); }), message);
  // Checked before any mask changes: "a" was not stepped either.
  EXPECT_EQ(s.get_mask("a").sum().item<int64_t>(), 16);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.get_data("w", /*return_original=*/false); }), message);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.squash_mask(); }), message);
  EXPECT_TRUE(s.is_parametrized("a"));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.state_dict(); }), message);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.save((scratch_dir("ReliabilityResize") / "s.pt").string()); }),
                  message);
  EXPECT_EQ(s.get_data("w").sizes(), data.sizes());

  // The remedy the message gives.
  s.add_data("w", data, {}, /*reuse_mask=*/false);
  s.step();
  // Block norms 1.5, 4 / 6.5, 9 / 11.5, 14: the lowest three go.
  EXPECT_TRUE(s.get_mask("w").equal(bytes({{0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}, {1, 1, 1, 1, 1}})));
}

TEST(ReliabilityResize, AResizedLiveMaskIsAnErrorNamingIt) {
  ImplementedSparsifier s;
  s.add_data("w", torch::randn({4, 4}));
  s.get_mask("w").resize_({16});
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.step(); }),
                  "data 'w' has shape [4, 4] but its mask has shape [16]");
  EXPECT_EQ(s.step_count(), 0);
  // A squash without writing the mask does not need them to agree.
  s.squash_mask({"w"}, /*leave_parametrized=*/false);
  EXPECT_FALSE(s.is_parametrized("w"));
}

// ---- Defect: unknown per-name keys -----------------------------------------

TEST(ReliabilityKeys, AMisspeltPerNameKeyIsAnErrorWithASuggestion) {
  DataNormSparsifier s;
  const at::Tensor t = torch::randn({4, 8});
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { s.add_data("w", t, Config().set("sparsity_levle", 0.9)); }),
                  "data 'w': unknown argument 'sparsity_levle' (did you mean 'sparsity_level'?) (accepted: "
                  "sparsity_level, sparse_block_shape, zeros_per_block, norm)");
  EXPECT_FALSE(s.contains("w"));
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [&] { s.add_data("w", t, Config().set("block_shape", std::vector<int64_t>{1, 4})); }),
                  "data 'w': unknown argument 'block_shape'");
  s.add_data("w", t, Config().set("sparsity_level", 0.25));
  // A key slipped in later through data_group is caught at the next step.
  s.data_group("w").set("zeros_per_blok", int64_t{2});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { s.step(); }),
                  "data 'w': unknown argument 'zeros_per_blok' (did you mean 'zeros_per_block'?)");
  s.data_group("w").erase("zeros_per_blok");
  s.step();
  EXPECT_EQ(s.get_mask("w").sum().item<int64_t>(), 24);  // 2 of 8 blocks of 4
}

TEST(ReliabilityKeys, CustomSparsifiersStillTakeTheirOwnKeys) {
  ImplementedSparsifier s(Config{{"test", int64_t{3}}});
  s.add_data("w", torch::randn({3, 4}), Config().set("sparsity_levle", 0.9));
  EXPECT_EQ(s.data_group("w"), (Config{{"test", int64_t{3}}, {"sparsity_levle", 0.9}}));
  s.step();
  EXPECT_EQ(s.get_mask("w").sum().item<int64_t>(), 8);
}

TEST(ReliabilityKeys, ALoadedConfigIsCheckedAsAddDataChecksIt) {
  const auto dir = scratch_dir("ReliabilityKeys_load");
  const std::string path = (dir / "s.pt").string();
  ImplementedSparsifier custom(Config{{"sparsity_level", 0.5},
                                      {"sparse_block_shape", std::vector<int64_t>{1, 4}},
                                      {"zeros_per_block", int64_t{4}},
                                      {"norm", std::string("L1")}});
  custom.add_data("w", torch::randn({4, 8}), Config().set("sparse_block_shape", std::vector<int64_t>{4294967296, 1}));
  custom.save(path);
  DataNormSparsifier s;
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { s.load(path); }),
                  "data 'w': sparse_block_shape must be two integers, each between 1 and 2147483647, got "
                  "[4294967296, 1]");
  EXPECT_TRUE(s.names().empty());
}

}  // namespace
}  // namespace sparsity
