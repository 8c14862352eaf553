// Built against an installed sparsity: sparsifies a tensor and checks the mask.
#include <ATen/ATen.h>
#include <sparsity/sparsity.h>

#include <cstdio>

int main() {
  sparsity::DataNormSparsifier sparsifier(
      sparsity::DataNormSparsifierOptions().sparsity_level(0.5).sparse_block_shape({1, 2}));
  at::Tensor data = at::arange(1, 9, at::kFloat).reshape({2, 4});
  sparsifier.add_data("data", data);
  sparsifier.step();
  const int64_t kept = sparsifier.get_mask("data").sum().item<int64_t>();
  std::printf("kept %lld of %lld\n", static_cast<long long>(kept), static_cast<long long>(data.numel()));
  return kept == 4 ? 0 : 1;
}
