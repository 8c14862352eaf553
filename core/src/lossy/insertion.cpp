#include "sparsity/lossy/insertion.h"

#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <stdexcept>
#include <utility>

#include "sparsity/logging.h"
#include "sparsity/lossy/activation_collector.h"

namespace sparsity {
namespace {

using torch::nn::AnyModule;
using torch::nn::Module;

constexpr LayerKind kAllKinds[] = {LayerKind::Linear,          LayerKind::Conv1d,
                                   LayerKind::Conv2d,          LayerKind::Conv3d,
                                   LayerKind::ConvTranspose1d, LayerKind::ConvTranspose2d,
                                   LayerKind::ConvTranspose3d, LayerKind::Identity,
                                   LayerKind::Bilinear};

// The kind of `m`, and an AnyModule of its concrete type (AnyModule needs it).
std::optional<std::pair<LayerKind, AnyModule>> classify(const std::shared_ptr<Module>& m) {
#define SPARSITY_TRY_KIND(K)                                                       \
  if (auto p = std::dynamic_pointer_cast<torch::nn::K##Impl>(m)) {                 \
    return std::make_pair(LayerKind::K, AnyModule(std::move(p)));                  \
  }
  SPARSITY_TRY_KIND(Linear)
  SPARSITY_TRY_KIND(Conv1d)
  SPARSITY_TRY_KIND(Conv2d)
  SPARSITY_TRY_KIND(Conv3d)
  SPARSITY_TRY_KIND(ConvTranspose1d)
  SPARSITY_TRY_KIND(ConvTranspose2d)
  SPARSITY_TRY_KIND(ConvTranspose3d)
  SPARSITY_TRY_KIND(Identity)
  SPARSITY_TRY_KIND(Bilinear)
#undef SPARSITY_TRY_KIND
  return std::nullopt;
}

bool is_container(const Module& m) {
  return dynamic_cast<const torch::nn::SequentialImpl*>(&m) != nullptr ||
         dynamic_cast<const torch::nn::ModuleListImpl*>(&m) != nullptr ||
         dynamic_cast<const torch::nn::ModuleDictImpl*>(&m) != nullptr;
}

// Sparsified(layer, LossySparsifier or LossyHardSparsifier): already done.
bool is_wrapper(const Module& m) { return dynamic_cast<const SparsifiedImpl*>(&m) != nullptr; }

// Returns the replacement of a container's child, or nullopt to keep it.
using Replace = std::function<std::optional<AnyModule>(const std::string& name,
                                                       const std::shared_ptr<Module>& child,
                                                       const AnyModule* any)>;

// Rewires the children of a Sequential, ModuleList or ModuleDict in place (the
// object keeps its identity, so whoever holds it sees the new children).
void rewire(Module& container, const Replace& replace) {
  const bool training = container.is_training();
  if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(&container)) {
    const auto names = seq->named_children();
    torch::nn::SequentialImpl fresh;
    bool changed = false;
    size_t i = 0;
    for (AnyModule& any : *seq) {
      const std::string& name = names[i].key();
      auto replacement = replace(name, any.ptr(), &any);
      changed = changed || replacement.has_value();
      fresh.push_back(name, replacement ? std::move(*replacement) : any);
      ++i;
    }
    if (!changed) return;
    *seq = fresh;  // Module is copyable: the same object now holds the new children.
    if (!training) seq->train(false);
  } else if (auto* list = dynamic_cast<torch::nn::ModuleListImpl*>(&container)) {
    torch::nn::ModuleListImpl fresh;
    bool changed = false;
    size_t i = 0;
    for (const auto& child : *list) {
      auto replacement = replace(std::to_string(i), child, nullptr);
      changed = changed || replacement.has_value();
      fresh.push_back(replacement ? replacement->ptr() : child);
      ++i;
    }
    if (!changed) return;
    *list = fresh;
    if (!training) list->train(false);
  } else if (auto* dict = dynamic_cast<torch::nn::ModuleDictImpl*>(&container)) {
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> replacements;
    for (const auto& item : dict->items()) {
      if (auto replacement = replace(item.first, item.second, nullptr)) {
        replacements.emplace_back(item.first, replacement->ptr());
      }
    }
    dict->update(replacements);  // replaces existing keys in place
  }
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

struct Inserter {
  double eps_start;
  const SparsifierInsertionOptions& options;
  std::vector<InsertedSparsifier> inserted;
  std::vector<std::string> skipped;

  bool wanted(LayerKind kind) const {
    const auto& kinds = options.layer_kinds();
    return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  }

  void visit(Module& m, const std::string& prefix) {
    if (is_wrapper(m)) return;
    if (is_container(m)) {
      rewire(m, [&](const std::string& name, const std::shared_ptr<Module>& child,
                    const AnyModule* any) -> std::optional<AnyModule> {
        const auto kind = classify(child);
        if (!kind || !wanted(kind->first)) {
          visit(*child, join(prefix, name));
          return std::nullopt;
        }
        LossySparsifier sparse(LossySparsifierOptions().eps(eps_start).a(options.a()));
        sparse->set_collector(options.collector());
        if (!child->is_training()) sparse->eval();
        Sparsified wrapper(any != nullptr ? *any : kind->second, AnyModule(sparse));
        if (!child->is_training()) wrapper->eval();
        inserted.push_back({join(prefix, name), sparse});
        return AnyModule(wrapper.ptr());
      });
      return;
    }
    for (const auto& item : m.named_children()) {
      const auto kind = classify(item.value());
      if (kind && wanted(kind->first)) {
        skipped.push_back(join(prefix, item.key()));
      } else {
        visit(*item.value(), join(prefix, item.key()));
      }
    }
  }
};

}  // namespace

std::vector<LayerKind> default_layer_kinds() { return {std::begin(kAllKinds), std::end(kAllKinds)}; }

const char* to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::Linear: return "Linear";
    case LayerKind::Conv1d: return "Conv1d";
    case LayerKind::Conv2d: return "Conv2d";
    case LayerKind::Conv3d: return "Conv3d";
    case LayerKind::ConvTranspose1d: return "ConvTranspose1d";
    case LayerKind::ConvTranspose2d: return "ConvTranspose2d";
    case LayerKind::ConvTranspose3d: return "ConvTranspose3d";
    case LayerKind::Identity: return "Identity";
    case LayerKind::Bilinear: return "Bilinear";
  }
  return "unknown";
}

LayerKind layer_kind_from_string(const std::string& name) {
  std::string accepted;
  for (LayerKind kind : kAllKinds) {
    if (name == to_string(kind)) return kind;
    accepted += (accepted.empty() ? "" : ", ") + std::string(to_string(kind));
  }
  throw std::invalid_argument("unknown layer kind '" + name + "' (accepted: " + accepted + ")");
}

std::vector<InsertedSparsifier> add_sparsifier_layers(Module& model, double eps_start,
                                                      const SparsifierInsertionOptions& options) {
  if (!std::isfinite(eps_start)) {
    throw std::invalid_argument("add_sparsifier_layers: eps_start must be finite, got " +
                                std::to_string(eps_start));
  }
  // Checks `a` once, before anything is rewired.
  LossySparsifierImpl check(LossySparsifierOptions().eps(eps_start).a(options.a()));
  Inserter inserter{eps_start, options, {}, {}};
  inserter.visit(model, "");
  if (!inserter.skipped.empty()) {
    std::string names;
    for (const auto& n : inserter.skipped) names += (names.empty() ? "" : ", ") + n;
    logger()->warn(
        "add_sparsifier_layers: {} layer(s) held directly by a custom module cannot be rewired "
        "from C++ (place a LossySparsifier after them yourself): {}",
        inserter.skipped.size(), names);
  }
  return std::move(inserter.inserted);
}

std::vector<InsertedSparsifier> add_sparsifier_layers(Module& model, double eps_start,
                                                      const std::vector<LayerKind>& layer_kinds) {
  return add_sparsifier_layers(model, eps_start, SparsifierInsertionOptions().layer_kinds(layer_kinds));
}

SparsifiedImpl::SparsifiedImpl(AnyModule layer, AnyModule sparsifier) {
  const auto p = sparsifier.ptr();
  if (!std::dynamic_pointer_cast<LossySparsifierImpl>(p) && !std::dynamic_pointer_cast<LossyHardSparsifierImpl>(p)) {
    throw std::invalid_argument("Sparsified: the second module must be a LossySparsifier or LossyHardSparsifier, got " +
                                p->name());
  }
  push_back("0", std::move(layer));
  push_back("sparse", std::move(sparsifier));
}

at::Tensor SparsifiedImpl::forward(const at::Tensor& input, const at::Tensor& input2) {
  auto it = begin();
  at::Tensor h = input2.defined() ? it->any_forward(input, input2).get<at::Tensor>()
                                  : it->any_forward(input).get<at::Tensor>();
  for (++it; it != end(); ++it) h = it->any_forward(h).get<at::Tensor>();
  return h;
}

std::shared_ptr<Module> SparsifiedImpl::clone(const c10::optional<c10::Device>& device) const {
  auto copy = std::make_shared<SparsifiedImpl>();
  const auto names = named_children();
  size_t i = 0;
  for (const auto& any : *this) copy->push_back(names[i++].key(), any.clone(device));
  if (!is_training()) copy->eval();
  return copy;
}

Sparsified sparsified(AnyModule layer, const LossySparsifierOptions& options,
                      std::shared_ptr<ActivationCollector> collector) {
  LossySparsifier sparse(options);
  sparse->set_collector(std::move(collector));
  return Sparsified(std::move(layer), AnyModule(sparse));
}

std::vector<LossySparsifier> sparsifier_layers(Module& model) {
  std::vector<LossySparsifier> layers;
  // include_self=false: the model need not be held by a shared_ptr.
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (auto p = std::dynamic_pointer_cast<LossySparsifierImpl>(m)) layers.emplace_back(p);
  }
  return layers;
}

int64_t attach_collector(Module& model, const std::shared_ptr<ActivationCollector>& collector) {
  int64_t n = 0;
  for (auto& layer : sparsifier_layers(model)) {
    layer->set_collector(collector);
    ++n;
  }
  return n;
}

int64_t multiply_sharpness(Module& model, double factor) {
  if (!(factor > 0.0) || !std::isfinite(factor)) {
    throw std::invalid_argument("multiply_sharpness: factor must be > 0 and finite, got " +
                                std::to_string(factor));
  }
  int64_t n = 0;
  for (auto& layer : sparsifier_layers(model)) {
    layer->set_a(layer->a() * factor);
    ++n;
  }
  return n;
}

SharpnessSchedule::SharpnessSchedule(SharpnessScheduleOptions options) : options_(options) {
  if (!(options_.factor() > 0.0) || !std::isfinite(options_.factor())) {
    throw std::invalid_argument("SharpnessSchedule: factor must be > 0 and finite, got " +
                                std::to_string(options_.factor()));
  }
  if (options_.period() < 1) {
    throw std::invalid_argument("SharpnessSchedule: period must be >= 1, got " +
                                std::to_string(options_.period()));
  }
}

bool SharpnessSchedule::epoch_end(Module& model, int64_t epoch) const {
  if ((epoch + 1) % options_.period() != 0) return false;
  multiply_sharpness(model, options_.factor());
  return true;
}

int64_t convert_to_hard(Module& model) {
  int64_t converted = 0;
  std::function<void(Module&)> visit = [&](Module& m) {
    if (is_container(m)) {
      rewire(m, [&](const std::string&, const std::shared_ptr<Module>& child,
                    const AnyModule*) -> std::optional<AnyModule> {
        if (auto soft = std::dynamic_pointer_cast<LossySparsifierImpl>(child)) {
          LossyHardSparsifier hard(*soft);
          if (!soft->is_training()) hard->eval();
          ++converted;
          return AnyModule(hard.ptr());
        }
        visit(*child);
        return std::nullopt;
      });
      return;
    }
    for (const auto& child : m.children()) {
      if (auto soft = std::dynamic_pointer_cast<LossySparsifierImpl>(child)) {
        if (!soft->hard()) {
          soft->set_hard(true);
          ++converted;
        }
      } else {
        visit(*child);
      }
    }
  };
  if (auto soft = dynamic_cast<LossySparsifierImpl*>(&model)) {
    if (!soft->hard()) {
      soft->set_hard(true);
      ++converted;
    }
    return converted;
  }
  visit(model);
  return converted;
}

}  // namespace sparsity
