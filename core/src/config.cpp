#include "sparsity/config.h"

#include "sparsity/closest_match.h"
#include "sparsity/config_error.h"
#include "sparsity/message_text.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>

namespace sparsity {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::optional<double> as_number(const ConfigValue::Variant& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

template <class T>
constexpr const char* requested_type_name() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int>) return "int";
  if constexpr (std::is_same_v<T, double>) return "double";
  if constexpr (std::is_same_v<T, std::string>) return "string";
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "int list";
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return "string list";
  if constexpr (std::is_same_v<T, Config>) return "mapping";
  return "?";
}

}  // namespace

std::string ConfigValue::to_string() const {
  return std::visit(Overloaded{
                        [](bool b) { return std::string(b ? "true" : "false"); },
                        [](int64_t i) { return fmt::format("{}", i); },
                        [](double d) { return fmt::format("{}", d); },
                        [](const std::string& s) { return s; },
                        [](const IntList& l) { return fmt::format("[{}]", fmt::join(l, ", ")); },
                        [](const StringList& l) { return fmt::format("[{}]", fmt::join(l, ", ")); },
                        [](const Mapping& m) { return m->to_string(); },
                    },
                    value_);
}

bool ConfigValue::operator==(const ConfigValue& other) const {
  auto a = as_number(value_);
  auto b = as_number(other.value_);
  if (a && b) return *a == *b;
  const auto* mine = std::get_if<Mapping>(&value_);
  const auto* theirs = std::get_if<Mapping>(&other.value_);
  if (mine != nullptr && theirs != nullptr) return **mine == **theirs;
  return value_ == other.value_;
}

Config::Config(std::initializer_list<Entry> entries) {
  for (const auto& [key, value] : entries) set(key, value);
}

Config& Config::set(const std::string& key, ConfigValue value) {
  for (auto& entry : entries_) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return *this;
    }
  }
  entries_.emplace_back(key, std::move(value));
  return *this;
}

const ConfigValue* Config::find(const std::string& key) const {
  for (const auto& entry : entries_)
    if (entry.first == key) return &entry.second;
  return nullptr;
}

bool Config::contains(const std::string& key) const { return find(key) != nullptr; }

bool Config::erase(const std::string& key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

const ConfigValue& Config::at(const std::string& key) const {
  const ConfigValue* value = find(key);
  if (value == nullptr) {
    throw ConfigError(fmt::format("config has no key '{}' (keys: {})", message_text(key),
                                  message_text(fmt::format("{}", fmt::join(keys(), ", ")))),
                      key, ConfigError::At::kKey);
  }
  return *value;
}

template <class T>
T Config::get(const std::string& key) const {
  const ConfigValue& value = at(key);
  const auto& v = value.variant();
  if constexpr (std::is_same_v<T, double>) {
    if (auto number = as_number(v)) return *number;
  } else if constexpr (std::is_same_v<T, int>) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
      if (*i < std::numeric_limits<int>::min() || *i > std::numeric_limits<int>::max()) {
        throw ConfigError(fmt::format("config key '{}': {} does not fit in an int", message_text(key), *i), key);
      }
      return static_cast<int>(*i);
    }
  } else if constexpr (std::is_same_v<T, Config>) {
    if (const auto* nested = std::get_if<ConfigValue::Mapping>(&v)) return **nested;
  } else {
    if (const auto* typed = std::get_if<T>(&v)) return *typed;
  }
  throw ConfigError(fmt::format("config key '{}': expected {}, got {} ({})", message_text(key),
                                requested_type_name<T>(), value.type_name(), message_text(value.to_string())),
                    key);
}

template bool Config::get<bool>(const std::string&) const;
template int64_t Config::get<int64_t>(const std::string&) const;
template int Config::get<int>(const std::string&) const;
template double Config::get<double>(const std::string&) const;
template std::string Config::get<std::string>(const std::string&) const;
template std::vector<int64_t> Config::get<std::vector<int64_t>>(const std::string&) const;
template std::vector<std::string> Config::get<std::vector<std::string>>(const std::string&) const;
template Config Config::get<Config>(const std::string&) const;

std::vector<std::string> Config::keys() const {
  std::vector<std::string> result;
  result.reserve(entries_.size());
  for (const auto& entry : entries_) result.push_back(entry.first);
  return result;
}

void Config::check_keys(const std::string& owner, const std::vector<std::string>& accepted) const {
  for (const auto& [key, value] : entries_) {
    if (std::find(accepted.begin(), accepted.end(), key) == accepted.end()) {
      throw ConfigError(fmt::format("{}: unknown argument '{}'{} (accepted: {})", owner, message_text(key),
                                    did_you_mean(key, accepted), fmt::join(accepted, ", ")),
                        key, ConfigError::At::kKey);
    }
  }
}

Config Config::merged_with(const Config& overrides) const {
  Config result = *this;
  for (const auto& [key, value] : overrides.entries_) result.set(key, value);
  return result;
}

bool Config::operator==(const Config& other) const {
  if (entries_.size() != other.entries_.size()) return false;
  for (const auto& [key, value] : entries_) {
    const ConfigValue* theirs = other.find(key);
    if (theirs == nullptr || !(*theirs == value)) return false;
  }
  return true;
}

std::string Config::to_string() const {
  std::string out = "{";
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i > 0) out += ", ";
    out += entries_[i].first + ": " + entries_[i].second.to_string();
  }
  return out + "}";
}

}  // namespace sparsity
