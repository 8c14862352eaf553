#include "sparsity/lossy/activation_sparsity.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/utils.h>

#include <algorithm>
#include <stdexcept>

#include "activation_count.h"
#include "hard_threshold.h"
#include "layer_kind_table.h"
#include "sparsity/lossy/lossy_sparsifier.h"

namespace sparsity {
namespace {

// The layers whose input a sparse kernel could exploit: every kind but
// Identity (computes nothing) and Bilinear (two inputs).
bool is_measured_layer(const torch::nn::Module& m) {
  const auto kind = detail::layer_kind_of(m);
  return kind && *kind != LayerKind::Identity && *kind != LayerKind::Bilinear;
}

struct Walker {
  bool soft_as_hard;
  bool first_batch = true;
  size_t next_layer = 0;  // index into report.layers within a batch
  bool seen_first = false;
  ActivationSparsityReport report;

  void count(const std::string& name, const at::Tensor& x) {
    if (first_batch) {
      LayerActivationSparsity layer;
      layer.name = name;
      layer.kind = "input";
      report.layers.push_back(std::move(layer));
    }
    detail::count_activations(x, /*near_zero=*/0.0, report.layers.at(next_layer++));
  }

  at::Tensor run(torch::nn::SequentialImpl& seq, at::Tensor x, const std::string& prefix) {
    const auto names = seq.named_children();
    size_t i = 0;
    for (auto& any : seq) {
      const std::string name = prefix.empty() ? names[i].key() : prefix + "." + names[i].key();
      ++i;
      const auto module = any.ptr();
      if (auto* inner = dynamic_cast<torch::nn::SequentialImpl*>(module.get())) {
        x = run(*inner, x, name);
        continue;
      }
      if (is_measured_layer(*module)) {
        if (seen_first) count(name, x);
        seen_first = true;
      } else if (auto* soft = dynamic_cast<LossySparsifierImpl*>(module.get())) {
        if (soft_as_hard) {
          x = detail::hard_threshold(x, soft->eps);
          continue;
        }
      }
      x = any.any_forward(x).get<at::Tensor>();
    }
    return x;
  }
};

}  // namespace

double LayerActivationSparsity::fraction() const {
  return elements == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(elements);
}

double LayerActivationSparsity::near_zero_fraction() const {
  return elements == 0 ? 0.0 : static_cast<double>(near_zero) / static_cast<double>(elements);
}

double ActivationSparsityReport::total() const {
  return elements == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(elements);
}

double ActivationSparsityReport::total_near_zero() const {
  return elements == 0 ? 0.0 : static_cast<double>(near_zero) / static_cast<double>(elements);
}

std::string ActivationSparsityReport::to_string() const {
  // Near zeros and bytes are shown for site reports; the walk's lines are as before.
  const bool sites = std::any_of(layers.begin(), layers.end(), [](const auto& l) { return l.kind != "input"; });
  auto line = [&](const std::string& head, const LayerActivationSparsity& l) {
    std::string text = fmt::format("  {}: {:.2f}% zeros", head, 100.0 * l.fraction());
    if (sites) text += fmt::format(", {:.2f}% |x| <= {:g}", 100.0 * l.near_zero_fraction(), near_zero_tolerance);
    text += fmt::format(" ({} of {})", l.zeros, l.elements);
    if (sites) text += fmt::format(", {} bytes dense, {} bitmask + nonzeros", l.dense_bytes, l.sparse_bytes);
    return text;
  };
  std::string text;
  for (const auto& layer : layers) {
    const std::string head = layer.kind == "input" ? "input of " + layer.name
                                                   : fmt::format("output of {} ({})", layer.name, layer.kind);
    text += line(head, layer) + "\n";
  }
  LayerActivationSparsity sum;
  sum.zeros = zeros;
  sum.near_zero = near_zero;
  sum.elements = elements;
  sum.dense_bytes = dense_bytes;
  sum.sparse_bytes = sparse_bytes;
  return text + line("total", sum);
}

ActivationSparsityReport measure_activation_sparsity(torch::nn::Module& model, const at::Tensor& inputs,
                                                     int64_t batch_size, bool soft_as_hard) {
  auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(&model);
  if (seq == nullptr) {
    throw std::invalid_argument(fmt::format(
        "measure_activation_sparsity: the model must be a torch::nn::Sequential (nested Sequentials "
        "are descended into), got {}: LibTorch has no forward pre-hooks to observe "
        "the inputs of layers called from a custom forward",
        model.name()));
  }
  if (batch_size < 1) {
    throw std::invalid_argument(
        fmt::format("measure_activation_sparsity: batch_size must be >= 1, got {}", batch_size));
  }
  if (!inputs.defined() || inputs.dim() == 0) {
    throw std::invalid_argument("measure_activation_sparsity: inputs must be a tensor whose first dimension "
                                "indexes the examples");
  }
  const bool training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  Walker walker{soft_as_hard, true, 0, false, {}};
  try {
    for (const auto& batch : inputs.split(batch_size)) {
      walker.next_layer = 0;
      walker.seen_first = false;
      walker.run(*seq, batch, "");
      walker.first_batch = false;
    }
  } catch (...) {
    model.train(training);
    throw;
  }
  model.train(training);
  auto report = std::move(walker.report);
  detail::sum_layers(report);
  return report;
}

}  // namespace sparsity
