#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace sparsity {

/// A sparsity penalty on an activation tensor: a 0-dim tensor, differentiable.
using PenaltyFunction = std::function<at::Tensor(const at::Tensor&)>;

/// The penalties of the lossy-sparsifier seed. The normalized ones divide by
/// the tensor's element count.
enum class Penalty {
  L0,            ///< Σ x² / (x² + b), a smooth count of the non-zeros
  L1,            ///< Σ |x|
  L2,            ///< sqrt(Σ x²)
  NormalizedL0,  ///< L0 / numel
  NormalizedL1,  ///< L1 / numel
  NormalizedL2,  ///< L2 / numel
};

/// The default `b` of the L0 approximation.
constexpr double kDefaultL0B = 1e-4;

/// Σ x² / (x² + b); b must be > 0 and finite (std::invalid_argument otherwise).
at::Tensor l0_penalty(const at::Tensor& x, double b = kDefaultL0B);
/// Σ |x|.
at::Tensor l1_penalty(const at::Tensor& x);
/// sqrt(Σ x²) (torch.norm(x, p=2)).
at::Tensor l2_penalty(const at::Tensor& x);
at::Tensor normalized_l0_penalty(const at::Tensor& x, double b = kDefaultL0B);
at::Tensor normalized_l1_penalty(const at::Tensor& x);
at::Tensor normalized_l2_penalty(const at::Tensor& x);

/// `penalty` applied to x (b is used by the L0 kinds only).
at::Tensor penalty(Penalty kind, const at::Tensor& x, double b = kDefaultL0B);

/// "L0", "L1", "L2", "normalized_L0", "normalized_L1", "normalized_L2".
const char* to_string(Penalty kind);
/// Parses one of `penalty_names()`; anything else is std::invalid_argument
/// naming the value and listing the accepted names.
Penalty penalty_from_string(const std::string& name);
/// The accepted names, for configs and messages.
std::vector<std::string> penalty_names();

/// The penalty as a function (b checked here, once), e.g. for `SparseLoss`:
/// `make_penalty("normalized_L0", 1e-3)`.
///
/// Example:
/// ```
/// sparsity::PenaltyFunction pen = sparsity::make_penalty("L1");
/// at::Tensor value = pen(activation);
/// ```
PenaltyFunction make_penalty(Penalty kind, double b = kDefaultL0B);
PenaltyFunction make_penalty(const std::string& name, double b = kDefaultL0B);

}  // namespace sparsity
