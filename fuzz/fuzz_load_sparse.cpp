// load_sparse on arbitrary bytes (a compact model file), into a small module
// with a matrix, a vector, a float64 and an int64 buffer: the module of the
// seed corpus (fuzz/corpus/load_sparse, written by the SparseFile tests).
#include <torch/torch.h>

#include <cstdint>
#include <exception>

#include "fuzz_input.h"
#include "sparsity/sparse/sparse_file.h"

namespace {

struct SmallImpl : torch::nn::Module {
  SmallImpl() {
    weight = register_parameter("weight", torch::zeros({6, 5}));
    bias = register_parameter("bias", torch::zeros({5}));
    running = register_buffer("running", torch::zeros({3}, torch::kDouble));
    steps = register_buffer("steps", torch::zeros({}, torch::kLong));
  }
  torch::Tensor weight, bias, running, steps;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sparsity::fuzz::input_file(data, size);
  try {
    SmallImpl module;
    sparsity::load_sparse(module, path);
    // What a reader does next: use the values.
    (void)module.weight.sum().item<float>();
  } catch (const std::exception&) {
  }
  return 0;
}
