#pragma once

#include <ATen/core/Tensor.h>
#include <torch/data/example.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

/// One batch: inputs in `data`, targets in `target`.
using Batch = torch::data::Example<>;

/// What `TrainingModule::validation_step` reports for one batch.
struct ValidationOutput {
  /// The batch's mean loss (a scalar tensor).
  at::Tensor loss;
  /// Correctly classified examples in the batch, when accuracy applies.
  std::optional<int64_t> correct;
};

/// The model and the steps of training it: the C++ counterpart of Lightning's
/// LightningModule. The Trainer calls it; callbacks read `model()`.
///
/// Example:
/// ```
/// struct Classifier : sparsity::TrainingModule {
///   torch::nn::Sequential net{torch::nn::Linear(784, 128), torch::nn::ReLU(), torch::nn::Linear(128, 10)};
///   std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
///   torch::Tensor training_step(const sparsity::Batch& b) override {
///     return torch::cross_entropy_loss(net->forward(b.data), b.target);
///   }
///   std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
///     return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.1));
///   }
/// };
/// ```
class TrainingModule {
 public:
  virtual ~TrainingModule() = default;

  /// The model being trained (the same object on every call).
  virtual std::shared_ptr<torch::nn::Module> model() = 0;
  /// The loss of one training batch (a scalar tensor the Trainer backpropagates).
  virtual at::Tensor training_step(const Batch& batch) = 0;
  /// The optimizer over `model()`'s parameters; called once per `fit`.
  virtual std::unique_ptr<torch::optim::Optimizer> configure_optimizers() = 0;
  /// Loss (and optionally the count of correct predictions) of one validation
  /// batch, run in eval mode under no-grad. The default has no validation.
  virtual std::optional<ValidationOutput> validation_step(const Batch& /*batch*/) { return std::nullopt; }
};

}  // namespace sparsity
