#include "sparsity/lossy/insertion.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <utility>

#include "container_rewire.h"
#include "layer_kind_table.h"
#include "sparsity/logging.h"
#include "sparsity/lossy/activation_collector.h"

namespace sparsity {
namespace {

using torch::nn::AnyModule;
using torch::nn::Module;

struct Inserter {
  double eps_start;
  const SparsifierInsertionOptions& options;
  /// false: only find the layers that cannot be reached, change nothing.
  bool modify = true;
  std::vector<InsertedSparsifier> inserted;
  std::vector<std::string> skipped;

  bool wanted(LayerKind kind) const {
    const auto& kinds = options.layer_kinds();
    return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  }

  void visit(Module& m, const std::string& prefix) {
    if (auto* slot = dynamic_cast<SparsifiedImpl*>(&m)) {
      if (!slot->sparsifier()) fill(*slot, prefix);  // a filled slot is done
      return;
    }
    if (detail::is_container(m) && modify) {
      detail::rewire(m, [&](const std::string& name, const std::shared_ptr<Module>& child,
                            const AnyModule* any) -> std::optional<AnyModule> {
        const auto kind = detail::classify_layer(child);
        if (!kind || !wanted(kind->first)) {
          visit(*child, detail::child_path(prefix, name));
          return std::nullopt;
        }
        return wrap(detail::child_path(prefix, name), *child, any != nullptr ? *any : kind->second);
      });
      return;
    }
    const bool container = detail::is_container(m);
    for (const auto& item : m.named_children()) {
      const auto kind = detail::layer_kind_of(*item.value());
      if (kind && wanted(*kind)) {
        if (!container) skipped.push_back(detail::child_path(prefix, item.key()));
      } else {
        visit(*item.value(), detail::child_path(prefix, item.key()));
      }
    }
  }

  LossySparsifier make_sparsifier(const Module& layer) {
    LossySparsifier sparse(LossySparsifierOptions().eps(eps_start).a(options.a()));
    sparse->set_collector(options.collector());
    if (!layer.is_training()) sparse->eval();
    return sparse;
  }

  // Sparsified(layer, a new LossySparsifier), in the layer's train/eval mode.
  AnyModule wrap(const std::string& path, const Module& layer, const AnyModule& any) {
    LossySparsifier sparse = make_sparsifier(layer);
    Sparsified wrapper(any, AnyModule(sparse));
    if (!layer.is_training()) wrapper->eval();
    inserted.push_back({path, sparse});
    return AnyModule(wrapper.ptr());
  }

  // An insertable slot whose layer is wanted gets its sparsifier in place.
  void fill(SparsifiedImpl& slot, const std::string& path) {
    const auto layer = slot.layer();
    const auto kind = layer ? detail::layer_kind_of(*layer) : std::nullopt;
    if (!modify || !kind || !wanted(*kind)) return;
    LossySparsifier sparse = make_sparsifier(*layer);
    slot.set_sparsifier(AnyModule(sparse));
    inserted.push_back({path, sparse});
  }
};

}  // namespace

std::vector<InsertedSparsifier> add_sparsifier_layers(Module& model, double eps_start,
                                                      const SparsifierInsertionOptions& options) {
  if (!std::isfinite(eps_start)) {
    throw std::invalid_argument(fmt::format("add_sparsifier_layers: eps_start must be finite, got {}", eps_start));
  }
  // Checks `a` once, before anything is rewired.
  LossySparsifierImpl check(LossySparsifierOptions().eps(eps_start).a(options.a()));
  constexpr const char* kUnreachable =
      "add_sparsifier_layers: {} layer(s) held directly by a custom module cannot be reached from C++ (declare "
      "them as sparsity::insertable(...) slots, or place a LossySparsifier after them yourself): {}";
  if (options.require_all()) {
    Inserter finder{eps_start, options, /*modify=*/false, {}, {}};
    finder.visit(model, "");
    if (!finder.skipped.empty()) {
      throw std::invalid_argument(
          fmt::format(fmt::runtime(kUnreachable), finder.skipped.size(), fmt::join(finder.skipped, ", ")));
    }
  }
  Inserter inserter{eps_start, options, /*modify=*/true, {}, {}};
  inserter.visit(model, "");
  if (!inserter.skipped.empty()) {
    logger()->warn("{}", fmt::format(fmt::runtime(kUnreachable), inserter.skipped.size(),
                                     fmt::join(inserter.skipped, ", ")));
  }
  return std::move(inserter.inserted);
}

std::vector<InsertedSparsifier> add_sparsifier_layers(Module& model, double eps_start,
                                                      const std::vector<LayerKind>& layer_kinds) {
  return add_sparsifier_layers(model, eps_start, SparsifierInsertionOptions().layer_kinds(layer_kinds));
}

}  // namespace sparsity
