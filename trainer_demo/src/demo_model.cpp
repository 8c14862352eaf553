#include "demo_model.h"

#include <fmt/format.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>  // Flatten too
#include <torch/nn/modules/pooling.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <ATen/Context.h>

#include <stdexcept>

#include "demo_resnet.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/lossy/penalties.h"

namespace sparsity::demo {

namespace {

at::Tensor cross_entropy(const at::Tensor& output, const at::Tensor& target) {
  return torch::nn::functional::cross_entropy(output, target);
}

}  // namespace

torch::nn::Sequential build_model(const ModelConfig& config, const InputShape& input, int64_t classes, uint64_t seed,
                                  bool with_lossy_layers, std::shared_ptr<ActivationCollector> collector) {
  if (with_lossy_layers && !config.lossy) {
    throw std::invalid_argument("build_model: lossy layers were asked for but the model config has no 'lossy' section");
  }
  LossySparsifierOptions lossy_options;
  if (config.lossy) lossy_options.eps(config.lossy->eps).a(config.lossy->a);
  // Layers are created in the same order whatever follows them, and the lossy
  // layers draw no random numbers: the same seed gives the same weights.
  at::manual_seed(seed);
  torch::nn::Sequential net;
  // The sparsifier follows the ReLU: its penalty then acts only on the values
  // the next layer would receive, not on negatives ReLU zeroes anyway.
  auto add_hidden = [&](torch::nn::AnyModule layer) {
    net->push_back(std::move(layer));
    net->push_back(torch::nn::ReLU());
    if (with_lossy_layers) {
      LossySparsifier sparsifier(lossy_options);
      sparsifier->set_collector(collector);
      net->push_back(sparsifier);
    }
  };

  if (config.type == "resnet") {
    append_resnet(net, input.channels, input.height, input.width, config.channels, config.blocks, classes);
    if (with_lossy_layers) {
      // The generic insertion, as a user would call it: it fills the Identity
      // slots the stem and the blocks pass their maps through.
      add_sparsifier_layers(*net, lossy_options.eps(),
                            SparsifierInsertionOptions()
                                .layer_kinds({LayerKind::Identity})
                                .a(lossy_options.a())
                                .collector(collector)
                                .require_all(true));
    }
    return net;
  }
  int64_t features = 0;
  if (config.type == "cnn") {
    int64_t channels = input.channels, height = input.height, width = input.width;
    for (int64_t out : config.channels) {
      add_hidden(torch::nn::AnyModule(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out, 3).padding(1))));
      net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
      channels = out;
      height /= 2;
      width /= 2;
    }
    if (height < 1 || width < 1) {
      throw std::invalid_argument(fmt::format("model: {} pooling stages are too many for {}x{} inputs",
                                              config.channels.size(), input.height, input.width));
    }
    features = channels * height * width;
  } else if (config.type == "mlp") {
    features = input.channels * input.height * input.width;
  } else {
    throw std::invalid_argument(fmt::format("model: unknown type '{}' (expected mlp, cnn or resnet)", config.type));
  }
  net->push_back(torch::nn::Flatten());
  for (int64_t width : config.hidden) {
    add_hidden(torch::nn::AnyModule(torch::nn::Linear(features, width)));
    features = width;
  }
  net->push_back(torch::nn::Linear(features, classes));
  return net;
}

SparseLoss make_sparse_loss(const LossyLayersConfig& lossy) {
  return SparseLoss(cross_entropy, make_penalty(lossy.penalty, lossy.l0_b), lossy.penalty_weight);
}

ClassifierModule::ClassifierModule(torch::nn::Sequential net, OptimizerConfig optimizer,
                                   std::shared_ptr<ActivationCollector> collector,
                                   std::optional<SparseLoss> sparse_loss)
    : net_(std::move(net)),
      optimizer_(std::move(optimizer)),
      collector_(std::move(collector)),
      sparse_loss_(std::move(sparse_loss)) {
  if (sparse_loss_ && !collector_) {
    throw std::invalid_argument("ClassifierModule: a SparseLoss needs the collector its layers record into");
  }
}

at::Tensor ClassifierModule::training_step(const Batch& batch) {
  if (collector_) collector_->clear();
  at::Tensor output = net_->forward(batch.data);
  if (sparse_loss_) return (*sparse_loss_)(output, batch.target, collector_->activations());
  return cross_entropy(output, batch.target);
}

std::unique_ptr<torch::optim::Optimizer> ClassifierModule::configure_optimizers() {
  if (optimizer_.type == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        net_->parameters(),
        torch::optim::SGDOptions(optimizer_.lr).momentum(optimizer_.momentum).weight_decay(optimizer_.weight_decay));
  }
  if (optimizer_.type == "adam") {
    return std::make_unique<torch::optim::Adam>(
        net_->parameters(), torch::optim::AdamOptions(optimizer_.lr).weight_decay(optimizer_.weight_decay));
  }
  throw std::invalid_argument(fmt::format("optimizer: unknown type '{}' (expected sgd or adam)", optimizer_.type));
}

std::optional<ValidationOutput> ClassifierModule::validation_step(const Batch& batch) {
  at::Tensor output = net_->forward(batch.data);
  ValidationOutput result;
  result.loss = cross_entropy(output, batch.target);
  result.correct = output.argmax(1).eq(batch.target).sum().item<int64_t>();
  return result;
}

double classification_accuracy(torch::nn::Module& model, const at::Tensor& inputs, const at::Tensor& targets,
                               int64_t batch_size) {
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(&model);
  if (sequential == nullptr) {
    throw std::invalid_argument(fmt::format("classification_accuracy: the model is a {}, not a Sequential",
                                            model.name()));
  }
  const int64_t n = inputs.size(0);
  if (n == 0) return 0.0;
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t length = std::min(batch_size, n - start);
    at::Tensor output = sequential->forward(inputs.narrow(0, start, length));
    correct += output.argmax(1).eq(targets.narrow(0, start, length)).sum().item<int64_t>();
  }
  model.train(was_training);
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace sparsity::demo
