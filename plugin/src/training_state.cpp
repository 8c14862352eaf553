#include "training_state.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsity/message_text.h"
#include "sparsity/state_file.h"

namespace sparsity::detail {

namespace {

// Every parameter then every buffer, by qualified name (as state_dict() in Python).
std::vector<std::pair<std::string, at::Tensor>> named_tensors(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters(/*recurse=*/true))
    if (item.value().defined()) tensors.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers(/*recurse=*/true))
    if (item.value().defined()) tensors.emplace_back(item.key(), item.value());
  return tensors;
}

}  // namespace

c10::impl::GenericDict model_state(const torch::nn::Module& model) {
  c10::impl::GenericDict state = new_state_dict();
  for (const auto& [name, tensor] : named_tensors(model)) state.insert(name, tensor.detach().to(at::kCPU));
  return state;
}

c10::impl::GenericDict check_model_state(const torch::nn::Module& model, const c10::IValue& value) {
  if (!value.isGenericDict()) throw std::runtime_error(fmt::format("'model' is a {}, not a dict", value.tagKind()));
  const c10::impl::GenericDict state = value.toGenericDict();
  std::vector<std::string> problems;
  std::set<std::string> expected;
  for (const auto& [name, tensor] : named_tensors(model)) {
    expected.insert(name);
    const auto found = state.find(name);
    if (found == state.end()) {
      problems.push_back(fmt::format("'{}' (shape {}) is missing from the checkpoint", name, shape_text(tensor)));
    } else if (!found->value().isTensor()) {
      problems.push_back(fmt::format("'{}' is a {} in the checkpoint, not a tensor", name, found->value().tagKind()));
    } else if (found->value().toTensor().sizes() != tensor.sizes()) {
      problems.push_back(fmt::format("'{}' has shape {} in the checkpoint but {} in the model", name,
                                     shape_text(found->value().toTensor()), shape_text(tensor)));
    }
  }
  for (const auto& entry : state) {
    const std::string name = entry.key().isString() ? entry.key().toStringRef() : entry.key().tagKind();
    if (expected.count(name) == 0) problems.push_back(fmt::format("'{}' is in the checkpoint but not in the model", name));
  }
  if (!problems.empty())
    throw std::runtime_error(fmt::format("the model does not match the checkpoint's: {}", fmt::join(problems, "; ")));
  return state;
}

void copy_model_state(torch::nn::Module& model, const c10::impl::GenericDict& state) {
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : named_tensors(model)) {
    at::Tensor target = tensor;  // shares the module's tensor
    target.copy_(state.at(name).toTensor());
  }
}

void load_model_state(torch::nn::Module& model, const c10::IValue& state) {
  copy_model_state(model, check_model_state(model, state));
}

namespace {

// LibTorch's Optimizer::load restores the per-parameter state but not the
// param groups' options, so a learning rate changed during training (by a
// scheduler or a callback) would be lost; the archive carries them as well.
const char* const kLearningRatesKey = "sparsity/learning_rates";

std::optional<std::vector<double>> learning_rates(const torch::optim::Optimizer& optimizer) {
  std::vector<double> rates;
  try {
    for (const auto& group : optimizer.param_groups()) rates.push_back(group.options().get_lr());
  } catch (const std::exception&) {
    return std::nullopt;  // options of a custom optimizer without get_lr()
  }
  return rates;
}

}  // namespace

at::Tensor optimizer_state(const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  if (const auto rates = learning_rates(optimizer))
    archive.write(kLearningRatesKey, at::tensor(*rates, at::kDouble), /*is_buffer=*/true);
  std::ostringstream stream;
  archive.save_to(stream);
  const std::string bytes = stream.str();
  at::Tensor tensor = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  if (!bytes.empty()) std::memcpy(tensor.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return tensor;
}

void load_optimizer_state(torch::optim::Optimizer& optimizer, const c10::IValue& value, c10::Device device) {
  if (!value.isTensor() || value.toTensor().scalar_type() != at::kByte || value.toTensor().dim() != 1)
    throw std::runtime_error("'optimizer' is not a 1-D uint8 tensor of the optimizer's archive");
  const at::Tensor bytes = value.toTensor().contiguous();
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()),
                      device);
    optimizer.load(archive);
    at::Tensor rates;
    if (archive.try_read(kLearningRatesKey, rates, /*is_buffer=*/true)) {
      rates = rates.to(at::kCPU);
      if (rates.numel() != static_cast<int64_t>(optimizer.param_groups().size()))
        throw std::runtime_error(fmt::format("the checkpoint has the learning rates of {} param groups, the optimizer "
                                             "has {}",
                                             rates.numel(), optimizer.param_groups().size()));
      for (size_t i = 0; i < optimizer.param_groups().size(); ++i)
        optimizer.param_groups()[i].options().set_lr(rates[static_cast<int64_t>(i)].item<double>());
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("the optimizer's state does not load into this optimizer (is it another type, or "
                             "over other parameters?): " +
                             error_text(e));
  }
}

at::Tensor cpu_rng_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

at::Tensor check_cpu_rng_state(const c10::IValue& value) {
  if (!value.isTensor() || value.toTensor().scalar_type() != at::kByte)
    throw std::runtime_error("'rng' is not a uint8 tensor of a generator state");
  // Only the generator itself can tell a state it accepts.
  at::Generator scratch = at::detail::createCPUGenerator();
  try {
    scratch.set_state(value.toTensor());
  } catch (const std::exception& e) {
    throw std::runtime_error("'rng' is not a state of LibTorch's CPU generator: " + error_text(e));
  }
  return value.toTensor();
}

void set_cpu_rng_state(const at::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace sparsity::detail
