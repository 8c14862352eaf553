#pragma once
// Shared by the fuzz targets: the input as a file, for readers that take a
// path. One file per process, rewritten for every input.

#include <c10/util/Logging.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace sparsity::fuzz {

/// Writes `data` to this process's scratch file and returns its path.
inline std::string input_file(const uint8_t* data, size_t size) {
  // In memory where there is a tmpfs: a file on disk made the block device,
  // not the reader, the cost of an input.
  static const std::filesystem::path dir =
      std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  static const std::string path = (dir / ("sparsity_fuzz_" + std::to_string(getpid()))).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

/// Makes LibTorch's errors cheap: each c10::Error otherwise captures and
/// symbolizes a stack trace, which dominated the time per input (230 inputs/s
/// for the state loader). The fuzzers look for crashes, not messages.
inline int skip_libtorch_backtraces() {
  c10::SetStackTraceFetcher([] { return std::string(); });
  return 0;
}

}  // namespace sparsity::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) { return sparsity::fuzz::skip_libtorch_backtraces(); }
