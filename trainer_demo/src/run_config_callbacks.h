#pragma once
// The `callbacks` list of a run config. The demo knows no callback type:
// each entry is handed to the callback registry, built once to check it, and
// written back as the callback's own to_config().

#include <optional>
#include <vector>

#include "located_yaml.h"
#include "run_config.h"

namespace sparsity::demo::detail {

/// `callbacks` (`v` null when the key is absent), with names given and
/// defaulted, each callback built once, and the pairing of the callback that
/// drives lossy layers with `model.lossy` (`lossy_at`: its value when given).
void read_callbacks(const Reader& r, const Value* v, RunConfig& config, const std::optional<Value>& lossy_at);

/// The list as to_yaml_text writes it.
void write_callbacks(YAML::Emitter& out, const std::vector<CallbackConfig>& callbacks);

}  // namespace sparsity::demo::detail
