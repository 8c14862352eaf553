#include "located_yaml.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <variant>

#include "sparsity/closest_match.h"
#include "sparsity/message_text.h"

namespace sparsity::demo::detail {

bool contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

std::string one_of(const std::vector<std::string>& list) { return fmt::format("{}", fmt::join(list, ", ")); }

namespace {

std::string quoted_kind(const YAML::Node& node) {
  // A quoted scalar carries the "!" tag, an explicit !!str the standard tag.
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str" ? "the quoted string " : "";
}

/// The typed value of a scalar, by the rules of Config::from_yaml (bool, int,
/// double, else string; quoted scalars are strings). Not through a mapping
/// holding `node`: assigning a node into another merges its whole document's
/// node set, which made checking a long list quadratic.
ConfigValue scalar_value(const YAML::Node& node) { return Config::value_from_yaml("value", node); }

}  // namespace

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsScalar()) return fmt::format("{}'{}'", quoted_kind(node), message_text(node.Scalar()));
  if (node.IsSequence()) return "a list";
  return "a mapping";
}

const Value* Mapping::find(const std::string& key) const {
  for (const auto& [name, value] : entries) {
    if (name == key) return &value;
  }
  return nullptr;
}

Value Mapping::at_or_self(const std::string& key) const {
  if (const Value* v = find(key)) return *v;
  Value fallback = self;
  fallback.path = self.path.empty() ? key : self.path + "." + key;
  return fallback;
}

Value Reader::child(const Value& parent, const YAML::Node& key, const YAML::Node& node,
                    const std::string& name) const {
  return Value{node, key, parent.path.empty() ? name : parent.path + "." + name, provenance(parent, node)};
}

Value Reader::item(const Value& parent, const YAML::Node& node, size_t index) const {
  return Value{node, YAML::Node(), fmt::format("{}[{}]", parent.path, index), provenance(parent, node)};
}

std::string Reader::location(const Value& value, const YAML::Node& node) const {
  if (value.override_text != nullptr) return fmt::format("override '{}'", message_text(*value.override_text));
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return source_;
  return fmt::format("{}:{}:{}", source_, mark.line + 1, mark.column + 1);
}

void Reader::fail(const Value& value, const std::string& message) const {
  raise(location(value, value.node), value.path, message);
}

void Reader::fail_at_key(const Value& value, const std::string& message) const {
  raise(location(value, value.key), value.path, message);
}

Mapping Reader::mapping(const Value& value, const std::vector<std::string>* accepted,
                        const std::string& expected) const {
  Mapping result{value, {}};
  if (!value.present()) return result;
  if (!value.node.IsMap()) fail(value, fmt::format("expected {}, got {}", expected, describe(value.node)));
  std::map<std::string, YAML::Node> seen;
  for (const auto& entry : value.node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      Value at{entry.second, key, value.path, provenance(value, entry.second)};
      fail_at_key(at, fmt::format("keys must be plain names, got {}", describe(key)));
    }
    const std::string name = key.Scalar();
    Value v = child(value, key, entry.second, name);
    if (auto it = seen.find(name); it != seen.end()) {
      const YAML::Mark first = it->second.Mark();
      fail_at_key(v, fmt::format("key '{}' appears twice{}; each key may appear once", name,
                                 first.is_null() ? std::string() : fmt::format(" (first at line {})", first.line + 1)));
    }
    seen.emplace(name, key);
    if (accepted != nullptr && !contains(*accepted, name)) fail_unknown_key(value, v, name, *accepted);
    result.entries.emplace_back(name, std::move(v));
  }
  return result;
}

void Reader::fail_unknown_key(const Value& owner, const Value& entry, const std::string& name,
                              const std::vector<std::string>& accepted) const {
  fail_at_key(entry, fmt::format("unknown key '{}' {}{}; expected one of: {}", message_text(name),
                                 owner.path.empty() ? std::string("at the top level") : "in " + owner.path,
                                 did_you_mean(name, accepted), one_of(accepted)));
}

int64_t Reader::integer(const Value& v) const {
  if (v.node.IsScalar()) {
    const ConfigValue value = scalar_value(v.node);
    if (const auto* i = std::get_if<int64_t>(&value.variant())) return *i;
  }
  fail(v, fmt::format("expected an integer, got {}", describe(v.node)));
}

int64_t Reader::integer_at_least(const Value& v, int64_t minimum) const {
  const int64_t x = integer(v);
  if (x < minimum) fail(v, fmt::format("expected an integer >= {}, got {}", minimum, x));
  return x;
}

double Reader::number(const Value& v) const {
  if (v.node.IsScalar()) {
    const ConfigValue value = scalar_value(v.node);
    if (const auto* i = std::get_if<int64_t>(&value.variant())) return static_cast<double>(*i);
    if (const auto* d = std::get_if<double>(&value.variant())) return *d;
  }
  fail(v, fmt::format("expected a number, got {}", describe(v.node)));
}

double Reader::finite_number(const Value& v, const char* expected) const {
  const double x = number(v);
  if (!std::isfinite(x)) fail(v, fmt::format("expected {}, got {}", expected, message_text(v.node.Scalar())));
  return x;
}

bool Reader::boolean(const Value& v) const {
  if (v.node.IsScalar()) {
    const ConfigValue value = scalar_value(v.node);
    if (const auto* b = std::get_if<bool>(&value.variant())) return *b;
  }
  fail(v, fmt::format("expected true or false, got {}", describe(v.node)));
}

std::string Reader::string(const Value& v) const {
  if (!v.node.IsScalar()) fail(v, fmt::format("expected a string, got {}", describe(v.node)));
  return v.node.Scalar();
}

std::string Reader::choice(const Value& v, const std::vector<std::string>& choices, const std::string& what) const {
  const std::string s = string(v);
  if (!contains(choices, s)) {
    fail(v, fmt::format("unknown {} '{}'{}; expected one of: {}", what, message_text(s), did_you_mean(s, choices),
                        one_of(choices)));
  }
  return s;
}

void Reader::check_length(const Value& v, size_t limit, const char* what) const {
  const size_t n = v.node.size();
  if (n > limit) {
    fail(v, fmt::format("the {} has {} entries; at most {} are allowed (docs/configuration.md, Limits)", what, n,
                        limit));
  }
}

std::vector<int64_t> Reader::integer_list(const Value& v, int64_t minimum) const {
  if (!v.node.IsSequence()) {
    fail(v, fmt::format("expected a list of integers (e.g. [64, 32]), got {}", describe(v.node)));
  }
  check_length(v, kMaxListEntries, "list");
  std::vector<int64_t> list;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const Value it = item(v, v.node[i], i);
    std::optional<int64_t> x;
    if (it.node.IsScalar()) {
      const ConfigValue value = scalar_value(it.node);
      if (const auto* p = std::get_if<int64_t>(&value.variant())) x = *p;
    }
    if (!x) fail(it, fmt::format("expected a list of integers, got {} as entry {}", describe(it.node), i));
    if (*x < minimum) fail(it, fmt::format("expected integers >= {}, got {}", minimum, *x));
    list.push_back(*x);
  }
  return list;
}

ConfigValue Reader::argument(const Value& owner, const std::string& name, const Value& entry) const {
  check_sizes(entry);
  try {
    return Config::value_from_yaml(name, entry.node);
  } catch (const sparsity::ConfigError& e) {
    fail_at_key_path(owner, e);
  }
}

void Reader::check_sizes(const Value& v) const {
  if (v.node.IsSequence()) check_length(v, kMaxListEntries, "list");
  if (!v.node.IsMap()) return;
  check_length(v, kMaxArguments, "mapping of arguments");
  for (const auto& entry : v.node) {
    if (entry.second.IsMap() || entry.second.IsSequence()) {
      check_sizes(child(v, entry.first, entry.second, entry.first.IsScalar() ? entry.first.Scalar() : "?"));
    }
  }
}

void Reader::fail_at_key_path(const Value& owner, const sparsity::ConfigError& error) const {
  Value at = owner;
  for (const std::string& part : error.key_path()) {
    if (at.node.IsMap()) {
      bool found = false;
      for (const auto& entry : at.node) {
        if (entry.first.IsScalar() && entry.first.Scalar() == part) {
          at = child(at, entry.first, entry.second, part);
          found = true;
          break;
        }
      }
      if (!found) break;
    } else if (at.node.IsSequence()) {
      const size_t index = std::stoul(part);
      if (index >= at.node.size()) break;
      at = item(at, at.node[index], index);
    } else {
      break;
    }
  }
  // A position found while reading the YAML is exact (the second of two
  // repeated keys, an item of a list): the walk above finds the path.
  if (error.line() > 0 && at.override_text == nullptr) {
    raise(fmt::format("{}:{}:{}", source_, error.line(), error.column()), at.path, error.message());
  }
  if (error.at() == sparsity::ConfigError::At::kKey && at.key.IsDefined() && at.path != owner.path) {
    fail_at_key(at, error.message());
  }
  fail(at, error.message());
}

const std::string* Reader::provenance(const Value& parent, const YAML::Node& node) const {
  if (const AppliedOverride* o = find_override(node, overrides_)) return &o->text;
  return parent.override_text;
}

void Reader::raise(const std::string& where, const std::string& path, const std::string& message) const {
  if (path.empty()) throw ConfigError(fmt::format("{}: {}", where, message));
  // Paths are made of the config's keys: quoted like any user text.
  throw ConfigError(fmt::format("{}: {}: {}", where, message_text(path), message));
}

}  // namespace sparsity::demo::detail
