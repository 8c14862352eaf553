#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "sparsity/plugin/distributed.h"

namespace sparsity::detail {

/// Averages the gradients of `parameters` over the ranks of a group, as
/// PyTorch's DDP does: the parameters are cut into buckets of about
/// `bucket_bytes` (in reverse order, the order backward produces their
/// gradients), and a hook on each parameter's gradient accumulator launches a
/// bucket's all-reduce as soon as all its gradients are there, while the
/// backward pass goes on. Buckets launch in the same order on every rank.
///
/// Per step: `arm()` before the backward pass, `finish()` after it (launches
/// what is left, waits, divides by the world size, writes the gradients back).
/// Outside arm/finish the hooks do nothing, so other backward passes through
/// the same parameters (a callback's) stay local.
class GradientBuckets {
 public:
  GradientBuckets(DistributedGroup& group, const std::vector<at::Tensor>& parameters, int64_t bucket_bytes);
  ~GradientBuckets();
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  void arm();
  void finish();
  /// Buckets per step.
  int64_t bucket_count() const;
  /// Seconds `finish` spent waiting for all-reduces, summed since construction.
  double wait_seconds() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sparsity::detail
