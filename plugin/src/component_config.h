#pragma once

// `{type: NAME, args: {...}}`: how a callback's config names a registered
// data sparsifier or data scheduler.

#include <string>
#include <utility>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/config_error.h"

namespace sparsity::detail {

/// A registered component's type name and arguments.
struct ComponentConfig {
  std::string type;
  Config args;

  Config to_config() const;
};

/// Reads `config[key]` as {type, args}. `kind` ("data sparsifier") names it in
/// messages; `types` are the registered names. Mistakes are ConfigErrors with
/// their key path from `config` (e.g. {"sparsifier", "type"}).
ComponentConfig read_component(const std::string& owner, const Config& config, const std::string& key,
                               const std::string& kind, const std::vector<std::string>& types);

/// `error`, thrown while building the component of `type` under `key`, as a
/// ConfigError from the callback's config: "invalid arguments for the TYPE
/// KIND: ...", at `key`.args.KEY when it is a ConfigError naming a key.
ConfigError component_error(const std::string& kind, const std::string& type, const std::string& key,
                            const std::invalid_argument& error);

}  // namespace sparsity::detail
