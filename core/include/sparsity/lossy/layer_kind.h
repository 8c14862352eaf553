#pragma once

#include <string>
#include <vector>

namespace sparsity {

/// The layer types `add_sparsifier_layers` can follow with a sparsifier, each
/// named after its LibTorch module (`torch::nn::Linear`, ...).
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

/// Every kind above, in declaration order (the seed's `layers_to_be_sparsified`).
std::vector<LayerKind> default_layer_kinds();

/// "Linear", "Conv2d", ... (the LibTorch class name without "Impl").
///
/// Example: `sparsity::to_string(sparsity::LayerKind::Conv2d)` is "Conv2d".
const char* to_string(LayerKind kind);

/// Parses a `to_string` name (case-sensitive); anything else is
/// std::invalid_argument naming it and listing the accepted names.
///
/// Example: `sparsity::layer_kind_from_string("ConvTranspose3d")` is
/// `LayerKind::ConvTranspose3d`.
LayerKind layer_kind_from_string(const std::string& name);

}  // namespace sparsity
