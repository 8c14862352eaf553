#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace sparsity {

/// The zeros in the activations measured at one place of a model over a data
/// set: the input of one Linear/Conv layer (`measure_activation_sparsity`) or
/// the output of one `ActivationSite` (`ActivationMeter`).
struct LayerActivationSparsity {
  /// The place's path in the model, e.g. "2.0" or "layer1.0.conv1".
  std::string name;
  /// What was measured: "input" (of a layer, `measure_activation_sparsity`),
  /// or a site's output: "soft" (a LossySparsifier), "hard" (a
  /// LossyHardSparsifier or a soft layer in hard mode) or "dense" (a
  /// `Sparsified` slot that holds no sparsifier).
  std::string kind;
  /// Elements exactly 0 (|x| == 0, so -0.0 too).
  int64_t zeros = 0;
  /// Elements with |x| <= the report's `near_zero_tolerance`, zeros included.
  int64_t near_zero = 0;
  int64_t elements = 0;
  /// Bytes of these activations stored dense (elements x element size) and
  /// sparse: per example, a bitmask of its map (one bit per element, rounded
  /// up to whole bytes) plus its nonzero values.
  int64_t dense_bytes = 0;
  int64_t sparse_bytes = 0;
  /// zeros / elements (0 when empty).
  double fraction() const;
  /// near_zero / elements (0 when empty).
  double near_zero_fraction() const;
};

/// Per layer and in total: what a sparse kernel or accelerator could skip.
struct ActivationSparsityReport {
  std::vector<LayerActivationSparsity> layers;
  /// Sums over the layers.
  int64_t zeros = 0;
  int64_t near_zero = 0;
  int64_t elements = 0;
  int64_t dense_bytes = 0;
  int64_t sparse_bytes = 0;
  /// The tolerance of `near_zero`.
  double near_zero_tolerance = 0.0;
  /// Σ zeros / Σ elements over the layers (0 when empty).
  double total() const;
  /// Σ near_zero / Σ elements (0 when empty).
  double total_near_zero() const;
  /// One line per layer and a total line, for logs.
  std::string to_string() const;
};

/// The fraction of exact zeros in the activations that each Linear, Conv or
/// ConvTranspose layer after the first receives, measured on `inputs` in
/// batches of `batch_size`, in eval mode and without gradients (the model's
/// mode is restored). Works for dense and sparsified models alike, so the two
/// can be compared.
///
/// LibTorch C++ has no forward pre-hooks, so the model is run child by child:
/// `model` must be a Sequential, whose nested Sequentials (e.g. the wrappers
/// of `add_sparsifier_layers`) are descended into; any other child runs as a
/// whole, and layers inside custom modules are not seen (measure those with
/// `measure_activation_sparsity_at_sites`). A model that is not a
/// Sequential is std::invalid_argument. With `soft_as_hard` (the default) soft
/// `LossySparsifier` layers are evaluated as their hard threshold, i.e. the
/// sparsity after `convert_to_hard`; otherwise as they are (whose outputs are
/// rarely exactly 0).
///
/// Example:
/// ```
/// auto report = sparsity::measure_activation_sparsity(*net, test_images, 256);
/// std::cout << report.to_string();   // per layer, then "total: 63.2%"
/// ```
ActivationSparsityReport measure_activation_sparsity(torch::nn::Module& model, const at::Tensor& inputs,
                                                     int64_t batch_size = 256, bool soft_as_hard = true);

/// Options for `measure_activation_sparsity_at_sites`.
///
/// Example:
/// ```
/// auto options = sparsity::SiteMeasurementOptions().batch_size(500).near_zero(1e-2).soft_as_hard(true);
/// ```
struct SiteMeasurementOptions {
  /// Examples per forward pass; >= 1.
  TORCH_ARG(int64_t, batch_size) = 256;
  /// |x| <= near_zero counts as near zero; >= 0 and finite.
  TORCH_ARG(double, near_zero) = 1e-3;
  /// Evaluate soft `LossySparsifier` layers as their hard threshold (the
  /// model after `convert_to_hard`); by default they run as they are, whose
  /// outputs are rarely exactly 0 but often near it.
  TORCH_ARG(bool, soft_as_hard) = false;
};

/// Activation sparsity for a model of any shape: runs `forward` on `inputs` in
/// batches, in eval mode and without gradients (the mode of `model` and of its
/// soft layers is restored, also on errors), with an `ActivationMeter`
/// attached, and returns its report: per `ActivationSite` (each `Sparsified`
/// slot, and each sparsifier layer outside one) the zeros, near zeros and
/// bytes of its outputs. `forward` is the model's own forward (LibTorch
/// modules have no common virtual one). Invalid options are
/// std::invalid_argument naming the value.
///
/// Example:
/// ```
/// auto report = sparsity::measure_activation_sparsity_at_sites(
///     *net, [&](const at::Tensor& x) { return net->forward(x); }, test_images);
/// std::cout << report.to_string();   // per slot, then the total
/// ```
ActivationSparsityReport measure_activation_sparsity_at_sites(
    torch::nn::Module& model, const std::function<at::Tensor(const at::Tensor&)>& forward, const at::Tensor& inputs,
    const SiteMeasurementOptions& options = {});

}  // namespace sparsity
