// load_sparse on arbitrary bytes (a compact model file), into the small module
// of the seed corpus (load_sparse_module.h).
#include <torch/torch.h>

#include <cstdint>
#include <exception>

#include "fuzz_input.h"
#include "load_sparse_module.h"
#include "sparsity/sparse/sparse_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sparsity::fuzz::input_file(data, size);
  try {
    sparsity::fuzz::LoadSparseModule module;
    sparsity::load_sparse(module, path);
    // What a reader does next: use the values.
    (void)module.weight.sum().item<float>();
  } catch (const std::exception&) {
  }
  return 0;
}
