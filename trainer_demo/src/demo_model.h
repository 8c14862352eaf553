#pragma once
// The models trainer_demo trains: an MLP, a small CNN or a ResNet as a Sequential, with
// or without lossy sparsifier layers, and the TrainingModule that trains them.

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "run_config.h"
#include "sparsity/lossy/activation_collector.h"
#include "sparsity/lossy/sparse_loss.h"
#include "sparsity/plugin/training_module.h"

namespace sparsity::demo {

/// The shape of one input example, [channels, height, width].
struct InputShape {
  int64_t channels = 1, height = 28, width = 28;
};

/// Builds the model `config` describes for `classes` outputs, its layers
/// initialized from `seed` (the same seed gives the same initial weights with
/// or without lossy layers). With `with_lossy_layers` (needs `config.lossy`)
/// the ReLU after every hidden Linear and Conv2d layer is followed by a
/// LossySparsifier recording into `collector`; the output layer never is.
///
/// MLP: Flatten, [Linear(h), ReLU] per hidden width, Linear(classes).
/// CNN: [Conv2d(c, 3x3, padding 1), ReLU, MaxPool2d(2)] per channel count,
/// Flatten, [Linear(h), ReLU] per hidden width, Linear(classes).
/// ResNet (`append_resnet`): a stem, `blocks` BasicBlocks per width in
/// `channels`, Flatten, Linear(classes); the maps leaving the stem and each
/// block's two ReLUs pass through insertable Identity slots, which
/// `with_lossy_layers` fills with a LossySparsifier through
/// `add_sparsifier_layers` (`hidden` is not used).
torch::nn::Sequential build_model(const ModelConfig& config, const InputShape& input, int64_t classes, uint64_t seed,
                                  bool with_lossy_layers = false,
                                  std::shared_ptr<ActivationCollector> collector = nullptr);

/// A classifier's training: cross-entropy (plus the lossy layers' sparsity
/// term when a SparseLoss is given), the configured optimizer, validation loss
/// and accuracy.
class ClassifierModule : public TrainingModule {
 public:
  ClassifierModule(torch::nn::Sequential net, OptimizerConfig optimizer,
                   std::shared_ptr<ActivationCollector> collector = nullptr,
                   std::optional<SparseLoss> sparse_loss = std::nullopt);

  std::shared_ptr<torch::nn::Module> model() override { return net_.ptr(); }
  const torch::nn::Sequential& net() const { return net_; }
  at::Tensor training_step(const Batch& batch) override;
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override;
  std::optional<ValidationOutput> validation_step(const Batch& batch) override;

 private:
  torch::nn::Sequential net_;
  OptimizerConfig optimizer_;
  std::shared_ptr<ActivationCollector> collector_;
  std::optional<SparseLoss> sparse_loss_;
};

/// The SparseLoss of `lossy` (cross-entropy + penalty_weight · penalty).
SparseLoss make_sparse_loss(const LossyLayersConfig& lossy);

/// The fraction of `inputs` whose argmax of `model`'s output is the target,
/// in eval mode without gradients, in batches (the model's mode is restored).
/// `model` must be a Sequential (std::invalid_argument otherwise).
double classification_accuracy(torch::nn::Module& model, const at::Tensor& inputs, const at::Tensor& targets,
                               int64_t batch_size = 1000);

}  // namespace sparsity::demo
