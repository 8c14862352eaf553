#include "sparsity/lossy/layer_kind.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <iterator>
#include <stdexcept>

#include "layer_kind_table.h"

namespace sparsity {
namespace {

using torch::nn::AnyModule;
using torch::nn::Module;

struct KindEntry {
  LayerKind kind;
  const char* name;
  bool (*is)(const Module&);
  std::optional<AnyModule> (*wrap)(const std::shared_ptr<Module>&);
};

template <class Impl>
bool is(const Module& m) {
  return dynamic_cast<const Impl*>(&m) != nullptr;
}

template <class Impl>
std::optional<AnyModule> wrap(const std::shared_ptr<Module>& m) {
  if (auto p = std::dynamic_pointer_cast<Impl>(m)) return AnyModule(std::move(p));
  return std::nullopt;
}

#define SPARSITY_KIND(K) KindEntry{LayerKind::K, #K, &is<torch::nn::K##Impl>, &wrap<torch::nn::K##Impl>}
// In LayerKind's order: to_string indexes it by the enum's value.
constexpr KindEntry kKinds[] = {
    SPARSITY_KIND(Linear),          SPARSITY_KIND(Conv1d),          SPARSITY_KIND(Conv2d),
    SPARSITY_KIND(Conv3d),          SPARSITY_KIND(ConvTranspose1d), SPARSITY_KIND(ConvTranspose2d),
    SPARSITY_KIND(ConvTranspose3d), SPARSITY_KIND(Identity),        SPARSITY_KIND(Bilinear),
};
#undef SPARSITY_KIND

constexpr bool in_enum_order() {
  for (size_t i = 0; i < std::size(kKinds); ++i) {
    if (static_cast<size_t>(kKinds[i].kind) != i) return false;
  }
  return true;
}
static_assert(in_enum_order(), "kKinds must list LayerKind's values in order");
static_assert(std::size(kKinds) == static_cast<size_t>(LayerKind::Bilinear) + 1,
              "kKinds must list every LayerKind (a new last value: update this check)");

}  // namespace

std::vector<LayerKind> default_layer_kinds() {
  std::vector<LayerKind> kinds;
  for (const auto& entry : kKinds) kinds.push_back(entry.kind);
  return kinds;
}

const char* to_string(LayerKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < std::size(kKinds) ? kKinds[i].name : "unknown";
}

LayerKind layer_kind_from_string(const std::string& name) {
  std::vector<const char*> accepted;
  for (const auto& entry : kKinds) {
    if (name == entry.name) return entry.kind;
    accepted.push_back(entry.name);
  }
  throw std::invalid_argument(
      fmt::format("unknown layer kind '{}' (accepted: {})", name, fmt::join(accepted, ", ")));
}

namespace detail {

std::optional<LayerKind> layer_kind_of(const Module& m) {
  for (const auto& entry : kKinds) {
    if (entry.is(m)) return entry.kind;
  }
  return std::nullopt;
}

std::optional<std::pair<LayerKind, AnyModule>> classify_layer(const std::shared_ptr<Module>& m) {
  for (const auto& entry : kKinds) {
    if (auto any = entry.wrap(m)) return std::make_pair(entry.kind, std::move(*any));
  }
  return std::nullopt;
}

}  // namespace detail
}  // namespace sparsity
