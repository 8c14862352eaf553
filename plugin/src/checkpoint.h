#pragma once

// The pieces of the Trainer's checkpoint file: a dict pickled in LibTorch's
// format (Python's torch.load reads it) with a checksum, written atomically
// (core's state files):
//
//   {"format": "sparsity.Checkpoint", "version": 1, "epoch": int,
//    "global_step": int, "model": {name: tensor}, "optimizer": uint8 tensor,
//    "rng": uint8 tensor, "callbacks": {name: state},
//    "metrics_history": [{"epoch": int, "step": int, metric: float, ...}],
//    "checksum": int}

#include <ATen/core/Dict.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "metrics_csv.h"

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace sparsity::detail {

constexpr const char* kCheckpointFormat = "sparsity.Checkpoint";
constexpr int64_t kCheckpointVersion = 1;

/// {name: tensor} of the module's parameters and buffers, detached, on the CPU.
c10::impl::GenericDict model_state(const torch::nn::Module& model);
/// Copies `state` (from model_state) into the module's tensors in place. Every
/// parameter and buffer must be there with its shape, and nothing else:
/// otherwise std::runtime_error listing each missing, unexpected or misshapen
/// tensor.
void load_model_state(torch::nn::Module& model, const c10::IValue& state);

/// The bytes of the optimizer's serialize::OutputArchive, in a uint8 tensor.
at::Tensor optimizer_state(const torch::optim::Optimizer& optimizer);
/// Loads optimizer_state's bytes into `optimizer`, its tensors onto `device`.
void load_optimizer_state(torch::optim::Optimizer& optimizer, const c10::IValue& bytes, c10::Device device);

/// The state of LibTorch's default CPU generator, and setting it.
at::Tensor cpu_rng_state();
void set_cpu_rng_state(const c10::IValue& state);

c10::IValue metrics_to_ivalue(const std::vector<MetricsRow>& rows);
std::vector<MetricsRow> metrics_from_ivalue(const c10::IValue& value);

/// Writes `checkpoint` (a dict with string keys) to `path` atomically.
void write_checkpoint(const std::string& path, const c10::impl::GenericDict& checkpoint);
/// Reads and verifies a checkpoint: its checksum, format and version. A missing,
/// corrupt or foreign file is a std::runtime_error naming `path`.
c10::impl::GenericDict read_checkpoint(const std::string& path);
/// checkpoint[key], or std::runtime_error naming the missing key.
c10::IValue checkpoint_field(const c10::impl::GenericDict& checkpoint, const std::string& key);

}  // namespace sparsity::detail
