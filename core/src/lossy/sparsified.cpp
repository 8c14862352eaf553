#include "sparsity/lossy/sparsified.h"

#include <fmt/format.h>

#include <ostream>
#include <stdexcept>
#include <utility>

namespace sparsity {

using torch::nn::AnyModule;
using torch::nn::Module;

namespace {

void check_sparsifier(const AnyModule& sparsifier) {
  const auto p = sparsifier.ptr();
  if (!std::dynamic_pointer_cast<LossySparsifierImpl>(p) && !std::dynamic_pointer_cast<LossyHardSparsifierImpl>(p)) {
    throw std::invalid_argument(fmt::format(
        "Sparsified: the second module must be a LossySparsifier or LossyHardSparsifier, got {}", p->name()));
  }
}

}  // namespace

SparsifiedImpl::SparsifiedImpl(AnyModule layer) { push_back("0", std::move(layer)); }

SparsifiedImpl::SparsifiedImpl(AnyModule layer, AnyModule sparsifier) {
  check_sparsifier(sparsifier);
  push_back("0", std::move(layer));
  push_back("sparse", std::move(sparsifier));
}

at::Tensor SparsifiedImpl::forward(const at::Tensor& input, const at::Tensor& input2) {
  auto it = begin();
  at::Tensor h = input2.defined() ? it->any_forward(input, input2).get<at::Tensor>()
                                  : it->any_forward(input).get<at::Tensor>();
  for (++it; it != end(); ++it) h = it->any_forward(h).get<at::Tensor>();
  report_output(h);
  return h;
}

std::shared_ptr<Module> SparsifiedImpl::layer() const { return is_empty() ? nullptr : ptr(0); }

std::shared_ptr<Module> SparsifiedImpl::sparsifier() const { return size() < 2 ? nullptr : ptr(1); }

void SparsifiedImpl::set_sparsifier(AnyModule sparsifier) {
  check_sparsifier(sparsifier);
  if (is_empty()) throw std::logic_error("Sparsified::set_sparsifier: the slot holds no layer");
  const bool training = is_training();
  torch::nn::SequentialImpl fresh;
  fresh.push_back("0", *begin());
  fresh.push_back("sparse", std::move(sparsifier));
  // Module is copyable: this object, which its holders point to, now holds both.
  static_cast<torch::nn::SequentialImpl&>(*this) = fresh;
  if (!training) train(false);
}

std::shared_ptr<Module> SparsifiedImpl::clone(const c10::optional<c10::Device>& device) const {
  auto copy = std::make_shared<SparsifiedImpl>();
  const auto names = named_children();
  size_t i = 0;
  for (const auto& any : *this) copy->push_back(names[i++].key(), any.clone(device));
  if (!is_training()) copy->eval();
  return copy;
}

void SparsifiedImpl::pretty_print(std::ostream& stream) const { stream << "sparsity::Sparsified"; }

Sparsified sparsified(AnyModule layer, const LossySparsifierOptions& options,
                      std::shared_ptr<ActivationCollector> collector) {
  LossySparsifier sparse(options);
  sparse->set_collector(std::move(collector));
  return Sparsified(std::move(layer), AnyModule(sparse));
}

Sparsified insertable(AnyModule layer) { return Sparsified(std::move(layer)); }

}  // namespace sparsity
