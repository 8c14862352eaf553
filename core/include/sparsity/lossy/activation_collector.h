#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace sparsity {

/// Collects the outputs of the `LossySparsifier` layers it is attached to, for
/// `SparseLoss`, without global state: the training loop (or a callback) owns
/// it, hands it to `add_sparsifier_layers` / `attach_collector`, reads
/// `activations()` after the forward pass and calls `clear()` before the next
/// step. Layers record only in training mode and while `enabled()`, so
/// evaluation passes do not fill it.
///
/// Example:
/// ```
/// auto collector = std::make_shared<sparsity::ActivationCollector>();
/// sparsity::add_sparsifier_layers(*net, /*eps_start=*/0.01, collector);
/// for (auto& batch : batches) {
///   collector->clear();
///   auto loss = sparse_loss(net->forward(batch.data), batch.target, collector->activations());
///   ...
/// }
/// ```
class ActivationCollector {
 public:
  /// Records one layer output (called by the layers).
  void record(const at::Tensor& activation);
  /// Forgets every recorded activation (call at every step).
  void clear() { activations_.clear(); }
  /// The outputs recorded since the last `clear()`, in forward order.
  const std::vector<at::Tensor>& activations() const { return activations_; }
  /// The sum of the recorded activations' element counts.
  int64_t total_elements() const;

  bool enabled() const { return enabled_; }
  void set_enabled(bool enabled) { enabled_ = enabled; }

 private:
  std::vector<at::Tensor> activations_;
  bool enabled_ = true;
};

}  // namespace sparsity
