#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

/// The sparsity of one parameter (a layer may have several: weight, bias).
struct ParameterSparsity {
  std::string name;            ///< dotted parameter name
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t zeros = 0;           ///< exact zeros
  double sparsity() const { return numel == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(numel); }
};

/// The former name of ParameterSparsity, kept for code written against it.
using LayerSparsity = ParameterSparsity;

/// The exact-zero count of each named parameter of `model` in `names` (all
/// parameters when empty), in the model's order.
std::vector<ParameterSparsity> measure_sparsity(const torch::nn::Module& model, const std::vector<std::string>& names = {});

/// Zeros over elements of all rows.
double overall_sparsity(const std::vector<ParameterSparsity>& rows);

/// A text table of the rows and their total:
///
///     layer      shape       params   zeros  sparsity
///     0.weight   [300, 784]  235200  188160    80.0%
///     ...
///     total                  266610  ...
std::string format_sparsity_table(const std::vector<ParameterSparsity>& rows);

}  // namespace sparsity
