#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <iosfwd>
#include <memory>

#include "sparsity/lossy/activation_site.h"

namespace sparsity {

class ActivationCollector;

/// Options for `LossySparsifier` (and, `eps` only, `LossyHardSparsifier`).
///
/// Example:
/// ```
/// sparsity::LossySparsifier soft(sparsity::LossySparsifierOptions().eps(0.2).a(4.0));
/// sparsity::LossyHardSparsifier hard(sparsity::LossySparsifierOptions().eps(0.3));
/// ```
struct LossySparsifierOptions {
  /// Initial threshold ε (its magnitude is used); must be finite.
  TORCH_ARG(double, eps) = 0.1;
  /// Sharpness of the sigmoids; must be > 0 and finite. Larger is closer to
  /// the hard threshold.
  TORCH_ARG(double, a) = 1.0;
};

/// A learned soft threshold on activations, from "Designing and training with
/// differentiable lossy sparsifier layer" (docs/lossy_sparsifier.md):
///
///     y = σ(a(x − |ε|))·x + σ(a(−|ε| − x))·x
///
/// which passes values with |x| well above |ε| and damps those below it. ε is a
/// learnable 0-dim parameter registered as "eps"; the sharpness `a` is a plain
/// value (not a parameter, not in the state dict) that a schedule raises during
/// training (`multiply_sharpness`).
///
/// On CPU for float and double the layer runs as one fused pass forward and
/// one backward (which also reduces ε's gradient); elsewhere it evaluates the
/// formula with ATen operators. Either way values and first-order gradients
/// (for x and ε) are those of the formula under autograd; the fused path is not
/// twice differentiable.
///
/// With a collector attached (`set_collector`), each output computed in
/// training mode is recorded there for `SparseLoss`. The layer is an
/// `ActivationSite`: an `ActivationMeter` counts its outputs in any mode.
///
/// Example:
/// ```
/// sparsity::LossySparsifier sparse(sparsity::LossySparsifierOptions().eps(0.05));
/// auto y = sparse(torch::randn({64, 300}));
/// sparse->set_a(sparse->a() * 2);   // sharper
/// ```
class LossySparsifierImpl : public torch::nn::Cloneable<LossySparsifierImpl>, public ActivationSite {
 public:
  /// Throws std::invalid_argument for a non-finite eps or an `a` that is not > 0.
  explicit LossySparsifierImpl(const LossySparsifierOptions& options = {});

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// y = σ(a(x − |ε|))·x + σ(a(−|ε| − x))·x, a new tensor of x's shape.
  at::Tensor forward(const at::Tensor& x);

  /// The sharpness in use.
  double a() const { return options.a(); }
  /// Changes the sharpness; std::invalid_argument unless > 0 and finite.
  void set_a(double a);
  /// |ε|, the current threshold, as a double.
  double threshold() const;

  /// In hard mode the layer computes the hard threshold (x where |x| > |ε|,
  /// else 0) instead: what `convert_to_hard` does to layers it cannot replace.
  void set_hard(bool hard) { hard_ = hard; }
  bool hard() const { return hard_; }

  /// Where training-mode outputs are recorded (nullptr: nowhere).
  void set_collector(std::shared_ptr<ActivationCollector> collector) { collector_ = std::move(collector); }
  const std::shared_ptr<ActivationCollector>& collector() const { return collector_; }

  LossySparsifierOptions options;
  /// The learnable threshold (0-dim, float32 unless the module is converted).
  at::Tensor eps;

 private:
  std::shared_ptr<ActivationCollector> collector_;
  bool hard_ = false;
};

/// A `LossySparsifierImpl` holder: `LossySparsifier layer(LossySparsifierOptions().eps(0.2).a(4.0));`.
TORCH_MODULE(LossySparsifier);

/// The hard threshold of a trained soft layer: y = x where |x| > |ε|, else 0.
/// ε is a 0-dim buffer named "eps" (saved with the model, not trained). The
/// output is a new tensor; the input is never modified (the seed's version
/// wrote zeros into its input). Gradients flow to x where it is kept.
///
/// Example:
/// ```
/// sparsity::LossyHardSparsifier hard(sparsity::LossySparsifierOptions().eps(0.3));
/// sparsity::LossyHardSparsifier from_trained(*soft_layer);  // takes its learned ε
/// ```
class LossyHardSparsifierImpl : public torch::nn::Cloneable<LossyHardSparsifierImpl>, public ActivationSite {
 public:
  /// Uses `options.eps()` (a is ignored); std::invalid_argument if not finite.
  explicit LossyHardSparsifierImpl(const LossySparsifierOptions& options = {});
  /// Takes the soft layer's current ε (a copy, detached from training).
  explicit LossyHardSparsifierImpl(const LossySparsifierImpl& soft);
  explicit LossyHardSparsifierImpl(const LossySparsifier& soft);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// x where |x| > |ε|, else 0 (a new tensor).
  at::Tensor forward(const at::Tensor& x);
  /// |ε| as a double.
  double threshold() const;

  LossySparsifierOptions options;
  at::Tensor eps;
};

/// A `LossyHardSparsifierImpl` holder.
TORCH_MODULE(LossyHardSparsifier);

}  // namespace sparsity
