#pragma once

#include <functional>
#include <memory>
#include <string>

#include "sparsity/config.h"
#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

class BaseDataSparsifier;
class BaseDataScheduler;

/// Builds a data sparsifier: the typed way to give a data-sparsity callback
/// its sparsifier, checked by the compiler rather than by a type name.
///
/// Example:
/// ```
/// sparsity::DataSparsifierBuilder make = [] {
///   return std::make_unique<sparsity::DataNormSparsifier>(sparsity::DataNormSparsifierOptions().sparsity_level(0.8));
/// };
/// ```
using DataSparsifierBuilder = std::function<std::unique_ptr<BaseDataSparsifier>()>;

/// Builds a data scheduler for the sparsifier it steers.
///
/// Example:
/// ```
/// sparsity::DataSchedulerBuilder make = [](sparsity::BaseDataSparsifier& s) {
///   return std::make_unique<sparsity::CubicSLScheduler>(s, sparsity::CubicSLSchedulerOptions().total_t(10));
/// };
/// ```
using DataSchedulerBuilder = std::function<std::unique_ptr<BaseDataScheduler>(BaseDataSparsifier&)>;

/// What every sparsity callback can say about itself, so that code running
/// several of them (trainer_demo) treats them alike, whatever their type:
/// the model each produces, its sparsifier, whether it changes the model it
/// trains, and its configuration. Registered with `register_callback`, a
/// SparsifyingCallback is built by type name from the Config `to_config()`
/// returns.
class SparsifyingCallback : public Callback {
 public:
  /// The sparse model this callback produced; null until it has one.
  virtual std::shared_ptr<torch::nn::Module> sparsified() const = 0;
  /// The data sparsifier whose masks made it; null for callbacks without one.
  virtual BaseDataSparsifier* data_sparsifier() const { return nullptr; }
  /// Whether the callback changes the model being trained (its masks or layers
  /// act on the live model), so that comparing it with others needs a
  /// training run of its own.
  virtual bool changes_trained_model() const { return false; }
  /// Whether the model it trains must contain LossySparsifier layers.
  virtual bool needs_lossy_layers() const { return false; }
  /// Throws std::invalid_argument when the callback could do nothing useful
  /// with `model` (e.g. selects none of its parameters): a check to run before
  /// training, not after it.
  virtual void check_model(const torch::nn::Module& model) const { (void)model; }
  /// The callback's configuration, every default filled in: the Config that
  /// `make_callback` reads back to an equal callback. Parts given as C++
  /// objects (builders, tensors) have no Config form and are left out.
  virtual Config to_config() const = 0;
};

}  // namespace sparsity
