#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "sparsity/lossy/penalties.h"

namespace sparsity {

/// The task loss plus the sparsity term of the lossy-sparsifier seed:
///
///     loss = task_loss(output, target) + reg · Σᵢ penalty(aᵢ) / Σᵢ numel(aᵢ)
///
/// over the collected sparsifier outputs aᵢ (an `ActivationCollector`'s
/// `activations()`). With no activations the loss is the task loss alone.
///
/// Example:
/// ```
/// sparsity::SparseLoss loss_fn(
///     [](const at::Tensor& out, const at::Tensor& y) { return torch::nn::functional::cross_entropy(out, y); },
///     sparsity::make_penalty("L0", 1e-4), /*reg=*/0.5);
/// collector->clear();
/// auto out = net->forward(x);
/// auto loss = loss_fn(out, y, collector->activations());
/// ```
class SparseLoss {
 public:
  using TaskLoss = std::function<at::Tensor(const at::Tensor& output, const at::Tensor& target)>;

  /// reg must be >= 0 and finite, task_loss and penalty non-empty
  /// (std::invalid_argument otherwise).
  SparseLoss(TaskLoss task_loss, PenaltyFunction penalty, double reg);

  /// The whole loss (a 0-dim tensor).
  at::Tensor operator()(const at::Tensor& output, const at::Tensor& target,
                        const std::vector<at::Tensor>& activations) const;
  /// reg · Σ penalty(aᵢ) / Σ numel(aᵢ) alone (0 with no activations).
  at::Tensor sparsity_term(const std::vector<at::Tensor>& activations) const;

  double reg() const { return reg_; }
  void set_reg(double reg);

 private:
  TaskLoss task_loss_;
  PenaltyFunction penalty_;
  double reg_;
};

}  // namespace sparsity
