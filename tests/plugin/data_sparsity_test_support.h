#pragma once

// Models and data for the data-sparsity callback tests.

#include <torch/torch.h>

#include "../core/test_support.h"
#include "sparsity/plugin.h"

namespace sparsity::testing {

/// The reference tests' DummyModel: bias-free Linear layers with ReLUs between.
inline torch::nn::Sequential dummy_model(int64_t in, std::vector<int64_t> outs) {
  torch::nn::Sequential net;
  for (size_t i = 0; i < outs.size(); ++i) {
    net->push_back(torch::nn::Linear(torch::nn::LinearOptions(in, outs[i]).bias(false)));
    if (i + 1 < outs.size()) net->push_back(torch::nn::ReLU());
    in = outs[i];
  }
  return net;
}

/// Two classes of Gaussian points in `dims` dimensions, separable by a linear
/// boundary: a problem a small MLP learns in a few epochs.
inline std::pair<at::Tensor, at::Tensor> blobs(int64_t n, int64_t dims, uint64_t seed) {
  torch::manual_seed(seed);
  at::Tensor labels = torch::randint(0, 2, {n}, torch::kLong);
  at::Tensor centers = torch::randn({2, dims}) * 2.0;
  at::Tensor points = centers.index_select(0, labels) + torch::randn({n, dims});
  return {points, labels};
}

/// A classifier over a Sequential model, with SGD (momentum) and validation accuracy.
class SequentialClassifier : public TrainingModule {
 public:
  explicit SequentialClassifier(torch::nn::Sequential net, double lr = 0.05) : net_(std::move(net)), lr_(lr) {}

  std::shared_ptr<torch::nn::Module> model() override { return net_.ptr(); }
  at::Tensor training_step(const Batch& batch) override {
    return torch::nn::functional::cross_entropy(net_->forward(batch.data), batch.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    return std::make_unique<torch::optim::SGD>(net_->parameters(), torch::optim::SGDOptions(lr_).momentum(0.9));
  }
  std::optional<ValidationOutput> validation_step(const Batch& batch) override {
    const at::Tensor logits = net_->forward(batch.data);
    return ValidationOutput{torch::nn::functional::cross_entropy(logits, batch.target),
                            logits.argmax(1).eq(batch.target).sum().item<int64_t>()};
  }
  torch::nn::Sequential& net() { return net_; }

 private:
  torch::nn::Sequential net_;
  double lr_;
};

/// A model that is not Cloneable: deep copies need a model factory.
struct PlainMlpImpl : torch::nn::Module {
  PlainMlpImpl() : fc1(register_module("fc1", torch::nn::Linear(8, 16))), fc2(register_module("fc2", torch::nn::Linear(16, 2))) {}
  at::Tensor forward(const at::Tensor& x) { return fc2(torch::relu(fc1(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(PlainMlp);

class PlainMlpClassifier : public TrainingModule {
 public:
  std::shared_ptr<torch::nn::Module> model() override { return net_.ptr(); }
  at::Tensor training_step(const Batch& batch) override {
    return torch::nn::functional::cross_entropy(net_->forward(batch.data), batch.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    return std::make_unique<torch::optim::SGD>(net_->parameters(), torch::optim::SGDOptions(0.05));
  }
  PlainMlp net_;
};

// A small classification run through Trainer::fit.
struct TrainingRun {
  std::shared_ptr<SequentialClassifier> module;
  std::unique_ptr<DataSource> train, validation;
  Trainer trainer;

  TrainingRun(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks, uint64_t seed = 7)
      : trainer(options.progress(false), std::move(callbacks)) {
    auto [x, y] = blobs(512, 16, 1234);
    train = std::make_unique<DataSource>(x.slice(0, 0, 384), y.slice(0, 0, 384), 32, true, seed);
    validation = std::make_unique<DataSource>(x.slice(0, 384), y.slice(0, 384), 64, false);
    torch::manual_seed(seed);
    module = std::make_shared<SequentialClassifier>(dummy_model(16, {32, 32, 2}));
  }
  void fit() { trainer.fit(*module, *train, validation.get()); }
};

}  // namespace sparsity::testing
