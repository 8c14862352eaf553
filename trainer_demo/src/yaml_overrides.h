#pragma once
// Command-line overrides of a run config: "dotted.path=value" applied to the
// parsed YAML tree before it is checked.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace sparsity::demo {

/// A node an override put into the tree (its value, or a mapping it created on
/// the way), with the override's text: errors found later in that node, or
/// below it, name the override instead of a file position.
struct AppliedOverride {
  YAML::Node node;
  std::string text;
};

/// One step of an override's path: a mapping key, or a list index (`[i]`;
/// a plain numeric key also indexes a list).
struct OverrideSegment {
  std::string key;
  std::optional<size_t> index;
};

/// Splits "callbacks[0].sparsifier.args.sparsity_level" (or
/// "callbacks.0.sparsifier...") into segments. `text` is the whole override,
/// for messages. Throws ConfigError "override 'TEXT': ..." on an empty key or
/// a malformed index.
std::vector<OverrideSegment> parse_override_path(const std::string& path, const std::string& text);

/// Applies `text` ("dotted.path=value", the value read as YAML) to `root`, a
/// mapping: missing mapping keys are created (intermediate mappings too), list
/// entries must exist. Appends the nodes it created or replaced to `applied`.
/// Throws ConfigError "override 'TEXT': ..." when there is no '=', the path is
/// empty, an index is out of range or the path descends into a scalar.
void apply_override(YAML::Node& root, const std::string& text, std::vector<AppliedOverride>& applied);

/// The override whose node is `node` (the latest one), or nullptr.
const AppliedOverride* find_override(const YAML::Node& node, const std::vector<AppliedOverride>& applied);

}  // namespace sparsity::demo
