#include "demo_resnet.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <ostream>

namespace sparsity::demo {

namespace {

Sparsified conv_slot(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  // No bias: the BatchNorm after it has one.
  return insertable(torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false)));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {
  reset();
}

void BasicBlockImpl::reset() {
  conv1 = register_module("conv1", conv_slot(in_channels_, out_channels_, 3, stride_));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(out_channels_));
  conv2 = register_module("conv2", conv_slot(out_channels_, out_channels_, 3, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(out_channels_));
  shortcut = nullptr;
  if (stride_ != 1 || in_channels_ != out_channels_) {
    shortcut = register_module("shortcut", torch::nn::Sequential(conv_slot(in_channels_, out_channels_, 1, stride_),
                                                                  torch::nn::BatchNorm2d(out_channels_)));
  }
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = bn2(conv2(bn1(conv1(x)).relu_()));
  y += shortcut ? shortcut->forward(x) : x;
  return y.relu_();
}

void BasicBlockImpl::pretty_print(std::ostream& stream) const {
  stream << "BasicBlock(" << in_channels_ << ", " << out_channels_ << ", stride=" << stride_ << ")";
}

int64_t append_resnet(torch::nn::Sequential& net, int64_t channels, const std::vector<int64_t>& widths,
                      int64_t blocks_per_stage, int64_t classes) {
  int64_t slots = 1;
  net->push_back("stem", conv_slot(channels, widths.at(0), 3, 1));
  net->push_back("stem_bn", torch::nn::BatchNorm2d(widths[0]));
  net->push_back("stem_relu", torch::nn::ReLU());
  net->push_back("stem_pool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
  int64_t in = widths[0];
  for (size_t stage = 0; stage < widths.size(); ++stage) {
    for (int64_t b = 0; b < blocks_per_stage; ++b) {
      const int64_t stride = stage > 0 && b == 0 ? 2 : 1;
      BasicBlock block(in, widths[stage], stride);
      slots += block->shortcut ? 3 : 2;
      net->push_back("stage" + std::to_string(stage + 1) + "_" + std::to_string(b), block);
      in = widths[stage];
    }
  }
  net->push_back("pool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions(1)));
  net->push_back("flatten", torch::nn::Flatten());
  net->push_back("fc", torch::nn::Linear(in, classes));
  return slots;
}

}  // namespace sparsity::demo
