#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/lossy/lossy_sparsifier.h"

namespace sparsity {

class ActivationCollector;

/// The layer types `add_sparsifier_layers` can follow with a sparsifier.
enum class LayerKind {
  Linear,
  Conv1d,
  Conv2d,
  Conv3d,
  ConvTranspose1d,
  ConvTranspose2d,
  ConvTranspose3d,
  Identity,
  Bilinear,
};

/// Every kind above (the seed's `layers_to_be_sparsified`).
std::vector<LayerKind> default_layer_kinds();
/// "Linear", "Conv2d", ... (the LibTorch class name without "Impl").
const char* to_string(LayerKind kind);
/// Parses a `to_string` name; anything else is std::invalid_argument naming it.
LayerKind layer_kind_from_string(const std::string& name);

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
  /// The sharpness of the inserted layers.
  TORCH_ARG(double, a) = 1.0;
  /// Attached to every inserted layer (may be null).
  TORCH_ARG(std::shared_ptr<ActivationCollector>, collector) = nullptr;
};

/// Sequential("0": layer, "sparse": sparsifier) with a plain `forward`, so that
/// it can sit inside another Sequential (LibTorch cannot nest a bare
/// Sequential there: its forward is a template). What `add_sparsifier_layers`
/// inserts, and what to place yourself in a custom module (`sparsified`).
/// The second argument of `forward` is passed to the layer when defined (for
/// Bilinear).
class SparsifiedImpl : public torch::nn::SequentialImpl {
 public:
  SparsifiedImpl() = default;
  /// `sparsifier` must be a LossySparsifier or LossyHardSparsifier module.
  SparsifiedImpl(torch::nn::AnyModule layer, torch::nn::AnyModule sparsifier);

  at::Tensor forward(const at::Tensor& input, const at::Tensor& input2 = {});
  /// A deep copy that stays a SparsifiedImpl.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<c10::Device>& device = c10::nullopt) const override;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(at::Tensor())})
};

/// A `SparsifiedImpl` holder.
TORCH_MODULE(Sparsified);

/// One inserted layer: `name` is the wrapped layer's former path in the model
/// (e.g. "features.0"), now the path of its `Sparsified` wrapper.
struct InsertedSparsifier {
  std::string name;
  LossySparsifier layer;
};

/// Replaces each matching layer that is a child of a `Sequential`,
/// `ModuleList` or `ModuleDict` by Sparsified("0": layer, "sparse":
/// LossySparsifier(eps_start, a)) (a Sequential), recursing through every submodule (custom
/// modules included) to find those containers. Containers are rewired in
/// place, so the modules holding them see the change; parameters of the
/// wrapped layers are the same tensors (an optimizer built before still
/// updates them, but build it after to include the new ε parameters).
///
/// A C++ module's `forward` calls its members directly, so a matching layer
/// held directly by a custom module (not by a container) cannot be rewired:
/// it is left alone and logged as a warning. Place `LossySparsifier` (or
/// `sparsified(layer)`) there yourself. Layers already followed by a
/// sparsifier (inside a `Sparsified` wrapper) are not wrapped twice. `eps_start` must be finite.
///
/// Returns the inserted layers in model order.
std::vector<InsertedSparsifier> add_sparsifier_layers(torch::nn::Module& model, double eps_start,
                                                      const SparsifierInsertionOptions& options);
/// The same with only the layer kinds given.
std::vector<InsertedSparsifier> add_sparsifier_layers(
    torch::nn::Module& model, double eps_start,
    const std::vector<LayerKind>& layer_kinds = default_layer_kinds());

/// Sparsified("0": layer, "sparse": LossySparsifier(options)), to place
/// yourself in a custom module, e.g. `fc1 = register_module("fc1",
/// sparsity::sparsified(torch::nn::Linear(784, 300)));` with
/// `sparsity::Sparsified fc1{nullptr};` and `fc1(x)` in forward.
Sparsified sparsified(torch::nn::AnyModule layer, const LossySparsifierOptions& options = {},
                                 std::shared_ptr<ActivationCollector> collector = nullptr);

/// Every `LossySparsifier` below `model` (any depth, in `modules()` order;
/// not `model` itself, which need not be held by a shared_ptr).
std::vector<LossySparsifier> sparsifier_layers(torch::nn::Module& model);
/// Attaches `collector` (null: detaches) to every LossySparsifier in `model`;
/// returns how many.
int64_t attach_collector(torch::nn::Module& model, const std::shared_ptr<ActivationCollector>& collector);

/// Multiplies the sharpness `a` of every LossySparsifier in `model` by
/// `factor` (> 0 and finite, else std::invalid_argument); returns how many.
int64_t multiply_sharpness(torch::nn::Module& model, double factor);

/// The sharpness schedule: `a` multiplied by `factor` every `period` epochs
/// (the seed: 2 every epoch).
///
/// Example:
/// ```
/// sparsity::SharpnessSchedule schedule(sparsity::SharpnessScheduleOptions().factor(2.0).period(1));
/// for (int64_t epoch = 0; epoch < epochs; ++epoch) { train_one_epoch(); schedule.epoch_end(*net, epoch); }
/// ```
struct SharpnessScheduleOptions {
  TORCH_ARG(double, factor) = 2.0;
  TORCH_ARG(int64_t, period) = 1;
};

class SharpnessSchedule {
 public:
  /// std::invalid_argument for factor <= 0 or not finite, or period < 1.
  explicit SharpnessSchedule(SharpnessScheduleOptions options = {});
  /// Call when 0-based `epoch` ends: multiplies when (epoch + 1) % period == 0.
  /// Returns whether it did.
  bool epoch_end(torch::nn::Module& model, int64_t epoch) const;
  const SharpnessScheduleOptions& options() const { return options_; }

 private:
  SharpnessScheduleOptions options_;
};

/// The seed's hard sparsification: every LossySparsifier that is a child of a
/// Sequential, ModuleList or ModuleDict is replaced by a LossyHardSparsifier
/// with its learned ε; one held directly by a custom module (which cannot be
/// rewired) is switched to hard mode (`set_hard(true)`), with the same effect.
/// Returns the number of layers converted.
int64_t convert_to_hard(torch::nn::Module& model);

}  // namespace sparsity
