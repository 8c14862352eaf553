#include "sparsity/data_sparsifier/mask_guard.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <stdexcept>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

MaskGuard::MaskGuard(torch::nn::Module& model, BaseDataSparsifier& sparsifier, MaskGuardOptions options)
    : sparsifier_(sparsifier) {
  std::vector<std::string> selected;
  if (options.attach()) {
    selected = attach_parameters(model, sparsifier, options.parameters());
  } else {
    for (const auto& item : model.named_parameters())
      if (options.parameters().selects(item.key())) selected.push_back(item.key());
    if (selected.empty()) {
      throw std::invalid_argument(fmt::format("MaskGuard: no parameter of the model is selected (include: [{}], exclude: [{}])",
                                              fmt::join(options.parameters().include, ", "),
                                              fmt::join(options.parameters().exclude, ", ")));
    }
  }
  guard(model, selected);
}

MaskGuard::MaskGuard(torch::nn::Module& model, BaseDataSparsifier& sparsifier,
                     const std::vector<std::string>& parameter_names)
    : sparsifier_(sparsifier) {
  guard(model, parameter_names);
}

void MaskGuard::guard(torch::nn::Module& model, const std::vector<std::string>& parameter_names) {
  const auto parameters = model.named_parameters();
  if (parameter_names.empty()) throw std::invalid_argument("MaskGuard: no parameter names given: nothing to guard");
  for (const auto& dotted : parameter_names) {
    const at::Tensor* parameter = parameters.find(dotted);
    if (parameter == nullptr) {
      throw std::invalid_argument(fmt::format("MaskGuard: the model has no parameter '{}' (its parameters: {})", dotted,
                                              fmt::join(parameters.keys(), ", ")));
    }
    if (!sparsifier_.contains(sparsifier_name(dotted))) {
      throw std::invalid_argument(fmt::format(
          "MaskGuard: parameter '{}' is not registered with the sparsifier as '{}' (attach it first, or build the "
          "guard with MaskGuardOptions().attach(true))",
          dotted, sparsifier_name(dotted)));
    }
  }
  for (const auto& dotted : parameter_names) {
    at::Tensor parameter = *parameters.find(dotted);
    guarded_.push_back(Guarded{dotted, parameter, at::ones_like(parameter, parameter.options().requires_grad(false))});
  }
  // Hooks hold the masks, which update_masks rewrites in place.
  for (auto& g : guarded_) {
    if (!g.parameter.requires_grad()) continue;  // frozen: no gradient to mask
    const at::Tensor mask = g.mask;
    g.hook = g.parameter.register_hook([mask](const at::Tensor& grad) { return grad * mask; });
    g.hooked = true;
  }
  names_ = parameter_names;
  update_masks();
}

MaskGuard::~MaskGuard() { remove(); }

void MaskGuard::remove() {
  for (auto& g : guarded_) {
    if (g.hooked) g.parameter.remove_hook(g.hook);
    g.hooked = false;
  }
}

void MaskGuard::update_masks() {
  at::NoGradGuard no_grad;
  for (auto& g : guarded_) {
    const at::Tensor source = sparsifier_.get_mask(sparsifier_name(g.name));
    if (!source.sizes().equals(g.mask.sizes())) {
      throw std::invalid_argument(fmt::format("MaskGuard: the sparsifier's mask of '{}' has shape [{}], the parameter [{}]",
                                              g.name, fmt::join(source.sizes(), ", "), fmt::join(g.mask.sizes(), ", ")));
    }
    g.mask.copy_(source);
    g.parameter.mul_(g.mask);
  }
}

void MaskGuard::apply() {
  at::NoGradGuard no_grad;
  for (auto& g : guarded_) g.parameter.mul_(g.mask);
}

const at::Tensor& MaskGuard::mask(const std::string& parameter_name) const {
  const auto found =
      std::find_if(guarded_.begin(), guarded_.end(), [&](const Guarded& g) { return g.name == parameter_name; });
  if (found == guarded_.end()) {
    throw std::invalid_argument(
        fmt::format("MaskGuard: '{}' is not a guarded parameter (guarded: {})", parameter_name, fmt::join(names_, ", ")));
  }
  return found->mask;
}

}  // namespace sparsity
