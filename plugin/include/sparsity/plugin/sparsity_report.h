#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

/// The sparsity of one parameter.
struct LayerSparsity {
  std::string name;            ///< dotted parameter name
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t zeros = 0;           ///< exact zeros
  double sparsity() const { return numel == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(numel); }
};

/// The exact-zero count of each named parameter of `model` in `names` (all
/// parameters when empty), in the model's order.
std::vector<LayerSparsity> measure_sparsity(const torch::nn::Module& model, const std::vector<std::string>& names = {});

/// Zeros over elements of all rows.
double overall_sparsity(const std::vector<LayerSparsity>& rows);

/// A text table of the rows and their total:
///
///     layer      shape       params   zeros  sparsity
///     0.weight   [300, 784]  235200  188160    80.0%
///     ...
///     total                  266610  ...
std::string format_sparsity_table(const std::vector<LayerSparsity>& rows);

}  // namespace sparsity
