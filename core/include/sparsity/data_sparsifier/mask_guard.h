#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <string>
#include <utility>
#include <vector>

#include "sparsity/parameter_selection.h"

namespace sparsity {

class BaseDataSparsifier;

/// Options of `MaskGuard`.
struct MaskGuardOptions {
  /// Which of the model's parameters are guarded (default: all).
  TORCH_ARG(ParameterSelection, parameters) = {};
  /// Register the selected parameters with the sparsifier (`attach_parameters`)
  /// when the guard is built. Off: they must be registered already, under
  /// their `sparsifier_name`s (the guard then only reads their masks, e.g.
  /// masks computed on a copy of the model).
  TORCH_ARG(bool, attach) = true;
};

/// Keeps a live model's pruned weights at exactly zero while it trains, in
/// any training loop and under any optimizer. For each guarded parameter it
/// holds the sparsifier's mask in the parameter's dtype and
/// - masks the parameter's gradient (a gradient hook), so that no optimizer
///   state builds up behind a zero, and
/// - multiplies the parameter by its mask in place when `apply()` is called,
///   which the training loop does after every `optimizer.step()`.
///
/// Both are needed: the hook alone does not hold the zeros when the optimizer
/// moves a weight whose gradient is zero (Adam's moments from before the
/// weight was pruned, SGD's momentum, weight decay that an optimizer such as
/// AdamW applies to the weight itself), and re-zeroing alone lets a pruned
/// weight's gradient feed the optimizer's state. `apply()` costs one in-place
/// multiplication per parameter and allocates nothing.
///
/// The masks are the sparsifier's at construction; after each
/// `sparsifier.step()`, `update_masks()` copies the new ones in and applies
/// them. The hooks are removed when the guard is destroyed (or `remove()`d);
/// a guard is not copyable, since two guards would hook a parameter twice.
///
/// Example:
/// ```
/// sparsity::DataNormSparsifier sparsifier(sparsity::DataNormSparsifierOptions().sparsity_level(0.8));
/// sparsity::MaskGuard guard(*model, sparsifier, sparsity::MaskGuardOptions().parameters({{"*weight"}, {}}));
/// sparsifier.step();
/// guard.update_masks();  // the live weights now hold the new masks
/// for (...) {
///   optimizer.zero_grad();
///   loss_of(model).backward();  // pruned weights' gradients are zero
///   optimizer.step();
///   guard.apply();  // and the weights themselves stay zero
/// }
/// ```
class MaskGuard {
 public:
  /// Guards the parameters of `model` that `options.parameters()` selects,
  /// with masks from `sparsifier`, which must outlive the guard. Throws
  /// std::invalid_argument when the selection picks no parameter (naming its
  /// patterns), or, without `attach`, when a selected parameter is not
  /// registered with the sparsifier (naming it).
  MaskGuard(torch::nn::Module& model, BaseDataSparsifier& sparsifier, MaskGuardOptions options = {});
  /// Guards the named parameters of `model` (dotted names, `0.weight`), which
  /// must be registered with `sparsifier` under their `sparsifier_name`s;
  /// throws std::invalid_argument naming a name `model` has no parameter of.
  MaskGuard(torch::nn::Module& model, BaseDataSparsifier& sparsifier, const std::vector<std::string>& parameter_names);
  ~MaskGuard();

  MaskGuard(const MaskGuard&) = delete;
  MaskGuard& operator=(const MaskGuard&) = delete;

  /// Copies the sparsifier's current masks in and applies them: call it after
  /// each `sparsifier.step()`.
  void update_masks();
  /// Multiplies every guarded parameter by its mask, in place and without
  /// autograd: call it after each `optimizer.step()`.
  void apply();
  /// Same as `apply()`, named for where it goes in a training loop.
  void after_step() { apply(); }
  /// Removes the gradient hooks now (the destructor does it otherwise);
  /// `apply()` and `update_masks()` still work.
  void remove();

  /// The dotted names of the guarded parameters, in the model's order.
  const std::vector<std::string>& parameter_names() const { return names_; }
  /// The mask held for `parameter_name` (dtype of the parameter); throws
  /// std::invalid_argument for a name that is not guarded.
  const at::Tensor& mask(const std::string& parameter_name) const;

 private:
  struct Guarded {
    std::string name;      ///< dotted name
    at::Tensor parameter;  ///< the live model's tensor
    at::Tensor mask;       ///< in the parameter's dtype, rewritten in place
    unsigned hook = 0;
    bool hooked = false;
  };
  void guard(torch::nn::Module& model, const std::vector<std::string>& parameter_names);

  BaseDataSparsifier& sparsifier_;
  std::vector<std::string> names_;
  std::vector<Guarded> guarded_;
};

}  // namespace sparsity
