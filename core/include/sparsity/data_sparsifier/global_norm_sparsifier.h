#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparsity/data_sparsifier/data_norm_sparsifier.h"

namespace sparsity {

/// Zeroes the blocks of lowest mean magnitude among *all* its data at once:
/// the blocks of every parametrized name are ranked together by the block
/// norm `DataNormSparsifier` uses, and the round-half-to-even(sparsity_level
/// x total blocks) lowest are sparsified (their `zeros_per_block` smallest
/// elements zeroed). Each tensor thus gets its own sparsity while the total
/// hits the level: a layer of small weights is pruned more than one of large
/// weights. With (1, 1) blocks and L1 its masks are those of PyTorch's
/// `torch.nn.utils.prune.global_unstructured(params, L1Unstructured, amount)`.
///
/// Registered as "GlobalNormSparsifier", with `DataNormSparsifier`'s args.
///
/// One level and one norm for all data: at `step()` every parametrized name
/// must have the same `sparsity_level` and `norm` (a per-name override of
/// either is a std::invalid_argument naming the name, raised before any mask
/// changes). Data schedulers write the same level into every name, so
/// scheduling works as for `DataNormSparsifier`. `sparse_block_shape` and
/// `zeros_per_block` may differ per name: the mean magnitudes of blocks of
/// different sizes compare, and a name's blocks count as selected even when
/// its `zeros_per_block` is 0.
///
/// Ties between equal block norms: the first in insertion order of the names,
/// then in block index order, are selected first.
///
/// Memory: no copy of all the data is made. The threshold norm is found by a
/// radix selection over the norms' bit patterns, 16 bits per pass over the
/// data, each pass computing the block norms a chunk of 2^16 blocks at a
/// time; the keys near the threshold are then gathered once (at most as many
/// as the largest tensor has blocks, 8 bytes each) and the selection finishes
/// on them. Beyond the data and the masks a step needs those keys, one chunk
/// and a 2^16-bin histogram.
///
/// Example:
/// ```
/// GlobalNormSparsifier sparsifier(
///     DataNormSparsifierOptions().sparsity_level(0.9).sparse_block_shape({1, 1}));
/// sparsifier.add_data("fc1_weight", fc1->weight);
/// sparsifier.add_data("fc2_weight", fc2->weight);
/// sparsifier.step();  // 90% of all the weights, fewer in fc2 if it matters more
/// ```
class GlobalNormSparsifier : public DataNormSparsifier {
 public:
  explicit GlobalNormSparsifier(DataNormSparsifierOptions options = {});

  /// `DataNormSparsifierOptions::from_config`, its errors naming this type.
  static DataNormSparsifierOptions options_from_config(const Config& args);

 protected:
  void update_masks(const std::vector<std::string>& names) override;

 private:
  // One tensor's block norm keys, reused from pass to pass and step to step.
  std::vector<uint64_t> keys_;
  // The keys near the threshold, gathered by the last pass of a step.
  std::vector<uint64_t> candidates_;
};

}  // namespace sparsity
