#include "resume.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <set>
#include <stdexcept>

#include "checkpoint.h"
#include "sparsity/logging.h"
#include "sparsity/message_text.h"
#include "training_state.h"

namespace sparsity::detail {

ResumePoint check_resume_point(const std::string& path, const torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer,
                               const std::vector<std::shared_ptr<Callback>>& callbacks, c10::Device device) {
  // read_checkpoint's errors name the path already.
  const c10::impl::GenericDict checkpoint = read_checkpoint(path);
  ResumePoint point;
  point.path = path;
  try {
    const c10::IValue epoch = checkpoint_field(checkpoint, "epoch");
    const c10::IValue global_step = checkpoint_field(checkpoint, "global_step");
    if (!epoch.isInt() || epoch.toInt() < -1 || !global_step.isInt() || global_step.toInt() < 0)
      throw std::runtime_error("'epoch' or 'global_step' is not a valid count");
    point.epoch = epoch.toInt();
    point.global_step = global_step.toInt();
    point.history = metrics_from_ivalue(checkpoint_field(checkpoint, "metrics_history"));
    const c10::IValue callback_states = checkpoint_field(checkpoint, "callbacks");
    if (!callback_states.isGenericDict()) throw std::runtime_error("'callbacks' is not a dict");

    point.model = check_model_state(model, checkpoint_field(checkpoint, "model"));
    load_optimizer_state(optimizer, checkpoint_field(checkpoint, "optimizer"), device);
    point.rng = check_cpu_rng_state(checkpoint_field(checkpoint, "rng"));

    const c10::impl::GenericDict states = callback_states.toGenericDict();
    std::set<std::string> registered;
    for (const auto& callback : callbacks) {
      const std::string name = callback->name();
      registered.insert(name);
      const auto found = states.find(name);
      if (found == states.end()) {
        point.callbacks_without_state.push_back(name);
        continue;
      }
      try {
        callback->check_state_dict(found->value());
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("the state of callback '{}' does not load: {}", name, error_text(e)));
      }
      point.callback_states.emplace_back(callback, found->value());
    }
    for (const auto& entry : states) {
      const std::string name = entry.key().isString() ? entry.key().toStringRef() : "?";
      if (registered.count(name) == 0) point.states_without_callback.push_back(name);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot resume from the checkpoint '{}': {}", path, error_text(e)));
  }
  return point;
}

void apply_resume_point(const ResumePoint& point, torch::nn::Module& model) {
  try {
    for (const auto& [callback, state] : point.callback_states) {
      try {
        callback->load_state_dict(state);
      } catch (const std::exception& e) {
        throw std::runtime_error(
            fmt::format("callback '{}' failed in load_state_dict: {}", callback->name(), error_text(e)));
      }
    }
    copy_model_state(model, point.model);
    set_cpu_rng_state(point.rng);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot resume from the checkpoint '{}': {}", point.path, error_text(e)));
  }
  for (const auto& name : point.callbacks_without_state)
    logger()->warn("Trainer: the checkpoint '{}' has no state for callback '{}'; it starts afresh", point.path, name);
  for (const auto& name : point.states_without_callback)
    logger()->warn("Trainer: the checkpoint '{}' has the state of callback '{}', which is not registered; it is "
                   "ignored",
                   point.path, name);
}

}  // namespace sparsity::detail
