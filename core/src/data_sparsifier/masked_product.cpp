#include "masked_product.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/TensorIterator.h>
#include <torch/csrc/autograd/custom_function.h>

namespace sparsity::detail {

namespace {

// The product into `out` (which may be `data` itself). TensorIterator walks
// any strides; the inner loop is a plain multiply that the compiler
// vectorizes when the strides are unit.
void multiply_by_mask_into(const at::Tensor& out, const at::Tensor& data, const at::Tensor& mask) {
  auto iter = at::TensorIteratorConfig()
                  .add_output(out)
                  .add_input(data)
                  .add_input(mask)
                  .check_all_same_dtype(false)
                  .build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, data.scalar_type(), "masked_product", [&] {
    iter.for_each([](char** base, const int64_t* strides, int64_t n) {
      auto* o = reinterpret_cast<scalar_t*>(base[0]);
      const auto* x = reinterpret_cast<const scalar_t*>(base[1]);
      const auto* m = reinterpret_cast<const uint8_t*>(base[2]);
      if (strides[0] == sizeof(scalar_t) && strides[1] == sizeof(scalar_t) && strides[2] == 1) {
        for (int64_t i = 0; i < n; ++i) o[i] = x[i] * static_cast<scalar_t>(m[i]);
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t value = *reinterpret_cast<const scalar_t*>(base[1] + i * strides[1]);
        const uint8_t keep = *reinterpret_cast<const uint8_t*>(base[2] + i * strides[2]);
        *reinterpret_cast<scalar_t*>(base[0] + i * strides[0]) = value * static_cast<scalar_t>(keep);
      }
    });
  });
}

at::Tensor multiply_by_mask(const at::Tensor& data, const at::Tensor& mask) {
  if (!data.device().is_cpu()) return data * mask;  // other devices: LibTorch's kernels
  at::Tensor out = at::empty_like(data, at::MemoryFormat::Preserve);
  multiply_by_mask_into(out, data, mask);
  return out;
}

struct MaskedProduct : torch::autograd::Function<MaskedProduct> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& data,
                            const at::Tensor& mask) {
    ctx->save_for_backward({mask});
    return multiply_by_mask(data, mask);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor mask = ctx->get_saved_variables()[0];
    return {multiply_by_mask(grads[0], mask), at::Tensor()};
  }
};

}  // namespace

at::Tensor masked_product(const at::Tensor& data, const at::Tensor& mask) {
  TORCH_INTERNAL_ASSERT(mask.scalar_type() == at::kByte && mask.sizes().equals(data.sizes()));
  if (data.requires_grad() && at::GradMode::is_enabled()) return MaskedProduct::apply(data, mask);
  at::NoGradGuard no_grad;
  return multiply_by_mask(data, mask);
}

void mask_in_place(const at::Tensor& data, const at::Tensor& mask) {
  TORCH_INTERNAL_ASSERT(mask.scalar_type() == at::kByte && mask.sizes().equals(data.sizes()));
  at::NoGradGuard no_grad;
  if (!data.device().is_cpu()) {
    data.mul_(mask);
    return;
  }
  multiply_by_mask_into(data, data, mask);
}

}  // namespace sparsity::detail
