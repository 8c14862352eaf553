#include "sparsity/lossy/sparsifier_layers.h"

#include <torch/nn/module.h>

namespace sparsity {

std::vector<LossySparsifier> sparsifier_layers(torch::nn::Module& model) {
  std::vector<LossySparsifier> layers;
  // include_self=false: the model need not be held by a shared_ptr.
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (auto p = std::dynamic_pointer_cast<LossySparsifierImpl>(m)) layers.emplace_back(p);
  }
  return layers;
}

int64_t attach_collector(torch::nn::Module& model, const std::shared_ptr<ActivationCollector>& collector) {
  int64_t n = 0;
  for (auto& layer : sparsifier_layers(model)) {
    layer->set_collector(collector);
    ++n;
  }
  return n;
}

}  // namespace sparsity
