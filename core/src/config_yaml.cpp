// Conversion between sparsity::Config and yaml-cpp nodes.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <unordered_set>

#include "sparsity/config.h"
#include "sparsity/config_error.h"
#include "sparsity/float_text.h"

namespace sparsity {

namespace {

constexpr const char* kStringTag = "tag:yaml.org,2002:str";

// A ConfigError at `node`'s line and column, when it has them.
ConfigError error_at(const YAML::Node& node, const std::string& message, std::vector<std::string> path,
                     ConfigError::At at = ConfigError::At::kValue) {
  ConfigError error(message, std::move(path), at);
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? error : error.at_position(mark.line + 1, mark.column + 1);
}

std::optional<int64_t> parse_int(const std::string& text) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || begin == end) return std::nullopt;
  return value;
}

std::optional<double> parse_double(const std::string& text) {
  if (text == ".inf" || text == ".Inf" || text == ".INF" || text == "+.inf")
    return std::numeric_limits<double>::infinity();
  if (text == "-.inf" || text == "-.Inf" || text == "-.INF")
    return -std::numeric_limits<double>::infinity();
  if (text == ".nan" || text == ".NaN" || text == ".NAN")
    return std::numeric_limits<double>::quiet_NaN();
  if (text.empty()) return std::nullopt;
  // strtod also accepts "inf", "nan" and hex floats, which YAML does not.
  const char first = text[0];
  if (!(std::isdigit(static_cast<unsigned char>(first)) || first == '-' || first == '+' ||
        first == '.'))
    return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE) return std::nullopt;
  if (text.find_first_of("xXnN") != std::string::npos) return std::nullopt;
  return value;
}

ConfigValue scalar_value(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  // A quoted scalar carries the "!" tag, an explicit `!!str` the standard
  // string tag: either is a string whatever it looks like.
  if (node.Tag() == "!" || node.Tag() == kStringTag) return text;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (auto i = parse_int(text)) return *i;
  if (auto d = parse_double(text)) return *d;
  return text;
}

bool is_plain_int(const YAML::Node& item) {
  return item.IsScalar() && item.Tag() != "!" && item.Tag() != kStringTag && parse_int(item.Scalar()).has_value();
}

// A list is of integers or of strings, as its first item; an item of the
// other kind is a mistake ([1, x] is a typo, not two strings).
ConfigValue list_of(const std::string& key, const YAML::Node& node) {
  size_t index = 0;
  for (const auto& item : node) {
    if (!item.IsScalar()) {
      throw error_at(item,
                     fmt::format("key '{}': list items must be integers or strings, got a nested {}", key,
                                 item.IsMap() ? "mapping" : "list"),
                     {key, std::to_string(index)});
    }
    ++index;
  }
  if (node.size() == 0 || is_plain_int(node[0])) {
    ConfigValue::IntList list;
    for (const auto& item : node) {
      if (!is_plain_int(item)) {
        throw error_at(item,
                       fmt::format("key '{}': list items must be integers, as the first one is, got '{}'", key,
                                   item.Scalar()),
                       {key, std::to_string(list.size())});
      }
      list.push_back(*parse_int(item.Scalar()));
    }
    return list;
  }
  ConfigValue::StringList list;
  for (const auto& item : node) {
    if (is_plain_int(item)) {
      throw error_at(item,
                     fmt::format("key '{}': list items must be strings, as the first one is, got the integer {} "
                                 "(quote it for a string)",
                                 key, item.Scalar()),
                     {key, std::to_string(list.size())});
    }
    list.push_back(item.Scalar());
  }
  return list;
}

ConfigValue value_of(const std::string& key, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return scalar_value(node);
    case YAML::NodeType::Sequence:
      return list_of(key, node);
    case YAML::NodeType::Map:
      try {
        return Config::from_yaml(node);
      } catch (const ConfigError& e) {
        throw e.nested_in(key);
      }
    default:
      throw error_at(node, fmt::format("key '{}' has no value", key), {key});
  }
}

// A string as a node that reads back as that string: one that reads as another
// type ("42", "true", "") is tagged as a string.
YAML::Node string_node(const std::string& s) {
  YAML::Node node(s);
  if (s.empty() || !std::holds_alternative<std::string>(scalar_value(node).variant())) node.SetTag(kStringTag);
  return node;
}

}  // namespace

Config Config::from_yaml(const YAML::Node& node) {
  Config config;
  if (!node || node.IsNull()) return config;
  if (!node.IsMap()) throw error_at(node, "expected a mapping of key: value", {});
  // A set for the repeated-key check and appending to entries_ directly:
  // contains() and set() search the entries, which made a large mapping
  // quadratic.
  std::unordered_set<std::string> seen;
  for (const auto& item : node) {
    if (!item.first.IsScalar()) {
      throw error_at(item.first, "keys must be plain strings", {}, ConfigError::At::kKey);
    }
    const std::string key = item.first.Scalar();
    if (!seen.insert(key).second) {
      throw error_at(item.first, fmt::format("key '{}' appears twice", key), {key}, ConfigError::At::kKey);
    }
    config.entries_.emplace_back(key, value_of(key, item.second));
  }
  return config;
}

ConfigValue Config::value_from_yaml(const std::string& key, const YAML::Node& node) {
  if (!node.IsDefined()) throw ConfigError(fmt::format("key '{}' has no value", key), key);
  return value_of(key, node);
}

YAML::Node Config::to_yaml() const {
  YAML::Node node(YAML::NodeType::Map);
  for (const auto& [key, value] : entries_) {
    const auto& v = value.variant();
    if (const auto* b = std::get_if<bool>(&v)) {
      node[key] = *b;
    } else if (const auto* i = std::get_if<int64_t>(&v)) {
      node[key] = *i;
    } else if (const auto* d = std::get_if<double>(&v)) {
      // Keep a double a double when read back: 1.0 must not come back as the int 1.
      node[key] = yaml_float(*d);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      node[key] = string_node(*s);
    } else if (const auto* strings = std::get_if<ConfigValue::StringList>(&v)) {
      YAML::Node list(YAML::NodeType::Sequence);
      for (const auto& item : *strings) list.push_back(string_node(item));
      list.SetStyle(YAML::EmitterStyle::Flow);
      node[key] = list;
    } else if (const auto* nested = std::get_if<ConfigValue::Mapping>(&v)) {
      node[key] = (*nested)->to_yaml();
    } else {
      YAML::Node list(YAML::NodeType::Sequence);
      for (int64_t x : std::get<ConfigValue::IntList>(v)) list.push_back(x);
      list.SetStyle(YAML::EmitterStyle::Flow);
      node[key] = list;
    }
  }
  return node;
}

}  // namespace sparsity
