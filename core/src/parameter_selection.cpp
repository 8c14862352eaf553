#include "sparsity/parameter_selection.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fnmatch.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

namespace {

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return ::fnmatch(p.c_str(), name.c_str(), 0) == 0; });
}

}  // namespace

bool ParameterSelection::selects(const std::string& parameter_name) const {
  return (include.empty() || matches_any(include, parameter_name)) && !matches_any(exclude, parameter_name);
}

std::string sparsifier_name(const std::string& parameter_name) {
  std::string name = parameter_name;
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

std::vector<std::string> attach_parameters(torch::nn::Module& model, BaseDataSparsifier& sparsifier,
                                           const ParameterSelection& selection,
                                           const std::map<std::string, Config>& configs) {
  std::vector<std::string> attached;
  std::map<std::string, std::string> owners;  // sparsifier name -> dotted name
  for (const auto& item : model.named_parameters()) {
    if (!selection.selects(item.key())) continue;
    const std::string name = sparsifier_name(item.key());
    auto [it, inserted] = owners.emplace(name, item.key());
    if (!inserted) {
      throw std::invalid_argument(fmt::format("parameters '{}' and '{}' both map to the sparsifier name '{}'",
                                              it->second, item.key(), name));
    }
    auto config = configs.find(name);
    sparsifier.add_data(name, item.value(), config == configs.end() ? Config{} : config->second);
    attached.push_back(item.key());
  }
  if (attached.empty()) {
    throw std::invalid_argument(fmt::format(
        "no parameter of the model is selected (include: [{}], exclude: [{}])", fmt::join(selection.include, ", "),
        fmt::join(selection.exclude, ", ")));
  }
  return attached;
}

}  // namespace sparsity
