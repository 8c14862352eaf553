#include "sparsity/lossy/sparse_loss.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace sparsity {

SparseLoss::SparseLoss(TaskLoss task_loss, PenaltyFunction penalty, double reg)
    : task_loss_(std::move(task_loss)), penalty_(std::move(penalty)), reg_(0.0) {
  if (!task_loss_) throw std::invalid_argument("SparseLoss: task_loss is empty");
  if (!penalty_) throw std::invalid_argument("SparseLoss: penalty is empty");
  set_reg(reg);
}

void SparseLoss::set_reg(double reg) {
  if (!(reg >= 0.0) || !std::isfinite(reg)) {
    throw std::invalid_argument(fmt::format("SparseLoss: reg must be >= 0 and finite, got {}", reg));
  }
  reg_ = reg;
}

at::Tensor SparseLoss::sparsity_term(const std::vector<at::Tensor>& activations) const {
  at::Tensor sum;
  int64_t elements = 0;
  for (const auto& a : activations) {
    const at::Tensor p = penalty_(a);
    sum = sum.defined() ? sum + p : p;
    elements += a.numel();
  }
  if (!sum.defined() || elements == 0) return at::zeros({});
  return sum * (reg_ / static_cast<double>(elements));
}

at::Tensor SparseLoss::operator()(const at::Tensor& output, const at::Tensor& target,
                                  const std::vector<at::Tensor>& activations) const {
  at::Tensor task = task_loss_(output, target);
  if (activations.empty()) return task;
  return task + sparsity_term(activations).to(task.device());
}

}  // namespace sparsity
