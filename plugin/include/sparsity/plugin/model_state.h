#pragma once
// A model's weights on disk in the format Python reads as a state dict.

#include <string>

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

/// Writes every parameter and buffer of `model` as a dict {qualified name:
/// tensor} (on the CPU) pickled in LibTorch's format, atomically (a temporary
/// file renamed over `path`). Python reads it as a state dict:
/// `model.load_state_dict(torch.load(path))`.
///
/// Example:
/// ```
/// sparsity::save_model_state(*post->sparsified(), "runs/x/models/post.pt");
/// ```
void save_model_state(const torch::nn::Module& model, const std::string& path);

/// Copies the tensors of a file written by `save_model_state` into `model`'s
/// parameters and buffers, in place. A missing, unreadable or mismatching file
/// (missing, unexpected or misshapen tensors) is a std::runtime_error naming
/// `path` and each problem; the model is then unchanged.
void load_model_state(torch::nn::Module& model, const std::string& path);

}  // namespace sparsity
