#pragma once
// Per-layer sensitivity analysis: how much a metric drops when one layer is
// pruned at a given level, and the per-layer levels that reach a global
// sparsity at the least predicted drop.

#include <torch/arg.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparsity/parameter_selection.h"

namespace torch {
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

namespace sparsity {

/// Options of `sensitivity_analysis`.
///
/// Example:
/// ```
/// sparsity::SensitivityOptions().levels({0.25, 0.5, 0.75, 0.9});
/// sparsity::SensitivityOptions().parameters({{"*weight"}, {"embedding.*"}});   // every weight but the embedding's
/// ```
struct SensitivityOptions {
  /// Fractions of each layer's values pruned, each in (0, 1], strictly
  /// increasing: 0.1, 0.2, ..., 0.9 and 0.95 by default.
  TORCH_ARG(std::vector<double>, levels) = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95};
  /// Which parameters are analysed, by dotted name with shell patterns (see
  /// `ParameterSelection`): every weight by default.
  TORCH_ARG(ParameterSelection, parameters) = ParameterSelection{{"*weight"}, {}};
};

/// The result of `sensitivity_analysis`: a layers × levels table of the metric
/// after pruning that one layer at that level, every other layer as it was.
/// A layer is one parameter (`fc1.weight`); "pruned at level s" means that the
/// `round(s · numel)` values of smallest magnitude are zero (see
/// `sensitivity_analysis`).
struct SensitivityTable {
  /// The analysed parameters' dotted names, in the model's order.
  std::vector<std::string> layers;
  /// Each layer's number of values.
  std::vector<int64_t> numels;
  /// The pruning levels, in (0, 1], strictly increasing.
  std::vector<double> levels;
  /// The metric of the model as it was.
  double baseline = 0;
  /// `metric[layer][level]`: the metric with `layers[layer]` pruned at `levels[level]`.
  std::vector<std::vector<double>> metric;

  /// `baseline - metric[layer][level]`: how much the metric drops (negative
  /// when pruning improved it). std::invalid_argument naming an index out of
  /// range.
  double loss(size_t layer, size_t level) const;

  /// The table as CSV: the header `layer,numel,level,metric,loss`, then one
  /// row per layer and level (layer by layer, levels in order). Numbers are
  /// written as `float_repr` writes them (the shortest text that reads back
  /// as the same double: `0.1`, `2.0`); a layer name holding a comma, a quote
  /// or a line break is quoted as RFC 4180 says. std::invalid_argument when
  /// the vectors' sizes disagree.
  ///
  /// Example:
  /// ```text
  /// layer,numel,level,metric,loss
  /// 0.weight,100352,0.1,0.8764,0.0
  /// 0.weight,100352,0.2,0.8761,0.0003
  /// ```
  std::string to_csv() const;
};

/// Measures how sensitive `model` is to pruning each selected parameter on its
/// own: calls `evaluate()` once on the model as it is (the baseline), then,
/// for each selected parameter in the model's order and each level in
/// increasing order, prunes that parameter at that level in place, calls
/// `evaluate()` again and records the result, and puts the pruned values back.
///
/// `evaluate()` returns a metric for which higher is better (accuracy, the
/// negated loss, ...); what it computes is the caller's business, but it must
/// read the model's parameters as they are when it is called and must not
/// change them. It is called `1 + layers × levels` times and runs in the
/// caller's grad mode (wrap its forward pass in `torch::NoGradGuard`).
///
/// Pruning is magnitude pruning, as `torch.nn.utils.prune.l1_unstructured`
/// does it: at level s, the k = round(s · n) values of smallest |w| of a
/// parameter of n values are set to +0.0, with round half to even (Python's
/// `round`, which the reference uses: 0.5 · 5 → 2). Equal magnitudes are
/// pruned in order of the flat (row-major) index, lowest first; NaN counts as
/// larger than every number, including infinity, so it is pruned last; -0.0
/// and +0.0 tie. Each layer's values are ranked once; the levels then extend
/// the set of zeros.
///
/// Pruning and restoring happen in place under `torch::NoGradGuard`: only the
/// values to be zeroed at the layer's highest level are saved (no copy of the
/// model), and written back after the layer's last level. When the call
/// returns, and also when it throws (from `evaluate()` or because of a
/// non-finite metric), every parameter holds exactly the bytes it held before
/// (-0.0 and NaN payloads included) in the same memory (same `data_ptr`).
///
/// Float parameters only (float32, float64, float16, bfloat16), on any
/// device, contiguous or not. std::invalid_argument (before `evaluate()` is
/// first called) for an empty `evaluate`, empty levels, a level outside (0, 1] or not above the
/// one before it, a selection that matches no parameter (naming its patterns),
/// a selected parameter that is not a strided floating-point tensor (naming
/// it and its dtype); and (after restoring the parameters) for a metric that
/// is not finite, naming the layer and the level, or the baseline.
///
/// Example:
/// ```
/// // accuracy_on(net, images, labels): the fraction of images classified right
/// sparsity::SensitivityTable table = sparsity::sensitivity_analysis(
///     *net, [&] { return accuracy_on(net, images, labels); },
///     sparsity::SensitivityOptions().levels({0.5, 0.8, 0.9}));
/// std::cout << table.to_csv();
/// sparsity::LevelSuggestion plan = sparsity::suggest_levels(table, 0.8);
/// ```
SensitivityTable sensitivity_analysis(torch::nn::Module& model, const std::function<double()>& evaluate,
                                      const SensitivityOptions& options = {});

/// A pruning level per layer, chosen by `suggest_levels`.
struct LevelSuggestion {
  /// One level per layer of the table, in its order: one of the table's
  /// levels, or 0 for a layer kept dense.
  std::vector<double> levels;
  /// The sum of the chosen cells' losses (`SensitivityTable::loss`); 0 for a
  /// dense layer.
  double predicted_loss = 0;
  /// The fraction of all the table's values pruned: Σ round(level · numel) / Σ numel.
  double sparsity = 0;
  /// The values per step of the dynamic programming: 1 when the choice is
  /// exact, more when the table was too large for that (see `suggest_levels`).
  int64_t unit = 1;
};

/// The per-layer levels that prune at least `target_sparsity` of all the
/// table's values with the least predicted loss.
///
/// The prediction assumes that the losses of layers pruned together add up:
/// pruning layer A at level a and layer B at level b is predicted to cost
/// `loss(A, a) + loss(B, b)`. That ignores interactions between layers (it
/// is usually optimistic at high sparsities); measure the model pruned this
/// way before trusting it.
///
/// Each layer gets 0 (dense) or one of the table's levels; the layer then
/// prunes k = round(level · numel) values, the k the analysis pruned. Among
/// the choices with Σ k ≥ target_sparsity · Σ numel (up to the rounding of
/// that product: 0.7 · 10 asks for 7 values), the one of least Σ loss is
/// returned: a multiple-choice knapsack, solved exactly by dynamic
/// programming over the number of pruned values, f_i(c) = the least loss of
/// layers 0..i pruning at least c values = min over the layer's options of
/// loss + f_{i-1}(max(0, c - k)), for c up to the target count K. Ties go to
/// the option earlier in (dense, levels...). Losses can be negative (pruning
/// improved the metric): such a cell is chosen whenever it lowers the sum,
/// also beyond the target (target 0 then is not all dense).
///
/// Cost: time layers × (K + 1) × (levels + 1), memory layers × (K + 1)
/// bytes (the choices) plus 8 (K + 1) bytes (the losses). Exact (`unit` 1) when K ≤ 2^22 (4,194,304
/// values) and layers × (K + 1) ≤ 2^26; beyond that, counts are taken in units
/// of u values (each layer's k rounded down, the target rounded up, so the
/// target is still met) with u the least that fits, and the result is then
/// guaranteed to have a loss no larger than the exact optimum for the target
/// count K + layers × (u − 1), i.e. a target higher by layers × (u − 1) / Σ numel.
/// If even that cannot meet the target, every layer gets its highest level.
///
/// std::invalid_argument for a target outside [0, 1] (naming it), a target
/// above what pruning every layer at the highest level reaches (naming that
/// fraction), and a table that is not consistent (naming the sizes that
/// disagree, a bad level, a numel below 0 or a loss that is not finite),
/// has no layer, no values, or more than 254 levels.
///
/// Example:
/// ```
/// sparsity::LevelSuggestion plan = sparsity::suggest_levels(table, 0.8);
/// for (size_t i = 0; i < table.layers.size(); ++i)
///   std::cout << table.layers[i] << ": " << plan.levels[i] << "\n";   // e.g. "0.weight: 0.9"
/// ```
LevelSuggestion suggest_levels(const SensitivityTable& table, double target_sparsity);

}  // namespace sparsity
