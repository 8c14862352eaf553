#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "sparsity/config.h"

namespace c10 {
struct IValue;
}

namespace sparsity {

class BaseDataSparsifier;

/// Varies one config value (by default `sparsity_level`) of every data group of
/// a data sparsifier over training, the way an LR scheduler varies learning
/// rates. The C++ counterpart of `torch.ao.pruning`'s `BaseDataScheduler`.
///
/// The scheduler holds a reference to the sparsifier it steers, which must
/// outlive it. Call `sparsifier.step()` first, then `scheduler.step()`, at each
/// epoch (or every N batches).
///
/// Beyond the reference:
/// - a scheduled `sparsity_level` is clamped to [0, 1]; any other scheduled
///   value is checked by the sparsifier (`BaseDataSparsifier::check_config`)
///   before it is written, and an integer value stays an integer (rounded);
/// - data added to the sparsifier after the scheduler was built gets its base
///   value recorded at the scheduler's next step;
/// - `state_dict()` / `save()` hold everything a resumed run needs.
///
/// Writing a scheduler: derive, implement `get_schedule_param()` (the new value
/// of every name, computed from `last_epoch()`, `base_param()` and the current
/// values), and end your constructor with `step()`, as the built-in ones do:
/// the reference's constructor takes that first step, which in C++ cannot
/// dispatch to a derived class from the base constructor.
class BaseDataScheduler {
 public:
  BaseDataScheduler(BaseDataSparsifier& sparsifier, std::string schedule_param = "sparsity_level",
                    int64_t last_epoch = -1);
  virtual ~BaseDataScheduler();

  BaseDataScheduler(const BaseDataScheduler&) = delete;
  BaseDataScheduler& operator=(const BaseDataScheduler&) = delete;

  /// Advances `last_epoch`, writes the new values into the data groups,
  /// records them for `get_last_param()` and re-enables mask updates on the
  /// sparsifier. Logs a warning (once) when called before the sparsifier's
  /// first `step()`.
  void step();

  int64_t last_epoch() const { return last_epoch_; }
  /// The scheduled key, e.g. "sparsity_level".
  const std::string& schedule_param() const { return schedule_param_; }
  /// Each name's value when the scheduler first saw it.
  std::map<std::string, double> base_param() const { return base_param_; }
  /// Each name's value after the last step.
  std::map<std::string, double> get_last_param() const { return last_param_; }
  BaseDataSparsifier& sparsifier() const { return sparsifier_; }

  /// last_epoch, base and last values, and the subclass's `extra_state()`.
  c10::IValue state_dict() const;
  /// Restores `state_dict()`'s value; checks it entirely before changing anything.
  void load_state_dict(const c10::IValue& state);
  /// Writes `state_dict()` atomically in LibTorch's pickle format.
  void save(const std::string& path) const;
  /// Reads a file written by `save`; a bad file is an error naming the path.
  void load(const std::string& path);

 protected:
  /// The new value of the scheduled key for every name of the sparsifier.
  /// Called by `step()` after `last_epoch` was advanced.
  virtual std::map<std::string, double> get_schedule_param() = 0;

  /// Fields of a subclass that `state_dict()` saves (e.g. its options).
  virtual Config extra_state() const { return {}; }
  /// Restores `extra_state()`'s value.
  virtual void load_extra_state(const Config& /*state*/) {}

  /// The current value of the scheduled key of `name`, as a double.
  double current_value(const std::string& name) const;
  /// A short name for messages, e.g. "StepSLScheduler".
  virtual std::string type_name() const { return "BaseDataScheduler"; }

 private:
  void record_new_names();

  BaseDataSparsifier& sparsifier_;
  std::string schedule_param_;
  int64_t last_epoch_;
  int64_t step_count_ = 0;
  int64_t sparsifier_steps_at_start_;
  bool order_warned_ = false;
  std::map<std::string, double> base_param_;
  std::map<std::string, double> last_param_;
};

}  // namespace sparsity
