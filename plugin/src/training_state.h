#pragma once

// The state of a module, an optimizer and LibTorch's CPU generator as values
// a checkpoint can hold, and putting them back. Each can be checked first
// without changing anything, so that a checkpoint is found wrong before any of
// its pieces is applied.

#include <ATen/core/Dict.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity::detail {

/// {name: tensor} of the module's parameters and buffers, detached, on the CPU.
c10::impl::GenericDict model_state(const torch::nn::Module& model);
/// `state` (from model_state) checked against the module, which is not
/// changed: every parameter and buffer must be there with its shape, and
/// nothing else; otherwise std::runtime_error listing each missing, unexpected
/// or misshapen tensor.
c10::impl::GenericDict check_model_state(const torch::nn::Module& model, const c10::IValue& state);
/// Copies a state that check_model_state accepted into the module's tensors,
/// in place.
void copy_model_state(torch::nn::Module& model, const c10::impl::GenericDict& state);
/// check_model_state, then copy_model_state: on error the module is unchanged.
void load_model_state(torch::nn::Module& model, const c10::IValue& state);

/// The bytes of the optimizer's serialize::OutputArchive, in a uint8 tensor.
at::Tensor optimizer_state(const torch::optim::Optimizer& optimizer);
/// Loads optimizer_state's bytes into `optimizer`, its tensors onto `device`.
/// Loading is the only check LibTorch offers of an optimizer's archive: to
/// check without changing an optimizer, load into a scratch one.
void load_optimizer_state(torch::optim::Optimizer& optimizer, const c10::IValue& bytes, c10::Device device);

/// The state of LibTorch's default CPU generator.
at::Tensor cpu_rng_state();
/// `state` as a CPU generator's state, tried on a scratch generator (the
/// default one is not changed): std::runtime_error if it is not one.
at::Tensor check_cpu_rng_state(const c10::IValue& state);
/// Sets the default CPU generator to a state that check_cpu_rng_state accepted.
void set_cpu_rng_state(const at::Tensor& state);

}  // namespace sparsity::detail
