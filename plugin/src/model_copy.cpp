#include "sparsity/plugin/model_copy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <stdexcept>

namespace sparsity {

namespace {

// Copies every parameter and buffer of `from` into the same-named one of `to`.
void copy_tensors(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto copy_all = [&](const torch::OrderedDict<std::string, at::Tensor>& source,
                      torch::OrderedDict<std::string, at::Tensor> target, const char* kind) {
    if (source.size() != target.size()) {
      throw std::invalid_argument(fmt::format(
          "model_factory built a model with {} {}s, the trained model has {}", target.size(), kind, source.size()));
    }
    for (const auto& item : source) {
      at::Tensor* destination = target.find(item.key());
      if (destination == nullptr) {
        throw std::invalid_argument(
            fmt::format("model_factory built a model without the {} '{}'", kind, item.key()));
      }
      if (!destination->sizes().equals(item.value().sizes())) {
        throw std::invalid_argument(fmt::format("model_factory built {} '{}' of shape [{}], the trained one is [{}]",
                                                kind, item.key(), fmt::join(destination->sizes(), ", "),
                                                fmt::join(item.value().sizes(), ", ")));
      }
      destination->set_data(item.value().detach().clone());
    }
  };
  copy_all(from.named_parameters(), to.named_parameters(), "parameter");
  copy_all(from.named_buffers(), to.named_buffers(), "buffer");
}

}  // namespace

std::shared_ptr<torch::nn::Module> deep_copy(const torch::nn::Module& model, const ModelFactory& factory) {
  if (!factory) {
    try {
      return model.clone();
    } catch (const c10::Error& e) {
      throw std::invalid_argument(fmt::format(
          "cannot deep-copy the model '{}': it is not cloneable (derive it from torch::nn::Cloneable<{}> and "
          "implement reset(), or use torch::nn::Sequential) and no model_factory was given (set the "
          "callback's model_factory option to a function that builds a fresh model of the same architecture)",
          model.name(), model.name()));
    }
  }
  std::shared_ptr<torch::nn::Module> copy = factory();
  if (!copy) throw std::invalid_argument("model_factory returned a null model");
  copy_tensors(model, *copy);
  copy->train(model.is_training());
  return copy;
}

}  // namespace sparsity
