#pragma once
// The demo's residual CNN: ResNet BasicBlocks with BatchNorm whose
// convolutions are insertable slots, so that add_sparsifier_layers puts lossy
// layers inside the blocks of a model it has no special knowledge of.

#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "sparsity/lossy/sparsified.h"

namespace sparsity::demo {

/// torchvision's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
/// with 3x3 convolutions (the first with `stride`) and, when the shape
/// changes, a 1x1 convolution + BatchNorm shortcut. Every convolution is an
/// empty `insertable` slot.
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  Sparsified conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  /// Null when the block keeps its input's shape (an identity shortcut).
  torch::nn::Sequential shortcut{nullptr};

 private:
  int64_t in_channels_, out_channels_, stride_;
};
TORCH_MODULE(BasicBlock);

/// Appends a ResNet to `net` for [channels, height, width] inputs: a stem
/// (3x3 convolution to widths[0] channels, BatchNorm, ReLU, 2x2 max pooling),
/// then one stage per width of `blocks_per_stage` BasicBlocks (every stage
/// after the first halves the resolution in its first block), global average
/// pooling and a Linear classifier. Returns the number of convolution slots.
int64_t append_resnet(torch::nn::Sequential& net, int64_t channels, const std::vector<int64_t>& widths,
                      int64_t blocks_per_stage, int64_t classes);

}  // namespace sparsity::demo
