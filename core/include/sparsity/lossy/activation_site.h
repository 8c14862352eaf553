#pragma once

#include <cstddef>

namespace at {
class Tensor;
}

namespace sparsity {

class ActivationMeter;

/// A place in a model whose outputs an `ActivationMeter` can count: every
/// `Sparsified` slot, `LossySparsifier` and `LossyHardSparsifier` is one.
/// LibTorch's C++ modules have no forward hooks, so the layers report their
/// own outputs, in training and eval mode alike, to the meter attached to
/// them (none by default, at the cost of one null check per forward).
///
/// Copies (a module's `clone()`) start detached: a meter only counts the
/// modules it attached itself to, and never outlives that attachment.
class ActivationSite {
 public:
  ActivationSite() = default;
  ActivationSite(const ActivationSite&) noexcept {}
  ActivationSite& operator=(const ActivationSite&) noexcept { return *this; }
  virtual ~ActivationSite() = default;

  /// The meter this site reports to, or null.
  const ActivationMeter* meter() const { return meter_; }

 protected:
  /// Hands `output` to the attached meter, which counts it at once and keeps
  /// nothing (no-op when detached).
  void report_output(const at::Tensor& output) const;

 private:
  friend class ActivationMeter;
  ActivationMeter* meter_ = nullptr;
  size_t site_ = 0;
};

}  // namespace sparsity
