#pragma once

// Counting one batch of activations into a LayerActivationSparsity: what the
// Sequential walk and ActivationMeter share, so that both count alike.

#include <ATen/core/Tensor.h>

#include "sparsity/lossy/activation_sparsity.h"

namespace sparsity::detail {

/// Adds `x`'s exact zeros, elements with |x| <= near_zero, elements, and its
/// dense and bitmask-plus-nonzeros bytes (dimension 0 indexes the examples;
/// a 0-dim tensor is one example) to `into`. Keeps no reference to `x`.
void count_activations(const at::Tensor& x, double near_zero, LayerActivationSparsity& into);

/// Sums the layers' counts into the report's totals.
void sum_layers(ActivationSparsityReport& report);

}  // namespace sparsity::detail
