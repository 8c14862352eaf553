#include "demo_resnet.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <fmt/format.h>

#include <ostream>
#include <stdexcept>

namespace sparsity::demo {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  // No bias: the BatchNorm after it has one.
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

Sparsified activation_slot() { return insertable(torch::nn::Identity()); }

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {
  reset();
}

void BasicBlockImpl::reset() {
  conv1 = register_module("conv1", conv(in_channels_, out_channels_, 3, stride_));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(out_channels_));
  act1 = register_module("act1", activation_slot());
  conv2 = register_module("conv2", conv(out_channels_, out_channels_, 3, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(out_channels_));
  act2 = register_module("act2", activation_slot());
  shortcut = nullptr;
  if (stride_ != 1 || in_channels_ != out_channels_) {
    shortcut = register_module("shortcut", torch::nn::Sequential(conv(in_channels_, out_channels_, 1, stride_),
                                                                  torch::nn::BatchNorm2d(out_channels_)));
  }
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = bn2(conv2(act1(bn1(conv1(x)).relu_())));
  y += shortcut ? shortcut->forward(x) : x;
  return act2(y.relu_());
}

void BasicBlockImpl::pretty_print(std::ostream& stream) const {
  stream << "BasicBlock(" << in_channels_ << ", " << out_channels_ << ", stride=" << stride_ << ")";
}

int64_t append_resnet(torch::nn::Sequential& net, int64_t channels, int64_t height, int64_t width,
                      const std::vector<int64_t>& widths, int64_t blocks_per_stage, int64_t classes) {
  // Numbered, not named, children: Sequential::clone (the copies the callbacks
  // evaluate) renumbers them, and the saved files must match the model.
  int64_t slots = 1;
  net->push_back(conv(channels, widths.at(0), 3, 1));
  net->push_back(torch::nn::BatchNorm2d(widths[0]));
  net->push_back(torch::nn::ReLU());
  net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
  net->push_back(activation_slot());
  if (height < 2 || width < 2) {
    throw std::invalid_argument(fmt::format("model: a resnet needs images of at least 2x2, got {}x{}", height, width));
  }
  height /= 2;  // the stem's pooling
  width /= 2;
  int64_t in = widths[0];
  for (size_t stage = 0; stage < widths.size(); ++stage) {
    if (stage > 0) {
      // A 3x3 convolution with stride 2 and padding 1: ceil(n / 2).
      height = (height + 1) / 2;
      width = (width + 1) / 2;
    }
    for (int64_t b = 0; b < blocks_per_stage; ++b) {
      const int64_t stride = stage > 0 && b == 0 ? 2 : 1;
      BasicBlock block(in, widths[stage], stride);
      slots += 2;
      net->push_back(block);
      in = widths[stage];
    }
  }
  // The last feature map flattened, not averaged: on 28x28 images global
  // average pooling cost about 10 points of accuracy after the first epoch.
  net->push_back(torch::nn::Flatten());
  net->push_back(torch::nn::Linear(in * height * width, classes));
  return slots;
}

}  // namespace sparsity::demo
