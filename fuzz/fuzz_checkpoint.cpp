// The Trainer's checkpoint reader on arbitrary bytes.
#include <cstdint>
#include <exception>

#include "checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sparsity::fuzz::input_file(data, size);
  try {
    sparsity::detail::read_checkpoint(path);
  } catch (const std::exception&) {
  }
  return 0;
}
