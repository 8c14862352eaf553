#pragma once

#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <iosfwd>
#include <memory>

#include "sparsity/lossy/activation_site.h"
#include "sparsity/lossy/lossy_sparsifier.h"

namespace sparsity {

class ActivationCollector;

/// Sequential("0": layer, "sparse": sparsifier) with a plain `forward`, so that
/// it can sit inside another Sequential (LibTorch cannot nest a bare
/// Sequential there: its forward is a template). What `add_sparsifier_layers`
/// inserts, and what to place yourself in a custom module: either with its
/// sparsifier (`sparsified`) or as an *insertable slot* holding only the layer
/// (`insertable`), which `add_sparsifier_layers` fills in place later; until
/// then it computes exactly what its layer does.
/// The second argument of `forward` is passed to the layer when defined (for
/// Bilinear). A slot is an `ActivationSite`: an `ActivationMeter` counts its
/// outputs. It prints as what it is:
///
///     sparsity::Sparsified(
///       (0): torch::nn::Linear(in_features=784, out_features=300, bias=true)
///       (sparse): sparsity::LossySparsifier(eps=0.01, a=1)
///     )
class SparsifiedImpl : public torch::nn::SequentialImpl, public ActivationSite {
 public:
  SparsifiedImpl() = default;
  /// An insertable slot: `layer` alone, no sparsifier yet.
  explicit SparsifiedImpl(torch::nn::AnyModule layer);
  /// `sparsifier` must be a LossySparsifier or LossyHardSparsifier module,
  /// else std::invalid_argument naming the module given.
  SparsifiedImpl(torch::nn::AnyModule layer, torch::nn::AnyModule sparsifier);

  /// The sparsifier applied to layer(input), or to layer(input, input2) when
  /// `input2` is defined (just the layer's output in an empty slot).
  at::Tensor forward(const at::Tensor& input, const at::Tensor& input2 = {});
  /// The wrapped layer.
  std::shared_ptr<torch::nn::Module> layer() const;
  /// The sparsifier after the layer, or null in an empty slot.
  std::shared_ptr<torch::nn::Module> sparsifier() const;
  /// Puts `sparsifier` (checked as in the constructor) after the layer,
  /// replacing the one there; the slot keeps its identity, so the module
  /// holding it sees the change.
  void set_sparsifier(torch::nn::AnyModule sparsifier);
  /// A deep copy that stays a SparsifiedImpl.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<c10::Device>& device = c10::nullopt) const override;
  void pretty_print(std::ostream& stream) const override;

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

/// An insertable slot for a custom module's member: `layer` alone, computing
/// exactly what it does, until `add_sparsifier_layers` puts a sparsifier after
/// it in place (a C++ module's `forward` calls its members directly, so
/// insertion cannot replace a bare layer member; it can fill a slot). Declare
/// the member as `sparsity::Sparsified`; the layer's parameters are named
/// "<member>.0.weight", ...
///
/// Example, a residual block whose convolutions can get sparsifiers:
/// ```
/// struct Block : torch::nn::Module {
///   Block() {
///     conv1 = register_module("conv1", sparsity::insertable(torch::nn::Conv2d(
///         torch::nn::Conv2dOptions(8, 8, 3).padding(1))));
///     conv2 = register_module("conv2", sparsity::insertable(torch::nn::Conv2d(
///         torch::nn::Conv2dOptions(8, 8, 3).padding(1))));
///   }
///   torch::Tensor forward(const torch::Tensor& x) { return torch::relu(x + conv2(torch::relu(conv1(x)))); }
///   sparsity::Sparsified conv1{nullptr}, conv2{nullptr};
/// };
/// // later: sparsity::add_sparsifier_layers(block, /*eps_start=*/0.01);  fills conv1 and conv2
/// ```
Sparsified insertable(torch::nn::AnyModule layer);

/// The same for a module holder such as `torch::nn::Conv2d`.
template <typename ModuleType>
Sparsified insertable(const torch::nn::ModuleHolder<ModuleType>& layer) {
  return insertable(torch::nn::AnyModule(layer));
}

}  // namespace sparsity
