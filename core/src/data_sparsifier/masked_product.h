#pragma once

#include <ATen/core/Tensor.h>

namespace sparsity::detail {

/// data * mask for a floating `data` and a uint8 `mask` of its shape, with
/// the values of `data * mask.to(data.dtype())` bit for bit (x * 1 == x,
/// x * 0 == +-0, NaN and inf * 0 == NaN; for bfloat16 a NaN's sign may
/// differ, as between LibTorch's own kernels) but without converting the mask:
/// one pass, and the only new memory is the result. Differentiable in `data`
/// (the gradient is grad * mask); the mask is saved for backward as it is,
/// so changing it in place before backward is reported by autograd.
at::Tensor masked_product(const at::Tensor& data, const at::Tensor& mask);

/// data *= mask in place, with the same values and no temporary.
void mask_in_place(const at::Tensor& data, const at::Tensor& mask);

}  // namespace sparsity::detail
