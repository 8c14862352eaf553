#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sparsity/config.h"

namespace c10 {
struct IValue;
}
namespace torch {
namespace nn {
class Embedding;
class EmbeddingBag;
}  // namespace nn
}  // namespace torch

namespace sparsity {

/// Base class of the data sparsifiers: it owns a mask for each piece of named
/// data (tensors, parameters, embedding tables) and leaves the rule that
/// computes the masks, `update_mask`, to derived classes. The C++ counterpart of
/// `torch.ao.pruning`'s `BaseDataSparsifier`.
///
/// The sparsifier never copies the data: it holds the caller's tensor, so
/// in-place changes to that tensor are seen by the next `step()` and
/// `squash_mask()` writes the masked values into the caller's tensor.
///
/// Masks are `uint8` tensors of the data's shape and device, 1 = keep,
/// 0 = prune. A name keeps the same mask tensor for its whole life (updates
/// happen in place), so a mask obtained with `get_mask` stays live.
///
/// Example:
/// ```
/// sparsity::DataNormSparsifier sparsifier(
///     sparsity::DataNormSparsifierOptions().sparsity_level(0.7));
/// auto table = torch::randn({1000, 64});
/// sparsifier.add_data("table", table);
/// sparsifier.step();                 // computes the mask
/// sparsifier.squash_mask();          // table *= mask, in place
/// ```
class BaseDataSparsifier {
 public:
  /// `defaults` is the config every name starts from; `add_data`'s config
  /// overrides it key by key.
  explicit BaseDataSparsifier(Config defaults = {});
  virtual ~BaseDataSparsifier();

  BaseDataSparsifier(const BaseDataSparsifier&) = delete;
  BaseDataSparsifier& operator=(const BaseDataSparsifier&) = delete;

  /// Registers `data` (a floating-point tensor, or a parameter) under `name`,
  /// or replaces the data already registered under it. Returns data * mask.
  ///
  /// On replacement the old config is kept and overlaid with `config`; with
  /// `reuse_mask` the old mask is kept (the shapes must match), otherwise the
  /// mask restarts from all ones. A warning is logged the first time a name is
  /// replaced.
  at::Tensor add_data(const std::string& name, const at::Tensor& data, const Config& config = {},
                      bool reuse_mask = true);
  /// Registers an embedding table's weight.
  at::Tensor add_data(const std::string& name, const torch::nn::Embedding& data,
                      const Config& config = {}, bool reuse_mask = true);
  /// Registers an embedding bag's weight.
  at::Tensor add_data(const std::string& name, const torch::nn::EmbeddingBag& data,
                      const Config& config = {}, bool reuse_mask = true);

  /// The data itself (`return_original`), or data * mask. Asking for the
  /// original after `squash_mask` is an error: only the squashed data is left.
  at::Tensor get_data(const std::string& name, bool return_original = true) const;
  /// The live mask of `name`: in-place edits to it are used by the sparsifier.
  at::Tensor get_mask(const std::string& name) const;
  /// The config of `name`: the defaults overlaid with the config given to `add_data`.
  const Config& data_group(const std::string& name) const;
  Config& data_group(const std::string& name);
  /// The defaults every newly added name starts from.
  const Config& defaults() const { return defaults_; }
  /// Registered names, in insertion order.
  std::vector<std::string> names() const { return order_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  /// False once `squash_mask` has dropped the association of data and mask.
  bool is_parametrized(const std::string& name) const;

  /// Per-name state beyond the mask (the reference's `state[name]`), e.g. a step
  /// counter of a custom sparsifier. Saved and loaded with the rest; the key
  /// "mask" is reserved (`state_dict` and `save` reject a state holding it).
  const Config& state(const std::string& name) const;
  Config& state(const std::string& name);

  /// Calls `update_mask` for every parametrized name, in insertion order, under
  /// no-grad. Does nothing while mask updates are disabled. Data or a live mask
  /// resized since `add_data` is a std::runtime_error naming it, raised before
  /// any mask changes.
  void step();
  /// Multiplies each mask into its data in place (when `leave_parametrized`),
  /// then drops the association: `is_parametrized` becomes false and `step()`
  /// skips the name. Empty `names` means every name; already squashed names are
  /// left as they are. Unknown names are an error (and nothing is squashed).
  void squash_mask(const std::vector<std::string>& names = {}, bool leave_parametrized = true);

  /// How many times `step()` was called (whether or not updates were enabled).
  int64_t step_count() const { return step_count_; }

  /// Checks that `config` would be acceptable as the config of `name` (with its
  /// current data); throws std::invalid_argument naming the offending value.
  /// Data schedulers call it before writing scheduled values.
  void check_config(const std::string& name, const Config& config) const;

  /// Whether replacing the data of a name logs a warning (on by default, as the
  /// reference warns). Code that re-attaches data on purpose, as the training
  /// callbacks do every epoch, turns it off.
  void set_replace_warning(bool enabled) { replace_warning_ = enabled; }

  /// Whether `step()` updates masks; data schedulers turn it back on at each of
  /// their steps (the reference's `enable_mask_update`).
  bool mask_update_enabled() const { return mask_update_enabled_; }
  void set_mask_update_enabled(bool enabled) { mask_update_enabled_ = enabled; }

  /// Everything needed to restore this sparsifier: defaults, names in order,
  /// configs, per-name state, compact masks, data and parametrized flags, as a
  /// dict of plain values (see docs/data_sparsifier.md for the layout).
  c10::IValue state_dict() const;
  /// Restores from `state_dict()`'s value. `strict` drops names the state does
  /// not hold; otherwise they are kept. Names present here and in the state keep
  /// their data and mask tensors, which receive the state's values in place
  /// (when shapes and dtypes agree). Validates everything first: on error the
  /// sparsifier is unchanged.
  void load_state_dict(const c10::IValue& state, bool strict = true);
  /// Writes `state_dict()` to `path` in LibTorch's pickle format (readable with
  /// Python's `torch.load`), atomically: a temporary file renamed into place.
  void save(const std::string& path) const;
  /// Reads a file written by `save`. A missing, truncated or corrupt file is an
  /// error naming the path, and leaves the sparsifier unchanged.
  void load(const std::string& path, bool strict = true);

  /// A multi-line description of every name and its config.
  std::string to_string() const;

 protected:
  /// Computes the mask of `name` from `data` (the original, unmasked data) and
  /// its `config`. Must update `get_mask(name)` in place.
  virtual void update_mask(const std::string& name, const at::Tensor& data,
                           const Config& config) = 0;

  /// Computes the masks of one `step()`: `names` are the parametrized names in
  /// insertion order. The default calls `update_mask` for each; a sparsifier
  /// whose masks depend on several pieces of data at once (a global ranking,
  /// a bias pruned with its weight's rows) overrides this, looking them up with
  /// `get_data`, `data_group` and `get_mask`. Runs under no-grad.
  virtual void update_masks(const std::vector<std::string>& names);

  /// Checks that `data` and its merged `config` are acceptable to this
  /// sparsifier, before `add_data` changes anything. Throws
  /// std::invalid_argument naming the offending value. The default accepts any
  /// floating-point tensor.
  virtual void validate_data(const std::string& name, const at::Tensor& data,
                             const Config& config) const;

 private:
  struct Entry {
    at::Tensor data;
    at::Tensor mask;
    Config config;
    Config state;
    bool parametrized = true;
  };

  const Entry& entry(const std::string& name) const;
  Entry& entry(const std::string& name);

  Config defaults_;
  std::vector<std::string> order_;
  std::unordered_map<std::string, Entry> entries_;
  std::set<std::string> replace_warned_;
  bool mask_update_enabled_ = true;
  bool replace_warning_ = true;
  int64_t step_count_ = 0;
};

}  // namespace sparsity
