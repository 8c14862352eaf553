#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "sparsity/plugin/data_source.h"

namespace sparsity {

/// The content of an IDX file (the format of MNIST and Fashion-MNIST), plain
/// or gzip-compressed (zlib reads both; the name does not matter), as a tensor
/// of the file's element type and shape: code 0x08 uint8, 0x09 int8, 0x0B
/// int16, 0x0C int32, 0x0D float32, 0x0E float64. The file's big-endian values
/// are converted to the machine's order.
///
/// Throws std::runtime_error naming `path` and what is wrong when the file
/// cannot be opened or read, does not start with the IDX magic (two zero
/// bytes, the type code, the number of dimensions, 1 to 16), has an unknown
/// type code, holds fewer data bytes than its dimensions need ("expected N
/// bytes, got M") or more (trailing bytes), or declares more than 2^40 bytes.
/// Memory grows with the bytes actually read, never with what a header claims.
at::Tensor read_idx(const std::string& path);

/// The images and labels of one split of an MNIST-format directory.
struct MnistSplit {
  /// [N, 1, H, W] float32 in [0, 1] (the file's uint8 pixels / 255); H = W = 28
  /// for MNIST and Fashion-MNIST.
  at::Tensor images;
  /// [N] int64 in 0 .. 9.
  at::Tensor labels;
};

/// Reads `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (or `t10k-...`
/// when `train` is false) from `dir`, each plain or with a `.gz` suffix (the
/// plain file wins when both exist).
///
/// Both files' headers are checked (types, shapes, the same N) before any of
/// their data is read, so a header that claims gigabytes costs nothing when
/// the other file disagrees with it.
///
/// Throws std::runtime_error naming the file and the problem: a missing file
/// (naming the directory and the names looked for), any
/// `read_idx` error, images that are not a 3-D uint8 IDX file, labels that are
/// not a 1-D uint8 one, different numbers of images and labels, an empty set,
/// or a label outside 0 .. 9 (with its index).
MnistSplit read_mnist_directory(const std::string& dir, bool train);

/// `read_mnist_directory` as a DataSource: inputs [N, 1, H, W] float32 in
/// [0, 1], targets [N] int64. Batch size, shuffling and seed as in DataSource
/// (whose std::invalid_argument a batch size below 1 gives).
DataSource load_mnist_directory(const std::string& dir, bool train, int64_t batch_size = 64,
                                bool shuffle = true, uint64_t seed = 0);

}  // namespace sparsity
