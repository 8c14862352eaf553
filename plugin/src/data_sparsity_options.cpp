#include "data_sparsity_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <stdexcept>

#include "sparsity/config_error.h"

namespace sparsity::detail {

std::vector<std::string> patterns_from(const Config& config, const std::string& key) {
  const ConfigValue& value = config.at(key);
  std::vector<std::string> patterns;
  if (const auto* one = std::get_if<std::string>(&value.variant())) {
    patterns.push_back(*one);
  } else if (const auto* list = std::get_if<ConfigValue::StringList>(&value.variant())) {
    patterns = *list;
  } else if (const auto* ints = std::get_if<ConfigValue::IntList>(&value.variant()); ints == nullptr || !ints->empty()) {
    throw ConfigError(fmt::format("{}: expected a parameter name pattern (a string) or a list of them, got {} ({})",
                                  key, value.type_name(), value.to_string()),
                      key);
  }
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (patterns[i].empty()) {
      throw ConfigError(fmt::format("{}: expected a parameter name pattern, got an empty string", key),
                        std::holds_alternative<std::string>(value.variant())
                            ? std::vector<std::string>{key}
                            : std::vector<std::string>{key, std::to_string(i)});
    }
  }
  return patterns;
}

void check_selects_a_parameter(const std::string& owner, const ParameterSelection& selection,
                               const torch::nn::Module& model) {
  std::vector<std::string> names;
  for (const auto& item : model.named_parameters()) names.push_back(item.key());
  if (std::none_of(names.begin(), names.end(), [&](const std::string& n) { return selection.selects(n); })) {
    throw std::invalid_argument(
        fmt::format("callback '{}' selects no parameter of the model (include: [{}], exclude: [{}]; parameters: {})",
                    owner, fmt::join(selection.include, ", "), fmt::join(selection.exclude, ", "),
                    fmt::join(names, ", ")));
  }
}

void check_copyable(const std::string& owner, const torch::nn::Module& model, const ModelFactory& factory) {
  try {
    (void)deep_copy(model, factory);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("{}: cannot copy the model to sparsify: {}", owner, e.what()));
  }
}

}  // namespace sparsity::detail
