#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace sparsity {

/// The exact zeros in the input of one Linear/Conv layer over a data set.
struct LayerActivationSparsity {
  /// The layer's path in the model, e.g. "2.0".
  std::string name;
  int64_t zeros = 0;
  int64_t elements = 0;
  /// zeros / elements (0 when empty).
  double fraction() const;
};

/// Per layer and in total: what a sparse kernel or accelerator could skip.
struct ActivationSparsityReport {
  std::vector<LayerActivationSparsity> layers;
  int64_t zeros = 0;
  int64_t elements = 0;
  /// Σ zeros / Σ elements over the layers (0 when empty).
  double total() const;
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
/// whole, and layers inside custom modules are not seen. A model that is not a
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

}  // namespace sparsity
