#pragma once

// Resuming from a checkpoint in two steps: check everything against the
// module, its optimizer and the callbacks, then apply. Trainer::fit does both;
// Trainer::check_resume only the first, which is why it changes nothing.

#include <ATen/core/Dict.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics_csv.h"
#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/torch_fwd.h"
#include "sparsity/state_file.h"

namespace sparsity::detail {

/// A checkpoint read and checked, ready to apply.
struct ResumePoint {
  std::string path;
  /// The last finished epoch (0-based), -1 when none had.
  int64_t epoch = -1;
  int64_t global_step = 0;
  std::vector<MetricsRow> history;
  /// The model's tensors, which check_model_state accepted.
  c10::impl::GenericDict model = new_state_dict();
  /// The CPU generator's state, which check_cpu_rng_state accepted.
  at::Tensor rng;
  /// Each registered callback with a state in the checkpoint, and that state,
  /// which its check_state_dict accepted.
  std::vector<std::pair<std::shared_ptr<Callback>, c10::IValue>> callback_states;
  /// Registered callbacks the checkpoint has no state for: they start afresh.
  std::vector<std::string> callbacks_without_state;
  /// Callback states in the checkpoint that no registered callback takes.
  std::vector<std::string> states_without_callback;
};

/// Reads the checkpoint at `path` and checks it against `model` and
/// `callbacks`, changing neither: its counts and metrics history, the model's
/// tensor names and shapes, the generator state, and each callback's state.
/// The optimizer's state can only be checked by loading it, so `optimizer`
/// receives it (its tensors on `device`): pass a scratch optimizer to change
/// nothing. Throws std::runtime_error naming `path` and what does not match.
ResumePoint check_resume_point(const std::string& path, const torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer,
                               const std::vector<std::shared_ptr<Callback>>& callbacks, c10::Device device);

/// Applies a point from check_resume_point to `model` (the one it was checked
/// against), the callbacks and LibTorch's CPU generator, and logs the
/// callbacks without a state and the states without a callback. The callbacks
/// go first: a callback's load_state_dict that throws in spite of its
/// check_state_dict (std::runtime_error naming `point.path` and the callback)
/// leaves the model and the generator unchanged.
void apply_resume_point(const ResumePoint& point, torch::nn::Module& model);

}  // namespace sparsity::detail
