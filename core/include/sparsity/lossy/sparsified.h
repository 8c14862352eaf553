#pragma once

#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "sparsity/lossy/lossy_sparsifier.h"

namespace sparsity {

class ActivationCollector;

/// Sequential("0": layer, "sparse": sparsifier) with a plain `forward`, so that
/// it can sit inside another Sequential (LibTorch cannot nest a bare
/// Sequential there: its forward is a template). What `add_sparsifier_layers`
/// inserts, and what to place yourself in a custom module (`sparsified`).
/// The second argument of `forward` is passed to the layer when defined (for
/// Bilinear).
class SparsifiedImpl : public torch::nn::SequentialImpl {
 public:
  SparsifiedImpl() = default;
  /// `sparsifier` must be a LossySparsifier or LossyHardSparsifier module,
  /// else std::invalid_argument naming the module given.
  SparsifiedImpl(torch::nn::AnyModule layer, torch::nn::AnyModule sparsifier);

  /// The sparsifier applied to layer(input), or to layer(input, input2) when
  /// `input2` is defined.
  at::Tensor forward(const at::Tensor& input, const at::Tensor& input2 = {});
  /// A deep copy that stays a SparsifiedImpl.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<c10::Device>& device = c10::nullopt) const override;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(at::Tensor())})
};

/// A `SparsifiedImpl` holder.
TORCH_MODULE(Sparsified);

/// Sparsified("0": layer, "sparse": LossySparsifier(options)) with `collector`
/// (may be null) attached to the sparsifier, to place yourself in a custom
/// module, which `add_sparsifier_layers` cannot rewire.
///
/// Example:
/// ```
/// auto block = sparsity::sparsified(torch::nn::AnyModule(torch::nn::Linear(784, 300)),
///                                   sparsity::LossySparsifierOptions().eps(0.01).a(5.0));
/// ```
Sparsified sparsified(torch::nn::AnyModule layer, const LossySparsifierOptions& options = {},
                      std::shared_ptr<ActivationCollector> collector = nullptr);

/// The same for a module holder such as `torch::nn::Linear` (LibTorch's
/// AnyModule constructor is explicit, so a holder does not convert to the
/// overload above by itself).
///
/// Example, in a custom module:
/// ```
/// struct Net : torch::nn::Module {
///   Net() { fc1 = register_module("fc1", sparsity::sparsified(torch::nn::Linear(784, 300))); }
///   torch::Tensor forward(const torch::Tensor& x) { return fc1(x); }
///   sparsity::Sparsified fc1{nullptr};
/// };
/// ```
template <typename ModuleType>
Sparsified sparsified(const torch::nn::ModuleHolder<ModuleType>& layer, const LossySparsifierOptions& options = {},
                      std::shared_ptr<ActivationCollector> collector = nullptr) {
  return sparsified(torch::nn::AnyModule(layer), options, std::move(collector));
}

}  // namespace sparsity
