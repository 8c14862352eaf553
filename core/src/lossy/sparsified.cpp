#include "sparsity/lossy/sparsified.h"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace sparsity {

using torch::nn::AnyModule;
using torch::nn::Module;

SparsifiedImpl::SparsifiedImpl(AnyModule layer, AnyModule sparsifier) {
  const auto p = sparsifier.ptr();
  if (!std::dynamic_pointer_cast<LossySparsifierImpl>(p) && !std::dynamic_pointer_cast<LossyHardSparsifierImpl>(p)) {
    throw std::invalid_argument(fmt::format(
        "Sparsified: the second module must be a LossySparsifier or LossyHardSparsifier, got {}", p->name()));
  }
  push_back("0", std::move(layer));
  push_back("sparse", std::move(sparsifier));
}

at::Tensor SparsifiedImpl::forward(const at::Tensor& input, const at::Tensor& input2) {
  auto it = begin();
  at::Tensor h = input2.defined() ? it->any_forward(input, input2).get<at::Tensor>()
                                  : it->any_forward(input).get<at::Tensor>();
  for (++it; it != end(); ++it) h = it->any_forward(h).get<at::Tensor>();
  return h;
}

std::shared_ptr<Module> SparsifiedImpl::clone(const c10::optional<c10::Device>& device) const {
  auto copy = std::make_shared<SparsifiedImpl>();
  const auto names = named_children();
  size_t i = 0;
  for (const auto& any : *this) copy->push_back(names[i++].key(), any.clone(device));
  if (!is_training()) copy->eval();
  return copy;
}

Sparsified sparsified(AnyModule layer, const LossySparsifierOptions& options,
                      std::shared_ptr<ActivationCollector> collector) {
  LossySparsifier sparse(options);
  sparse->set_collector(std::move(collector));
  return Sparsified(std::move(layer), AnyModule(sparse));
}

}  // namespace sparsity
