#pragma once

// The Trainer's checkpoint file: a dict pickled in LibTorch's format (Python's
// torch.load reads it) with a checksum, written atomically (core's state
// files):
//
//   {"format": "sparsity.Checkpoint", "version": 1, "epoch": int,
//    "global_step": int, "model": {name: tensor}, "optimizer": uint8 tensor,
//    "rng": uint8 tensor, "callbacks": {name: state},
//    "metrics_history": [{"epoch": int, "step": int, metric: float, ...}],
//    "checksum": int}
//
// The pieces' values are training_state.h's; resume.h checks a checkpoint
// against what is to resume from it.

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics_csv.h"
#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/torch_fwd.h"

namespace sparsity::detail {

constexpr const char* kCheckpointFormat = "sparsity.Checkpoint";
constexpr int64_t kCheckpointVersion = 1;

/// What a checkpoint holds, read from the running fit's objects when it is
/// written.
struct CheckpointContent {
  /// The last finished epoch (0-based), -1 before the first has finished.
  int64_t epoch = -1;
  int64_t global_step = 0;
  const torch::nn::Module& model;
  const torch::optim::Optimizer& optimizer;
  /// Kept by name: the names must be distinct.
  const std::vector<std::shared_ptr<Callback>>& callbacks;
  const std::vector<MetricsRow>& history;
};

/// Writes a checkpoint of `content` and of LibTorch's CPU generator to `path`,
/// atomically. A callback's state_dict() that throws is a std::runtime_error
/// naming the callback.
void write_checkpoint(const std::string& path, const CheckpointContent& content);
/// Reads and verifies a checkpoint: its checksum, format and version. A missing,
/// corrupt or foreign file is a std::runtime_error naming `path`.
c10::impl::GenericDict read_checkpoint(const std::string& path);
/// checkpoint[key], or std::runtime_error naming the missing key.
c10::IValue checkpoint_field(const c10::impl::GenericDict& checkpoint, const std::string& key);

c10::IValue metrics_to_ivalue(const std::vector<MetricsRow>& rows);
std::vector<MetricsRow> metrics_from_ivalue(const c10::IValue& value);

}  // namespace sparsity::detail
