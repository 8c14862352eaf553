#include "container_rewire.h"

#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <utility>
#include <vector>

namespace sparsity::detail {

using torch::nn::AnyModule;
using torch::nn::Module;

bool is_container(const Module& m) {
  return dynamic_cast<const torch::nn::SequentialImpl*>(&m) != nullptr ||
         dynamic_cast<const torch::nn::ModuleListImpl*>(&m) != nullptr ||
         dynamic_cast<const torch::nn::ModuleDictImpl*>(&m) != nullptr;
}

void rewire(Module& container, const ReplaceChild& replace) {
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

std::string child_path(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace sparsity::detail
