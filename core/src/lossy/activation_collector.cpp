#include "sparsity/lossy/activation_collector.h"

namespace sparsity {

void ActivationCollector::record(const at::Tensor& activation) {
  if (enabled_) activations_.push_back(activation);
}

int64_t ActivationCollector::total_elements() const {
  int64_t total = 0;
  for (const auto& a : activations_) total += a.numel();
  return total;
}

}  // namespace sparsity
