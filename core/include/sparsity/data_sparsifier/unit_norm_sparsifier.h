#pragma once

#include <torch/arg.h>

#include <string>
#include <vector>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/data_sparsifier/data_norm_sparsifier.h"

namespace sparsity {

/// Options for `UnitNormSparsifier`: the defaults of every data group.
///
/// Example:
/// ```
/// UnitNormSparsifier sparsifier(UnitNormSparsifierOptions()
///                                   .sparsity_level(0.5)
///                                   .norm(Norm::L2));
/// ```
struct UnitNormSparsifierOptions {
  /// The options as the sparsifier's default config: keys `sparsity_level` and
  /// `norm` ("L1"/"L2"). Throws std::invalid_argument on a bad value.
  Config to_config() const;
  /// Reads those keys (both optional); an unknown key, a wrong type or a bad
  /// value is std::invalid_argument naming it and listing the accepted keys.
  static UnitNormSparsifierOptions from_config(const Config& config);

  /// Fraction of units to prune: round-half-to-even(level * units) units with
  /// the lowest norm. <= 0 prunes none, >= 1 all.
  TORCH_ARG(double, sparsity_level) = 0.5;
  /// L1: a unit's mean |x|; L2: its Euclidean norm.
  TORCH_ARG(Norm, norm) = Norm::L1;
};

/// Structured pruning: zeroes whole output units of weights, the rows of a
/// Linear weight ([out, in]) and the filters of a Conv2d weight ([out, in, kh,
/// kw]), i.e. the slices along dim 0, those with the lowest norm. A pruned
/// unit can then be removed from the model outright (`shrink`,
/// sparsity/structured/shrink.h) instead of stored as zeros.
///
/// Rules (see docs/structured_pruning.md):
/// - Data of two or more dims is a weight: its units are its dim-0 slices.
/// - A 1-D tensor registered as `<prefix>bias` follows the weight registered
///   as `<prefix>weight` (the callbacks' names use '_' for '.', so `fc1_bias`
///   follows `fc1_weight`): its mask is that weight's unit mask, whatever its
///   own `sparsity_level` says. `step()` computes weights before biases, so a
///   bias always gets the mask of the same step.
/// - A 1-D tensor with no registered weight partner (or one whose dim 0 is not
///   the bias's length) is an error at `step()`, std::invalid_argument naming
///   it: pruning single elements is not structured pruning, and DataNormSparsifier
///   already does it. 0-D data, and 1-D data whose name does not end in `bias`,
///   are rejected by `add_data`.
/// - Ties between equal norms: the lowest index is pruned first. NaN norms rank
///   after every number (pruned last).
/// - Masks keep the data's shape: a pruned unit is a slice of zeros.
///
/// Every option is also a per-data config key, which the data schedulers set
/// (`sparsity_level`) each step.
///
/// Example:
/// ```
/// UnitNormSparsifier sparsifier(UnitNormSparsifierOptions().sparsity_level(0.5));
/// sparsifier.add_data("fc1_weight", fc1->weight);
/// sparsifier.add_data("fc1_bias", fc1->bias);   // pruned with fc1's rows
/// sparsifier.step();
/// sparsifier.squash_mask();
/// ```
class UnitNormSparsifier : public BaseDataSparsifier {
 public:
  explicit UnitNormSparsifier(UnitNormSparsifierOptions options = {});

  /// The name a 1-D `name` follows: `<prefix>weight` for `<prefix>bias`, or
  /// empty when `name` does not end in `bias`.
  static std::string weight_partner(const std::string& name);

 protected:
  void update_mask(const std::string& name, const at::Tensor& data, const Config& config) override;
  void update_masks(const std::vector<std::string>& names) override;
  void validate_data(const std::string& name, const at::Tensor& data,
                     const Config& config) const override;

 private:
  void update_bias_mask(const std::string& name);
};

}  // namespace sparsity
