#pragma once
// The module the load_sparse fuzz target reads into, and whose files its seed
// corpus (fuzz/corpus/load_sparse) holds: a matrix, a vector, a float64 and
// an int64 buffer. The SparseFile tests write and check those seeds with it.

#include <torch/nn/module.h>
#include <torch/types.h>

namespace sparsity::fuzz {

struct LoadSparseModule : torch::nn::Module {
  LoadSparseModule() {
    weight = register_parameter("weight", torch::zeros({6, 5}));
    bias = register_parameter("bias", torch::zeros({5}));
    running = register_buffer("running", torch::zeros({3}, torch::kDouble));
    steps = register_buffer("steps", torch::zeros({}, torch::kLong));
  }
  torch::Tensor weight, bias, running, steps;
};

}  // namespace sparsity::fuzz
