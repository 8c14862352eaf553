#pragma once
// The demo's residual CNN: ResNet BasicBlocks with BatchNorm, with insertable
// Identity slots where their activation maps leave a ReLU, so that
// add_sparsifier_layers puts lossy layers inside the blocks of a model it has
// no special knowledge of (the research code's nn.Identity hook points).

#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "sparsity/lossy/sparsified.h"

namespace sparsity::demo {

/// torchvision's BasicBlock, act2(relu(bn2(conv2(act1(relu(bn1(conv1(x)))))) +
/// shortcut(x))), with 3x3 convolutions (the first with `stride`) and, when
/// the shape changes, a 1x1 convolution + BatchNorm shortcut. `act1` and
/// `act2` are empty `insertable` Identity slots: the two maps the block
/// passes on after a ReLU, the inputs of the next convolutions.
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  Sparsified act1{nullptr}, act2{nullptr};
  /// Null when the block keeps its input's shape (an identity shortcut).
  torch::nn::Sequential shortcut{nullptr};

 private:
  int64_t in_channels_, out_channels_, stride_;
};
TORCH_MODULE(BasicBlock);

/// Appends a ResNet to `net` for [channels, height, width] inputs: a stem
/// (3x3 convolution to widths[0] channels, BatchNorm, ReLU, 2x2 max pooling,
/// an Identity slot: children 0-4), then one stage per width of `blocks_per_stage` BasicBlocks
/// (every stage after the first halves the resolution, rounding up, in its
/// first block), Flatten and a Linear classifier on the last feature map.
/// Returns the number of Identity slots. Images under 2x2 are
/// std::invalid_argument.
int64_t append_resnet(torch::nn::Sequential& net, int64_t channels, int64_t height, int64_t width,
                      const std::vector<int64_t>& widths, int64_t blocks_per_stage, int64_t classes);

}  // namespace sparsity::demo
