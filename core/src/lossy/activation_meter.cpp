#include "sparsity/lossy/activation_meter.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <cmath>
#include <stdexcept>

#include "activation_count.h"
#include "container_rewire.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/lossy/sparsified.h"

namespace sparsity {
namespace {

using torch::nn::Module;

// "soft", "hard" or "dense": what a site's outputs are.
std::string site_kind(const Module& m) {
  const Module* sparsifier = &m;
  if (const auto* slot = dynamic_cast<const SparsifiedImpl*>(&m)) {
    const auto inner = slot->sparsifier();
    if (!inner) return "dense";
    sparsifier = inner.get();
  }
  if (const auto* soft = dynamic_cast<const LossySparsifierImpl*>(sparsifier)) return soft->hard() ? "hard" : "soft";
  return "hard";
}

}  // namespace

void ActivationSite::report_output(const at::Tensor& output) const {
  if (meter_ != nullptr) meter_->record(site_, output);
}

ActivationMeter::ActivationMeter(Module& model, double near_zero) : near_zero_(near_zero) {
  if (!(near_zero >= 0.0) || !std::isfinite(near_zero)) {
    throw std::invalid_argument(fmt::format("ActivationMeter: near_zero must be >= 0 and finite, got {}", near_zero));
  }
  // Sites below a slot (its sparsifier) are the slot's: not counted twice.
  auto attach = [&](Module& m, const std::string& path) -> ActivationSite* {
    auto* site = dynamic_cast<ActivationSite*>(&m);
    if (site == nullptr) return nullptr;
    const std::string name = path.empty() ? m.name() : path;
    if (site->meter_ != nullptr) {
      detach();
      throw std::invalid_argument(fmt::format(
          "ActivationMeter: '{}' already reports to another ActivationMeter (one meter per model at a time)", name));
    }
    site->meter_ = this;
    site->site_ = stats_.size();
    LayerActivationSparsity stats;
    stats.name = name;
    stats.kind = site_kind(m);
    stats_.push_back(std::move(stats));
    return site;
  };
  std::function<void(const std::shared_ptr<Module>&, const std::string&)> visit =
      [&](const std::shared_ptr<Module>& m, const std::string& path) {
        if (ActivationSite* site = attach(*m, path)) {
          child_sites_.emplace_back(m, site);
          return;
        }
        for (const auto& child : m->named_children()) visit(child.value(), detail::child_path(path, child.key()));
      };
  self_site_ = attach(model, "");
  if (self_site_ != nullptr) return;
  for (const auto& child : model.named_children()) visit(child.value(), child.key());
}

ActivationMeter::~ActivationMeter() { detach(); }

void ActivationMeter::detach() {
  auto release = [this](ActivationSite* site) {
    if (site->meter_ == this) site->meter_ = nullptr;
  };
  if (self_site_ != nullptr) release(self_site_);
  for (const auto& [module, site] : child_sites_) {
    if (const auto alive = module.lock()) release(site);
  }
}

void ActivationMeter::record(size_t site, const at::Tensor& output) {
  detail::count_activations(output, near_zero_, stats_.at(site));
}

void ActivationMeter::reset() {
  for (auto& s : stats_) {
    s.zeros = s.near_zero = s.elements = s.dense_bytes = s.sparse_bytes = 0;
  }
}

ActivationSparsityReport ActivationMeter::report() const {
  ActivationSparsityReport report;
  report.near_zero_tolerance = near_zero_;
  for (const auto& s : stats_) {
    if (s.elements > 0) report.layers.push_back(s);
  }
  detail::sum_layers(report);
  return report;
}

ActivationSparsityReport measure_activation_sparsity_at_sites(Module& model,
                                                              const std::function<at::Tensor(const at::Tensor&)>& forward,
                                                              const at::Tensor& inputs,
                                                              const SiteMeasurementOptions& options) {
  if (options.batch_size() < 1) {
    throw std::invalid_argument(
        fmt::format("measure_activation_sparsity_at_sites: batch_size must be >= 1, got {}", options.batch_size()));
  }
  if (!inputs.defined() || inputs.dim() == 0) {
    throw std::invalid_argument("measure_activation_sparsity_at_sites: inputs must be a tensor whose first dimension "
                                "indexes the examples");
  }
  if (!forward) throw std::invalid_argument("measure_activation_sparsity_at_sites: forward is empty");
  // Soft layers switched to hard for the measurement, switched back after.
  std::vector<LossySparsifierImpl*> switched;
  if (options.soft_as_hard()) {
    if (auto* self = dynamic_cast<LossySparsifierImpl*>(&model); self != nullptr && !self->hard()) {
      switched.push_back(self);
    }
    for (const auto& m : model.modules(/*include_self=*/false)) {
      if (auto* soft = dynamic_cast<LossySparsifierImpl*>(m.get()); soft != nullptr && !soft->hard()) {
        switched.push_back(soft);
      }
    }
    for (auto* soft : switched) soft->set_hard(true);
  }
  const bool training = model.is_training();
  auto restore = [&] {
    for (auto* soft : switched) soft->set_hard(false);
    model.train(training);
  };
  try {
    model.eval();
    ActivationMeter meter(model, options.near_zero());
    torch::NoGradGuard no_grad;
    for (const auto& batch : inputs.split(options.batch_size())) forward(batch);
    auto report = meter.report();
    restore();
    return report;
  } catch (...) {
    restore();
    throw;
  }
}

}  // namespace sparsity
