#include "sparsity/plugin/idx_reader.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace sparsity {

namespace {

namespace fs = std::filesystem;

constexpr int kMaxDims = 16;
constexpr uint64_t kMaxDataBytes = uint64_t{1} << 40;
constexpr int64_t kNumClasses = 10;

struct GzClose {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(fmt::format("IDX file '{}': {}", path, what));
}

/// Reads up to `n` bytes (fewer only at the end of the data) and appends them
/// to `out`; returns how many were read. Memory grows with what the file holds.
/// `gzip_ended_early` is set when a compressed stream stops in the middle.
size_t read_up_to(gzFile file, const std::string& path, uint64_t n, std::vector<unsigned char>& out,
                  bool& gzip_ended_early) {
  constexpr uint64_t kChunk = uint64_t{1} << 22;
  uint64_t got = 0;
  while (got < n) {
    const auto want = static_cast<unsigned>(std::min(kChunk, n - got));
    const size_t old = out.size();
    out.resize(old + want);
    const int r = gzread(file, out.data() + old, want);
    if (r < 0) {
      int errnum = 0;
      const char* message = gzerror(file, &errnum);
      fail(path, fmt::format("read error: {}",
                             errnum == Z_ERRNO ? std::strerror(errno) : (message ? message : "unknown zlib error")));
    }
    out.resize(old + static_cast<size_t>(r));
    got += static_cast<uint64_t>(r);
    if (r == 0) break;
  }
  int errnum = Z_OK;
  gzerror(file, &errnum);
  gzip_ended_early = gzip_ended_early || errnum == Z_BUF_ERROR;
  if (errnum != Z_OK && errnum != Z_BUF_ERROR) {
    const char* message = gzerror(file, &errnum);
    fail(path, fmt::format("read error: {}", message ? message : "unknown zlib error"));
  }
  return static_cast<size_t>(got);
}

struct IdxType {
  at::ScalarType scalar_type;
  const char* name;
  size_t size;
};

bool idx_type(unsigned code, IdxType& type) {
  switch (code) {
    case 0x08: type = {at::kByte, "uint8", 1}; return true;
    case 0x09: type = {at::kChar, "int8", 1}; return true;
    case 0x0B: type = {at::kShort, "int16", 2}; return true;
    case 0x0C: type = {at::kInt, "int32", 4}; return true;
    case 0x0D: type = {at::kFloat, "float32", 4}; return true;
    case 0x0E: type = {at::kDouble, "float64", 8}; return true;
    default: return false;
  }
}

bool little_endian_host() {
  const uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

std::string gzip_note(bool ended_early) {
  return ended_early ? " (the gzip stream ends early: the compressed file is cut off)" : "";
}

/// `dir`/`name` or `dir`/`name`.gz, whichever exists (the plain one first).
std::string find_split_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"}) {
    std::error_code ec;
    const fs::path path = fs::path(dir) / candidate;
    if (fs::exists(path, ec)) return path.string();
  }
  std::error_code ec;
  const std::string where = fs::is_directory(dir, ec)
                                ? fmt::format("no {0} or {0}.gz in '{1}'", name, dir)
                                : fmt::format("'{0}' is not a directory (looked for {1} or {1}.gz)", dir, name);
  throw std::runtime_error(fmt::format("MNIST data: {}", where));
}

/// An IDX file opened and its header read: what its data will be.
struct OpenIdx {
  std::string path;
  GzFile file;
  IdxType type{};
  std::vector<int64_t> sizes;
  uint64_t bytes = 0;  // of data, as the header declares
  bool ended_early = false;
};

OpenIdx open_idx(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, "no such file");
  if (!fs::is_regular_file(path, ec)) fail(path, "not a regular file");
  OpenIdx idx;
  idx.path = path;
  errno = 0;
  idx.file.reset(gzopen(path.c_str(), "rb"));
  if (!idx.file) fail(path, fmt::format("cannot open: {}", errno ? std::strerror(errno) : "out of memory"));

  bool& ended_early = idx.ended_early;
  std::vector<unsigned char> header;
  if (read_up_to(idx.file.get(), path, 4, header, ended_early) < 4)
    fail(path, fmt::format("truncated header: expected 4 bytes of magic number, got {}{}", header.size(),
                           gzip_note(ended_early)));
  const unsigned code = header[2], ndims = header[3];
  if (header[0] != 0 || header[1] != 0)
    fail(path, fmt::format("bad magic number 0x{:02X}{:02X}{:02X}{:02X}: an IDX file starts with two zero bytes, "
                           "then the type code and the number of dimensions (e.g. 0x00000803 for MNIST images)",
                           header[0], header[1], header[2], header[3]));
  if (!idx_type(code, idx.type))
    fail(path, fmt::format("unknown data type code 0x{:02X} in the magic number (known: 0x08 uint8, 0x09 int8, "
                           "0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)",
                           code));
  if (ndims < 1 || ndims > kMaxDims)
    fail(path, fmt::format("the magic number declares {} dimensions; this reader accepts 1 to {}", ndims, kMaxDims));

  std::vector<unsigned char> dims_bytes;
  const uint64_t dims_size = uint64_t{4} * ndims;
  if (read_up_to(idx.file.get(), path, dims_size, dims_bytes, ended_early) < dims_size)
    fail(path, fmt::format("truncated header: expected {} bytes of dimension sizes ({} dimensions), got {}{}",
                           dims_size, ndims, dims_bytes.size(), gzip_note(ended_early)));
  idx.sizes.resize(ndims);
  bool any_zero = false;
  for (unsigned d = 0; d < ndims; ++d) {
    const unsigned char* b = dims_bytes.data() + 4 * d;
    idx.sizes[d] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    any_zero = any_zero || idx.sizes[d] == 0;
  }
  uint64_t expected = any_zero ? 0 : idx.type.size;
  for (unsigned d = 0; d < ndims && !any_zero; ++d) {
    const auto dim = static_cast<uint64_t>(idx.sizes[d]);
    if (expected > kMaxDataBytes / dim)
      fail(path, fmt::format("dimensions [{}] of {} need more than 2^40 bytes; the header is corrupt",
                             fmt::join(idx.sizes, ", "), idx.type.name));
    expected *= dim;
  }
  idx.bytes = expected;
  return idx;
}

/// The data of an opened file: exactly the bytes its header declares.
at::Tensor read_idx_data(OpenIdx& idx) {
  const std::string& path = idx.path;
  const uint64_t expected = idx.bytes;
  const std::vector<int64_t>& sizes = idx.sizes;
  const IdxType& type = idx.type;
  bool& ended_early = idx.ended_early;
  // One byte more than needed tells trailing bytes apart from an exact fit.
  std::vector<unsigned char> data;
  data.reserve(static_cast<size_t>(std::min<uint64_t>(expected + 1, uint64_t{1} << 26)));
  const size_t got = read_up_to(idx.file.get(), path, expected + 1, data, ended_early);
  if (got < expected)
    fail(path, fmt::format("truncated data: dimensions [{}] of {} need {} bytes, got {}{}", fmt::join(sizes, ", "),
                           type.name, expected, got, gzip_note(ended_early)));
  if (got > expected)
    fail(path, fmt::format("trailing bytes after the {} bytes of data that dimensions [{}] of {} need",
                           expected, fmt::join(sizes, ", "), type.name));
  if (ended_early)
    fail(path, fmt::format("truncated gzip stream: the {} bytes of data are there but the compressed file is cut off "
                           "before its end, so its checksum cannot be verified",
                           expected));

  if (type.size > 1 && little_endian_host())
    for (size_t i = 0; i + type.size <= data.size(); i += type.size)
      std::reverse(data.begin() + static_cast<std::ptrdiff_t>(i),
                   data.begin() + static_cast<std::ptrdiff_t>(i + type.size));
  at::Tensor result = at::empty(sizes, at::TensorOptions().dtype(type.scalar_type));
  if (expected > 0) std::memcpy(result.data_ptr(), data.data(), static_cast<size_t>(expected));
  return result;
}

}  // namespace

at::Tensor read_idx(const std::string& path) {
  OpenIdx idx = open_idx(path);
  return read_idx_data(idx);
}

MnistSplit read_mnist_directory(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_split_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_split_file(dir, prefix + "-labels-idx1-ubyte");
  // Both headers are checked before any data is read: a file that claims
  // gigabytes (a few MB of gzip can) is not decompressed for nothing.
  OpenIdx image_file = open_idx(images_path);
  OpenIdx label_file = open_idx(labels_path);
  if (image_file.type.scalar_type != at::kByte || image_file.sizes.size() != 3)
    fail(images_path, fmt::format("MNIST images must be a 3-D uint8 IDX file [N, rows, columns]; got {} of shape [{}]",
                                  c10::toString(image_file.type.scalar_type), fmt::join(image_file.sizes, ", ")));
  if (label_file.type.scalar_type != at::kByte || label_file.sizes.size() != 1)
    fail(labels_path, fmt::format("MNIST labels must be a 1-D uint8 IDX file [N]; got {} of shape [{}]",
                                  c10::toString(label_file.type.scalar_type), fmt::join(label_file.sizes, ", ")));
  if (image_file.sizes[0] != label_file.sizes[0])
    throw std::runtime_error(fmt::format("MNIST data: '{}' holds {} images but '{}' holds {} labels", images_path,
                                         image_file.sizes[0], labels_path, label_file.sizes[0]));
  if (image_file.sizes[0] == 0 || image_file.sizes[1] == 0 || image_file.sizes[2] == 0)
    fail(images_path, fmt::format("no image data (shape [{}])", fmt::join(image_file.sizes, ", ")));
  const at::Tensor labels = read_idx_data(label_file);
  const at::Tensor images = read_idx_data(image_file);

  const auto* label = labels.data_ptr<uint8_t>();
  for (int64_t i = 0; i < labels.size(0); ++i)
    if (label[i] >= kNumClasses)
      fail(labels_path, fmt::format("label {} of example {} is out of range 0 .. {}", static_cast<int>(label[i]), i,
                                    kNumClasses - 1));

  return {images.unsqueeze(1).to(at::kFloat).div_(255.0), labels.to(at::kLong)};
}

DataSource load_mnist_directory(const std::string& dir, bool train, int64_t batch_size, bool shuffle,
                                uint64_t seed) {
  MnistSplit split = read_mnist_directory(dir, train);
  return DataSource(std::move(split.images), std::move(split.labels), batch_size, shuffle, seed);
}

}  // namespace sparsity
