#include "sparsity/lossy/hard_conversion.h"

#include <torch/nn/module.h>

#include "container_rewire.h"
#include "sparsity/lossy/lossy_sparsifier.h"

namespace sparsity {
namespace {

using torch::nn::AnyModule;
using torch::nn::Module;

struct HardConverter {
  int64_t converted = 0;

  void visit(Module& m) {
    if (auto* soft = dynamic_cast<LossySparsifierImpl*>(&m)) {
      // Not a container's child: the module cannot be replaced, only switched.
      if (!soft->hard()) {
        soft->set_hard(true);
        ++converted;
      }
      return;
    }
    if (detail::is_container(m)) {
      detail::rewire(m, [&](const std::string&, const std::shared_ptr<Module>& child,
                            const AnyModule*) -> std::optional<AnyModule> {
        if (auto soft = std::dynamic_pointer_cast<LossySparsifierImpl>(child)) return replacement(*soft);
        visit(*child);
        return std::nullopt;
      });
      return;
    }
    for (const auto& child : m.children()) visit(*child);
  }

  AnyModule replacement(const LossySparsifierImpl& soft) {
    LossyHardSparsifier hard(soft);
    if (!soft.is_training()) hard->eval();
    ++converted;
    return AnyModule(hard.ptr());
  }
};

}  // namespace

int64_t convert_to_hard(Module& model) {
  HardConverter converter;
  converter.visit(model);
  return converter.converted;
}

}  // namespace sparsity
