#include "component_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "sparsity/closest_match.h"
#include "sparsity/config_error.h"
#include "sparsity/message_text.h"

namespace sparsity::detail {

Config ComponentConfig::to_config() const { return Config{{"type", type}, {"args", args}}; }

ComponentConfig read_component(const std::string& owner, const Config& config, const std::string& key,
                               const std::string& kind, const std::vector<std::string>& types) {
  const std::string example = fmt::format("{}: {{type: {}, args: {{...}}}}", key, types.empty() ? "TYPE" : types.front());
  if (!config.contains(key)) {
    throw ConfigError(fmt::format("{}: missing key '{}': a {} callback needs one, e.g. {} (types: {})", owner, key,
                                  owner, example, fmt::join(types, ", ")),
                      std::vector<std::string>{}, ConfigError::At::kValue);
  }
  const ConfigValue& value = config.at(key);
  if (!std::holds_alternative<ConfigValue::Mapping>(value.variant())) {
    throw ConfigError(fmt::format("{}: expected a mapping {{type: {}, args: {{...}}}}, got {} '{}'", owner,
                                  types.empty() ? "TYPE" : types.front(), value.type_name(),
                                  message_text(value.to_string())),
                      key);
  }
  const Config& component = *std::get<ConfigValue::Mapping>(value.variant());
  try {
    component.check_keys(fmt::format("{}: {}", owner, key), {"type", "args"});
  } catch (const ConfigError& e) {
    throw e.nested_in(key);
  }
  if (!component.contains("type")) {
    throw ConfigError(fmt::format("{}: missing key 'type' in {}: the {} type, one of: {}", owner, key, kind,
                                  fmt::join(types, ", ")),
                      key);
  }
  ComponentConfig out;
  try {
    out.type = component.get<std::string>("type");
  } catch (const ConfigError& e) {
    throw e.nested_in(key);
  }
  if (std::find(types.begin(), types.end(), out.type) == types.end()) {
    throw ConfigError(fmt::format("unknown {} type '{}'{}; expected one of: {}", kind, message_text(out.type),
                                  did_you_mean(out.type, types), fmt::join(types, ", ")),
                      std::vector<std::string>{key, "type"});
  }
  if (component.contains("args")) {
    const ConfigValue& args = component.at("args");
    if (!std::holds_alternative<ConfigValue::Mapping>(args.variant())) {
      throw ConfigError(fmt::format("{}: expected a mapping of arguments (name: value) as {}.args, got {} '{}'", owner,
                                    key, args.type_name(), message_text(args.to_string())),
                        std::vector<std::string>{key, "args"});
    }
    out.args = *std::get<ConfigValue::Mapping>(args.variant());
  }
  return out;
}

ConfigError component_error(const std::string& kind, const std::string& type, const std::string& key,
                            const std::invalid_argument& error) {
  const auto* config_error = dynamic_cast<const ConfigError*>(&error);
  const std::string message = fmt::format("invalid arguments for the {} {}: {}", type, kind,
                                          config_error != nullptr ? config_error->message() : error.what());
  if (config_error == nullptr) return ConfigError(message, std::vector<std::string>{key, "args"});
  return ConfigError(message, config_error->nested_in("args").nested_in(key).key_path(), config_error->at());
}

}  // namespace sparsity::detail
