#pragma once
// Reading a YAML tree with every node's place: "FILE:LINE:COLUMN" for a node
// of the file, "override 'KEY=VALUE'" for one a command-line override put
// there, and the dotted path of the node in the config. Every ConfigError of
// a run config is raised through a Reader, so that all of them have the same
// "WHERE: PATH: MESSAGE" form.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "run_config.h"
#include "sparsity/config.h"
#include "sparsity/config_error.h"
#include "yaml_overrides.h"

namespace sparsity::demo::detail {

bool contains(const std::vector<std::string>& list, const std::string& word);

/// "a, b, c", for "expected one of: ..." in messages.
std::string one_of(const std::vector<std::string>& list);

/// What a node is, for "got ..." in messages.
std::string describe(const YAML::Node& node);

/// A node being read: its value, its key (for a mapping entry), its path in
/// the config and, when an override put it (or one of its parents) there, the
/// override's text.
struct Value {
  YAML::Node node;
  YAML::Node key;
  std::string path;
  const std::string* override_text = nullptr;

  bool present() const { return node.IsDefined() && !node.IsNull(); }
};

/// The entries of a mapping, in file order.
struct Mapping {
  Value self;
  std::vector<std::pair<std::string, Value>> entries;

  const Value* find(const std::string& key) const;
  /// The entry `key`, or (for a message about a missing or defaulted key) the
  /// mapping itself with the key's path.
  Value at_or_self(const std::string& key) const;
};

class Reader {
 public:
  Reader(std::string source, const std::vector<AppliedOverride>& overrides)
      : source_(std::move(source)), overrides_(overrides) {}

  Value root(const YAML::Node& node) const { return Value{node, YAML::Node(), "", nullptr}; }
  Value child(const Value& parent, const YAML::Node& key, const YAML::Node& node, const std::string& name) const;
  Value item(const Value& parent, const YAML::Node& node, size_t index) const;

  /// "FILE:LINE:COLUMN" of `node`, or "override 'TEXT'" when `value` came
  /// from an override.
  std::string location(const Value& value, const YAML::Node& node) const;

  /// An error at the value.
  [[noreturn]] void fail(const Value& value, const std::string& message) const;
  /// An error at the key of a mapping entry (unknown or repeated keys).
  [[noreturn]] void fail_at_key(const Value& value, const std::string& message) const;

  /// A mapping's entries; no value reads as an empty mapping. Repeated keys
  /// are an error; so are keys not in `accepted` (unless it is null).
  Mapping mapping(const Value& value, const std::vector<std::string>* accepted, const std::string& expected) const;

  [[noreturn]] void fail_unknown_key(const Value& owner, const Value& entry, const std::string& name,
                                     const std::vector<std::string>& accepted) const;

  // Scalars, by the rules of Config::from_yaml (quoted scalars are strings).
  int64_t integer(const Value& v) const;
  int64_t integer_at_least(const Value& v, int64_t minimum) const;
  double number(const Value& v) const;
  /// A number that is not infinite or NaN; `expected` says what was wanted.
  double finite_number(const Value& v, const char* expected) const;
  bool boolean(const Value& v) const;
  std::string string(const Value& v) const;
  /// A string from `choices` (with a did-you-mean for a near miss).
  std::string choice(const Value& v, const std::vector<std::string>& choices, const std::string& what) const;

  /// Fails unless the list (or mapping) `v` has at most `limit` entries.
  void check_length(const Value& v, size_t limit, const char* what) const;
  std::vector<int64_t> integer_list(const Value& v, int64_t minimum) const;

  /// One entry as a config value (Config::value_from_yaml's rules), its lists
  /// and mappings within the limits.
  ConfigValue argument(const Value& owner, const std::string& name, const Value& entry) const;
  /// Fails unless every list and mapping within `v` is within the limits.
  void check_sizes(const Value& v) const;

  /// Reports `error`, found in the config read from `owner` (a mapping), at
  /// the node its key path leads to: at the key itself for an unknown key, at
  /// the value otherwise, at the deepest node the path reaches when the rest
  /// is missing.
  [[noreturn]] void fail_at_key_path(const Value& owner, const sparsity::ConfigError& error) const;

 private:
  const std::string* provenance(const Value& parent, const YAML::Node& node) const;
  [[noreturn]] void raise(const std::string& where, const std::string& path, const std::string& message) const;

  std::string source_;
  const std::vector<AppliedOverride>& overrides_;
};

}  // namespace sparsity::demo::detail
