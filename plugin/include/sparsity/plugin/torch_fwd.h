#pragma once

// Forward declarations of the LibTorch classes the plugin's headers name only
// by pointer or reference, so that including them does not cost <torch/torch.h>.

namespace torch {
namespace nn {
class Module;
}  // namespace nn
namespace optim {
class Optimizer;
}  // namespace optim
}  // namespace torch
