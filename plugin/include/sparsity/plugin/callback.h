#pragma once

#include <string>

namespace c10 {
struct IValue;
}

namespace sparsity {

class Trainer;
class TrainingModule;

/// Code the Trainer runs at fixed points of `fit`: the C++ counterpart of
/// Lightning's Callback. Every hook has an empty default; override the ones
/// you need. Hooks run in this order:
///
///     on_fit_start
///     on_train_start
///     for each epoch:
///       on_train_epoch_start
///       for each batch: on_train_batch_start, (step), on_train_batch_end
///       on_train_epoch_end
///       on_validation_epoch_end        (when there is validation data)
///     on_train_end
///     on_fit_end
///
/// The Trainer's accessors (`current_epoch()`, `global_step()`, `last_loss()`,
/// ...) tell a hook where training stands. An exception thrown by a hook stops
/// training; the Trainer rethrows it naming the callback and the hook.
///
/// A callback owns its state: `state_dict()` / `load_state_dict()` put it in
/// the Trainer's checkpoints so that a resumed run continues where it stopped;
/// `check_state_dict()` lets the Trainer find a bad state before it loads any.
class Callback {
 public:
  virtual ~Callback() = default;

  /// The name used in messages and checkpoints; defaults to the class name.
  /// Give two callbacks of the same class different names to checkpoint both.
  virtual std::string name() const;

  virtual void on_fit_start(Trainer&, TrainingModule&) {}
  virtual void on_train_start(Trainer&, TrainingModule&) {}
  virtual void on_train_epoch_start(Trainer&, TrainingModule&) {}
  virtual void on_train_batch_start(Trainer&, TrainingModule&) {}
  virtual void on_train_batch_end(Trainer&, TrainingModule&) {}
  virtual void on_train_epoch_end(Trainer&, TrainingModule&) {}
  virtual void on_validation_epoch_end(Trainer&, TrainingModule&) {}
  virtual void on_train_end(Trainer&, TrainingModule&) {}
  virtual void on_fit_end(Trainer&, TrainingModule&) {}

  /// The callback's state for checkpoints (a dict of plain values and tensors,
  /// readable from Python); the default has none (an empty dict).
  virtual c10::IValue state_dict() const;
  /// Restores `state_dict()`'s value, from a checkpoint, before `fit` resumes.
  virtual void load_state_dict(const c10::IValue& state);
  /// Throws, changing nothing, if `load_state_dict` would reject `state`. The
  /// Trainer checks every callback's state (with the model's and the
  /// optimizer's) before it loads any, so that a checkpoint with one bad state
  /// changes nothing, and `Trainer::check_resume` only checks. A callback
  /// whose `load_state_dict` can reject a state should override this with the
  /// same checks (and call it from `load_state_dict`). The default accepts
  /// every state, as the default `load_state_dict` does.
  virtual void check_state_dict(const c10::IValue& state) const;
};

}  // namespace sparsity
