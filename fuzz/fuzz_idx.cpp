// The IDX (MNIST format) reader on arbitrary bytes, plain or gzip.
#include <cstdint>
#include <exception>

#include "fuzz_input.h"
#include "sparsity/plugin/idx_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sparsity::fuzz::input_file(data, size);
  try {
    sparsity::read_idx(path);
  } catch (const std::exception&) {
  }
  return 0;
}
