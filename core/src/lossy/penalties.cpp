#include "sparsity/lossy/penalties.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <stdexcept>

namespace sparsity {
namespace {

void check_b(double b) {
  if (!(b > 0.0) || !std::isfinite(b)) {
    throw std::invalid_argument(fmt::format("L0 penalty: b must be > 0 and finite, got {}", b));
  }
}

at::Tensor per_element(const at::Tensor& value, const at::Tensor& x) {
  if (x.numel() == 0) return value;  // 0 / 0 would be NaN: an empty tensor adds nothing.
  return value / static_cast<double>(x.numel());
}

}  // namespace

at::Tensor l0_penalty(const at::Tensor& x, double b) {
  check_b(b);
  const at::Tensor sq = x * x;
  return (sq / (sq + b)).sum();
}

at::Tensor l1_penalty(const at::Tensor& x) { return x.abs().sum(); }

at::Tensor l2_penalty(const at::Tensor& x) { return at::norm(x, 2); }

at::Tensor normalized_l0_penalty(const at::Tensor& x, double b) { return per_element(l0_penalty(x, b), x); }
at::Tensor normalized_l1_penalty(const at::Tensor& x) { return per_element(l1_penalty(x), x); }
at::Tensor normalized_l2_penalty(const at::Tensor& x) { return per_element(l2_penalty(x), x); }

at::Tensor penalty(Penalty kind, const at::Tensor& x, double b) {
  switch (kind) {
    case Penalty::L0: return l0_penalty(x, b);
    case Penalty::L1: return l1_penalty(x);
    case Penalty::L2: return l2_penalty(x);
    case Penalty::NormalizedL0: return normalized_l0_penalty(x, b);
    case Penalty::NormalizedL1: return normalized_l1_penalty(x);
    case Penalty::NormalizedL2: return normalized_l2_penalty(x);
  }
  throw std::invalid_argument(fmt::format("penalty: unknown Penalty value {}", static_cast<int>(kind)));
}

const char* to_string(Penalty kind) {
  switch (kind) {
    case Penalty::L0: return "L0";
    case Penalty::L1: return "L1";
    case Penalty::L2: return "L2";
    case Penalty::NormalizedL0: return "normalized_L0";
    case Penalty::NormalizedL1: return "normalized_L1";
    case Penalty::NormalizedL2: return "normalized_L2";
  }
  return "unknown";
}

std::vector<std::string> penalty_names() {
  return {"L0", "L1", "L2", "normalized_L0", "normalized_L1", "normalized_L2"};
}

Penalty penalty_from_string(const std::string& name) {
  for (Penalty kind : {Penalty::L0, Penalty::L1, Penalty::L2, Penalty::NormalizedL0,
                       Penalty::NormalizedL1, Penalty::NormalizedL2}) {
    if (name == to_string(kind)) return kind;
  }
  throw std::invalid_argument(
      fmt::format("unknown penalty '{}' (accepted: {})", name, fmt::join(penalty_names(), ", ")));
}

PenaltyFunction make_penalty(Penalty kind, double b) {
  if (kind == Penalty::L0 || kind == Penalty::NormalizedL0) check_b(b);
  return [kind, b](const at::Tensor& x) { return penalty(kind, x, b); };
}

PenaltyFunction make_penalty(const std::string& name, double b) {
  return make_penalty(penalty_from_string(name), b);
}

}  // namespace sparsity
