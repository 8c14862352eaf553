#pragma once
// Inserting lossy sparsifier layers into a model after the layers of chosen
// kinds. Including this header also gives everything else about the layers in
// a model (they were once declared here): the layer kinds, the `Sparsified`
// wrapper, finding the layers, the sharpness schedule and the hard conversion.

#include <torch/arg.h>

#include <memory>
#include <string>
#include <vector>

#include "sparsity/lossy/hard_conversion.h"
#include "sparsity/lossy/layer_kind.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/lossy/sharpness_schedule.h"
#include "sparsity/lossy/sparsified.h"
#include "sparsity/lossy/sparsifier_layers.h"

namespace sparsity {

class ActivationCollector;

/// Options for `add_sparsifier_layers`.
///
/// Example:
/// ```
/// auto collector = std::make_shared<sparsity::ActivationCollector>();
/// auto layers = sparsity::add_sparsifier_layers(*net, /*eps_start=*/0.01,
///     sparsity::SparsifierInsertionOptions()
///         .layer_kinds({sparsity::LayerKind::Linear})
///         .a(1.0)
///         .collector(collector));
/// ```
struct SparsifierInsertionOptions {
  /// Which layers get a sparsifier after them.
  TORCH_ARG(std::vector<LayerKind>, layer_kinds) = default_layer_kinds();
  /// The sharpness of the inserted layers; > 0 and finite.
  TORCH_ARG(double, a) = 1.0;
  /// Attached to every inserted layer (may be null).
  TORCH_ARG(std::shared_ptr<ActivationCollector>, collector) = nullptr;
  /// A matching layer that cannot be reached (held directly by a custom
  /// module) is an error naming every such layer, raised before anything is
  /// changed, instead of a warning.
  TORCH_ARG(bool, require_all) = false;
};

/// One inserted layer: `name` is the wrapped layer's former path in the model
/// (e.g. "features.0"), now the path of its `Sparsified` wrapper.
struct InsertedSparsifier {
  std::string name;
  LossySparsifier layer;
};

/// Replaces each matching layer that is a child of a `Sequential`,
/// `ModuleList` or `ModuleDict` by Sparsified("0": layer, "sparse":
/// LossySparsifier(eps_start, a)) (a Sequential), and fills each empty
/// `insertable` slot whose layer matches with LossySparsifier(eps_start, a),
/// recursing through every submodule (custom modules such as residual blocks
/// included) to find those containers and slots. Containers are rewired in
/// place, so the modules holding them see the change; parameters of the
/// wrapped layers are the same tensors (an optimizer built before still
/// updates them, but build it after to include the new ε parameters). Each
/// inserted layer takes the train/eval mode of the layer it follows.
///
/// A C++ module's `forward` calls its members directly, so a matching layer
/// held directly by a custom module (not by a container or a slot) cannot be
/// rewired: it is left alone and logged as a warning naming every such layer
/// (an error with `require_all`). Declare such members as `insertable(layer)`
/// slots, or place `sparsified(layer)` there yourself. Layers already followed by a
/// sparsifier (inside a `Sparsified` wrapper) are not wrapped twice.
/// `eps_start` must be finite and `options.a()` > 0 and finite, else
/// std::invalid_argument naming the value, before anything is changed.
///
/// Returns the inserted layers in model order.
///
/// Example:
/// ```
/// torch::nn::Sequential net(torch::nn::Linear(784, 300), torch::nn::ReLU(), torch::nn::Linear(300, 10));
/// auto inserted = sparsity::add_sparsifier_layers(*net, /*eps_start=*/0.01);  // names "0" and "2"
/// ```
std::vector<InsertedSparsifier> add_sparsifier_layers(torch::nn::Module& model, double eps_start,
                                                      const SparsifierInsertionOptions& options);
/// The same with only the layer kinds given (and the default sharpness, no
/// collector).
std::vector<InsertedSparsifier> add_sparsifier_layers(
    torch::nn::Module& model, double eps_start,
    const std::vector<LayerKind>& layer_kinds = default_layer_kinds());

}  // namespace sparsity
