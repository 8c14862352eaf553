// BaseDataSparsifier::load on arbitrary bytes (a sparsifier state file).
#include <cstdint>
#include <exception>

#include "fuzz_input.h"
#include "sparsity/data_sparsifier/data_norm_sparsifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sparsity::fuzz::input_file(data, size);
  try {
    sparsity::DataNormSparsifier sparsifier;
    sparsifier.load(path);
    sparsifier.step();
  } catch (const std::exception&) {
  }
  return 0;
}
