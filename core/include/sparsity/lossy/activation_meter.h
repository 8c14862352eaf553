#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparsity/lossy/activation_sparsity.h"

namespace at {
class Tensor;
}
namespace torch::nn {
class Module;
}

namespace sparsity {

class ActivationSite;

/// Counts, while it is alive, the outputs of every `ActivationSite` in a model
/// (each `Sparsified` slot, and each `LossySparsifier` / `LossyHardSparsifier`
/// that is not inside a slot), in training and eval mode alike: exact zeros,
/// values with |x| <= `near_zero`, and the bytes of the maps stored dense and
/// as a bitmask plus nonzeros. Each output is reduced to these counts when the
/// layer computes it and is not kept, so memory stays flat however many
/// batches run. Attaches in the constructor and detaches in the destructor
/// (not copyable); a model measured by two meters at once is an error.
///
/// A `Sparsified` slot reports what follows it: its layer's output after the
/// sparsifier when it holds one, the layer's output when it does not (a dense
/// model built with `insertable` slots is thus measured at the same places
/// as its lossy version).
///
/// Example:
/// ```
/// sparsity::ActivationMeter meter(*net, /*near_zero=*/1e-3);
/// for (const auto& batch : test_images.split(256)) net->forward(batch);
/// std::cout << meter.report().to_string();
/// ```
class ActivationMeter {
 public:
  /// Attaches to every site below and including `model`; std::invalid_argument
  /// when `near_zero` is negative or not finite, or when a site already
  /// reports to another meter (naming it).
  explicit ActivationMeter(torch::nn::Module& model, double near_zero = 1e-3);
  ~ActivationMeter();
  ActivationMeter(const ActivationMeter&) = delete;
  ActivationMeter& operator=(const ActivationMeter&) = delete;

  /// Counts one output of site `site` (called by the layers).
  void record(size_t site, const at::Tensor& output);
  /// Zeroes every count (the sites stay attached).
  void reset();
  /// The number of sites found.
  size_t sites() const { return stats_.size(); }
  /// Per site in model order (only those that ran at least once), and totals.
  ActivationSparsityReport report() const;

 private:
  void detach();

  double near_zero_;
  /// The model itself when it is a site (it must outlive the meter).
  ActivationSite* self_site_ = nullptr;
  /// The sites below it, with their modules: one replaced meanwhile (e.g. by
  /// `convert_to_hard`) may be gone when the meter detaches.
  std::vector<std::pair<std::weak_ptr<torch::nn::Module>, ActivationSite*>> child_sites_;
  std::vector<LayerActivationSparsity> stats_;
};

}  // namespace sparsity
