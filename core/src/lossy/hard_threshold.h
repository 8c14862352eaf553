#pragma once

// The hard threshold, shared by LossyHardSparsifier, a LossySparsifier in hard
// mode and measure_activation_sparsity's evaluation of soft layers as hard, so
// that the three agree exactly.

#include <ATen/core/Tensor.h>

namespace sparsity::detail {

/// x where |x| > |ε|, else 0: a new tensor (x is left alone); no gradient
/// reaches ε, gradients reach x where it is kept.
at::Tensor hard_threshold(const at::Tensor& x, const at::Tensor& eps);

}  // namespace sparsity::detail
