// The IDX reader: every element type, plain and gzip-compressed files, each
// class of malformed file (truncated at every length), MNIST directories and,
// when Debian's dataset-fashion-mnist is installed, the real Fashion-MNIST.
#include "sparsity/plugin/idx_reader.h"

#include <torch/torch.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "../core/test_support.h"

namespace sparsity {
namespace {

using testing::error_of;
namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

void put_be(Bytes& out, uint64_t value, size_t size) {
  for (size_t i = size; i-- > 0;) out.push_back(static_cast<unsigned char>(value >> (8 * i)));
}

Bytes idx_header(unsigned char code, const std::vector<uint32_t>& dims) {
  Bytes out{0, 0, code, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims) put_be(out, d, 4);
  return out;
}

/// An IDX file of `values` (converted to T, written big-endian).
template <class T>
Bytes idx_file(unsigned char code, const std::vector<uint32_t>& dims, const std::vector<T>& values) {
  Bytes out = idx_header(code, dims);
  for (T v : values) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    put_be(out, bits, sizeof(T));
  }
  return out;
}

std::string write_plain(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(out.good()) << path;
  return path.string();
}

std::string write_gzip(const fs::path& path, const Bytes& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb");
  EXPECT_NE(f, nullptr) << path;
  if (f == nullptr) return path.string();
  if (!bytes.empty()) {
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  }
  EXPECT_EQ(gzclose(f), Z_OK);
  return path.string();
}

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string idx_error(const std::string& path) {
  const std::string message = error_of<std::runtime_error>([&] { read_idx(path); });
  EXPECT_CONTAINS(message, path);
  return message;
}

// ---------------------------------------------------------------------------
// read_idx

class IdxReaderFormats : public ::testing::TestWithParam<bool> {};

TEST_P(IdxReaderFormats, ReadsEveryElementTypeWithItsShape) {
  const bool gzip = GetParam();
  const fs::path dir = testing::scratch_dir(gzip ? "idx_types_gz" : "idx_types_plain");
  auto write = [&](const std::string& name, const Bytes& bytes) {
    return gzip ? write_gzip(dir / (name + ".gz"), bytes) : write_plain(dir / name, bytes);
  };

  const at::Tensor u8 = read_idx(write("u8", idx_file<uint8_t>(0x08, {2, 3}, {0, 1, 127, 128, 254, 255})));
  EXPECT_EQ(u8.scalar_type(), torch::kByte);
  EXPECT_TRUE(torch::equal(u8, torch::tensor({0, 1, 127, 128, 254, 255}, torch::kByte).view({2, 3})));

  const at::Tensor i8 = read_idx(write("i8", idx_file<int8_t>(0x09, {4}, {-128, -1, 0, 127})));
  EXPECT_EQ(i8.scalar_type(), torch::kChar);
  EXPECT_TRUE(torch::equal(i8, torch::tensor({-128, -1, 0, 127}, torch::kChar)));

  const at::Tensor i16 = read_idx(write("i16", idx_file<int16_t>(0x0B, {2, 1, 2}, {-300, 1000, -32768, 32767})));
  EXPECT_EQ(i16.scalar_type(), torch::kShort);
  EXPECT_TRUE(torch::equal(i16, torch::tensor({-300, 1000, -32768, 32767}, torch::kShort).view({2, 1, 2})));

  const at::Tensor i32 = read_idx(write("i32", idx_file<int32_t>(0x0C, {3}, {-70000, 1 << 30, 258})));
  EXPECT_EQ(i32.scalar_type(), torch::kInt);
  EXPECT_TRUE(torch::equal(i32, torch::tensor({-70000, 1 << 30, 258}, torch::kInt)));

  const at::Tensor f32 = read_idx(write("f32", idx_file<float>(0x0D, {1, 3}, {1.5f, -2.25f, 1e-30f})));
  EXPECT_EQ(f32.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f32, torch::tensor({1.5f, -2.25f, 1e-30f}, torch::kFloat).view({1, 3})));

  const at::Tensor f64 = read_idx(write("f64", idx_file<double>(0x0E, {2}, {3.25, -1e300})));
  EXPECT_EQ(f64.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(f64, torch::tensor({3.25, -1e300}, torch::kDouble)));

  const at::Tensor empty = read_idx(write("empty", idx_header(0x08, {0, 28, 28})));
  EXPECT_EQ(empty.sizes(), (std::vector<int64_t>{0, 28, 28}));
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxReaderFormats, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Gzip" : "Plain"; });

TEST(IdxReader, MalformedHeadersAreClearErrors) {
  const fs::path dir = testing::scratch_dir("idx_headers");
  EXPECT_CONTAINS(idx_error((dir / "absent").string()), "no such file");
  EXPECT_CONTAINS(idx_error(dir.string()), "not a regular file");

  EXPECT_CONTAINS(idx_error(write_plain(dir / "magic", Bytes{1, 0, 8, 1, 0, 0, 0, 1, 7})), "bad magic number 0x01000801");
  EXPECT_CONTAINS(idx_error(write_plain(dir / "text", Bytes{'h', 'e', 'l', 'l', 'o'})), "bad magic");
  const std::string code = idx_error(write_plain(dir / "code", idx_file<uint8_t>(0x0A, {1}, {7})));
  EXPECT_CONTAINS(code, "unknown data type code 0x0A");
  EXPECT_CONTAINS(code, "0x0D float32");
  EXPECT_CONTAINS(idx_error(write_plain(dir / "nodims", Bytes{0, 0, 8, 0, 7})), "declares 0 dimensions");
  EXPECT_CONTAINS(idx_error(write_plain(dir / "manydims", idx_header(0x08, std::vector<uint32_t>(17, 1)))),
                  "declares 17 dimensions");

  // Dimensions whose product overflows, or is merely huge: an error, no allocation.
  const std::string overflow =
      idx_error(write_plain(dir / "overflow", idx_header(0x0E, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu})));
  EXPECT_CONTAINS(overflow, "more than 2^40 bytes");
  const std::string huge = idx_error(write_plain(dir / "huge", idx_file<uint8_t>(0x08, {100000, 100000}, {1, 2})));
  EXPECT_CONTAINS(huge, "need 10000000000 bytes, got 2");

  Bytes trailing = idx_file<int16_t>(0x0B, {2}, {1, 2});
  trailing.push_back(0);
  EXPECT_CONTAINS(idx_error(write_plain(dir / "trailing", trailing)), "trailing bytes after the 4 bytes of data");
  EXPECT_CONTAINS(idx_error(write_gzip(dir / "trailing.gz", trailing)), "trailing bytes");
}

TEST(IdxReader, TruncationAtEveryLengthIsAClearError) {
  const fs::path dir = testing::scratch_dir("idx_truncated");
  const Bytes full = idx_file<int32_t>(0x0C, {2, 3}, {1, -2, 3, -4, 5, -6});  // 4 + 8 + 24 bytes
  for (size_t length = 0; length < full.size(); ++length) {
    SCOPED_TRACE(length);
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(length));
    for (const bool gzip : {false, true}) {
      const std::string name = "cut" + std::to_string(length);
      const std::string path = gzip ? write_gzip(dir / (name + ".gz"), cut) : write_plain(dir / name, cut);
      const std::string message = idx_error(path);
      EXPECT_CONTAINS(message, "truncated");
      if (length >= 12) {
        EXPECT_CONTAINS(message, "need 24 bytes, got " + std::to_string(length - 12));
      } else if (length >= 4) {
        EXPECT_CONTAINS(message, "expected 8 bytes of dimension sizes");
      } else {
        EXPECT_CONTAINS(message, "expected 4 bytes of magic number, got " + std::to_string(length));
      }
    }
  }
  EXPECT_EQ(read_idx(write_plain(dir / "whole", full)).sizes(), (std::vector<int64_t>{2, 3}));
}

TEST(IdxReader, CutOffGzipStreamsAreErrorsNotCrashes) {
  const fs::path dir = testing::scratch_dir("idx_cut_gzip");
  std::vector<uint8_t> pixels(5 * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  const Bytes compressed = read_bytes(write_gzip(dir / "whole.gz", idx_file<uint8_t>(0x08, {5, 28, 28}, pixels)));
  ASSERT_GT(compressed.size(), 40u);
  for (size_t length : {size_t{1}, size_t{5}, size_t{12}, size_t{20}, compressed.size() / 2, compressed.size() - 9,
                        compressed.size() - 1}) {
    SCOPED_TRACE(length);
    const Bytes cut(compressed.begin(), compressed.begin() + static_cast<std::ptrdiff_t>(length));
    const std::string message = idx_error(write_plain(dir / ("cut" + std::to_string(length) + ".gz"), cut));
    EXPECT_TRUE(message.find("truncated") != std::string::npos || message.find("read error") != std::string::npos)
        << message;
  }
}

// ---------------------------------------------------------------------------
// MNIST directories

/// A directory with `n` 28x28 images (pixel i of image k is (k + i) % 256)
/// and the labels `labels`, for `prefix` ("train" or "t10k").
void write_mnist(const fs::path& dir, const std::string& prefix, int64_t n, const std::vector<uint8_t>& labels,
                 bool gzip) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i / 784 + i % 784) % 256);
  const Bytes images = idx_file<uint8_t>(0x08, {static_cast<uint32_t>(n), 28, 28}, pixels);
  const Bytes label_file = idx_file<uint8_t>(0x08, {static_cast<uint32_t>(labels.size())}, labels);
  const std::string suffix = gzip ? ".gz" : "";
  auto write = gzip ? write_gzip : write_plain;
  write(dir / (prefix + "-images-idx3-ubyte" + suffix), images);
  write(dir / (prefix + "-labels-idx1-ubyte" + suffix), label_file);
}

TEST(MnistDirectory, LoadsImagesScaledToUnitRangeAndInt64Labels) {
  const fs::path dir = testing::scratch_dir("mnist_small");
  write_mnist(dir, "train", 4, {3, 0, 9, 1}, /*gzip=*/true);
  write_mnist(dir, "t10k", 2, {5, 2}, /*gzip=*/false);

  const MnistSplit train = read_mnist_directory(dir.string(), /*train=*/true);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  EXPECT_EQ(train.images.scalar_type(), torch::kFloat);
  EXPECT_FLOAT_EQ(train.images[2][0][0][5].item<float>(), 7.0f / 255.0f);
  EXPECT_FLOAT_EQ(train.images.max().item<float>(), 255.0f / 255.0f);
  EXPECT_TRUE(torch::equal(train.labels, torch::tensor({3, 0, 9, 1}, torch::kLong)));

  const DataSource test = load_mnist_directory(dir.string(), /*train=*/false, /*batch_size=*/1, /*shuffle=*/false);
  EXPECT_EQ(test.size(), 2);
  EXPECT_EQ(test.num_batches(), 2);
  EXPECT_EQ(test.inputs().sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_TRUE(torch::equal(test.targets(), torch::tensor({5, 2}, torch::kLong)));
}

TEST(MnistDirectory, MissingFilesNameTheDirectoryAndTheFiles) {
  const fs::path dir = testing::scratch_dir("mnist_missing");
  std::string message = error_of<std::runtime_error>([&] { read_mnist_directory(dir.string(), true); });
  EXPECT_CONTAINS(message, "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz in '" + dir.string() + "'");
  // How to install a data set is the application's to say (trainer_demo does).
  EXPECT_EQ(message.find("setup.sh"), std::string::npos) << message;

  write_mnist(dir, "train", 2, {1, 2}, false);
  fs::remove(dir / "train-labels-idx1-ubyte");
  message = error_of<std::runtime_error>([&] { load_mnist_directory(dir.string(), true, 8, false, 0); });
  EXPECT_CONTAINS(message, "no train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz");
  message = error_of<std::runtime_error>([&] { read_mnist_directory((dir / "nowhere").string(), false); });
  EXPECT_CONTAINS(message, "is not a directory (looked for t10k-images-idx3-ubyte");
}

TEST(MnistDirectory, InconsistentFilesAreClearErrors) {
  const fs::path dir = testing::scratch_dir("mnist_bad");
  const std::string images = (dir / "train-images-idx3-ubyte").string();
  const std::string labels = (dir / "train-labels-idx1-ubyte").string();
  auto error = [&] { return error_of<std::runtime_error>([&] { read_mnist_directory(dir.string(), true); }); };

  write_mnist(dir, "train", 3, {1, 2}, false);
  std::string message = error();
  EXPECT_CONTAINS(message, "'" + images + "' holds 3 images but '" + labels + "' holds 2 labels");

  write_mnist(dir, "train", 3, {1, 10, 2}, false);
  message = error();
  EXPECT_CONTAINS(message, labels);
  EXPECT_CONTAINS(message, "label 10 of example 1 is out of range 0 .. 9");

  write_mnist(dir, "train", 0, {}, false);
  EXPECT_CONTAINS(error(), "no image data");

  write_mnist(dir, "train", 2, {1, 2}, false);
  write_plain(labels, idx_file<uint8_t>(0x08, {2, 1}, {1, 2}));
  EXPECT_CONTAINS(error(), "MNIST labels must be a 1-D uint8 IDX file [N]; got Byte of shape [2, 1]");
  write_plain(images, idx_file<int32_t>(0x0C, {1, 2, 2}, {1, 2, 3, 4}));
  message = error();
  EXPECT_CONTAINS(message, images);
  EXPECT_CONTAINS(message, "3-D uint8");

  write_mnist(dir, "train", 2, {1, 2}, false);
  EXPECT_THROW(load_mnist_directory(dir.string(), true, /*batch_size=*/0, false, 0), std::invalid_argument);
}

TEST(MnistDirectory, HeadersAreCheckedBeforeAnyDataIsRead) {
  // The images' header claims 1,000,000 images (784 MB) and its data is not
  // there; the labels hold 10. Reading the images first would fail on their
  // truncation, or for a gzip bomb decompress all of it, before the
  // mismatch; the headers alone show it.
  const fs::path dir = testing::scratch_dir("mnist_headers_first");
  write_gzip(dir / "train-images-idx3-ubyte.gz", idx_header(0x08, {1000000, 28, 28}));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_file<uint8_t>(0x08, {10}, std::vector<uint8_t>(10, 1)));
  std::string message = error_of<std::runtime_error>([&] { read_mnist_directory(dir.string(), true); });
  EXPECT_CONTAINS(message, "holds 1000000 images but");
  EXPECT_CONTAINS(message, "holds 10 labels");
  // A labels file of the wrong type is reported from its header too.
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_header(0x0D, {1000000}));
  message = error_of<std::runtime_error>([&] { read_mnist_directory(dir.string(), true); });
  EXPECT_CONTAINS(message, "MNIST labels must be a 1-D uint8 IDX file [N]; got Float of shape [1000000]");
}

TEST(MnistDirectory, RealFashionMnistWhenInstalled) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";  // Debian's dataset-fashion-mnist
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist)";
  const MnistSplit train = read_mnist_directory(dir.string(), /*train=*/true);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(train.labels.sizes(), (std::vector<int64_t>{60000}));
  EXPECT_GE(train.images.min().item<float>(), 0.0f);
  EXPECT_LE(train.images.max().item<float>(), 1.0f);
  // Every one of the 10 classes, 6000 times each.
  EXPECT_TRUE(torch::equal(torch::bincount(train.labels), torch::full({10}, 6000, torch::kLong)));
  const MnistSplit test = read_mnist_directory(dir.string(), /*train=*/false);
  EXPECT_EQ(test.images.size(0), 10000);
}

}  // namespace
}  // namespace sparsity
