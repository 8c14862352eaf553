#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace YAML {
class Node;
}

namespace sparsity {

class Config;

/// One configuration value: a bool, an int64, a double, a string, a list of
/// int64 (e.g. a block shape), a list of strings (e.g. parameter name
/// patterns) or a nested Config (e.g. a callback's `sparsifier: {type, args}`).
///
/// The constructors are explicit about every source type so that `3` becomes an
/// int64, `0.5` a double and `"L1"` a string (a plain `std::variant` would turn a
/// string literal into a bool).
class ConfigValue {
 public:
  using IntList = std::vector<int64_t>;
  using StringList = std::vector<std::string>;
  /// A nested Config, shared (values are immutable once set).
  using Mapping = std::shared_ptr<const Config>;
  using Variant = std::variant<bool, int64_t, double, std::string, IntList, StringList, Mapping>;

  /// The names `type_name()` returns, indexed like `Variant`.
  static constexpr std::array<const char*, 7> kTypeNames = {"bool",     "int",         "double", "string",
                                                            "int list", "string list", "mapping"};

  ConfigValue(bool v) : value_(v) {}                 // NOLINT(google-explicit-constructor)
  ConfigValue(int v) : value_(int64_t{v}) {}         // NOLINT(google-explicit-constructor)
  ConfigValue(long v) : value_(int64_t{v}) {}        // NOLINT(google-explicit-constructor)
  ConfigValue(long long v) : value_(int64_t{v}) {}   // NOLINT(google-explicit-constructor)
  ConfigValue(double v) : value_(v) {}               // NOLINT(google-explicit-constructor)
  ConfigValue(float v) : value_(double{v}) {}        // NOLINT(google-explicit-constructor)
  ConfigValue(const char* v) : value_(std::string(v)) {}  // NOLINT(google-explicit-constructor)
  ConfigValue(std::string v) : value_(std::move(v)) {}    // NOLINT(google-explicit-constructor)
  ConfigValue(IntList v) : value_(std::move(v)) {}        // NOLINT(google-explicit-constructor)
  ConfigValue(std::initializer_list<int64_t> v)           // NOLINT(google-explicit-constructor)
      : value_(IntList(v)) {}
  template <size_t N>
  ConfigValue(const std::array<int64_t, N>& v)  // NOLINT(google-explicit-constructor)
      : value_(IntList(v.begin(), v.end())) {}
  ConfigValue(StringList v) : value_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  ConfigValue(const Config& v);                        // NOLINT(google-explicit-constructor)

  const Variant& variant() const { return value_; }
  /// "bool", "int", "double", "string", "int list", "string list" or "mapping".
  const char* type_name() const { return kTypeNames[value_.index()]; }
  /// The value as text: `true`, `3`, `0.5`, `L1`, `[1, 4]`, `[a, b]`, `{k: v}`.
  std::string to_string() const;

  /// Numbers compare by value across int and double (3 == 3.0), as in Python;
  /// mappings by their content.
  bool operator==(const ConfigValue& other) const;
  bool operator!=(const ConfigValue& other) const { return !(*this == other); }

 private:
  Variant value_;
};

/// An insertion-ordered map from keys to typed values: the configuration of one
/// piece of data in a sparsifier, a sparsifier's defaults, a scheduler's
/// arguments.
///
/// Example:
/// ```
/// sparsity::Config config;
/// config.set("sparsity_level", 0.7).set("sparse_block_shape", {1, 4});
/// double level = config.get<double>("sparsity_level");
/// ```
class Config {
 public:
  using Entry = std::pair<std::string, ConfigValue>;

  Config() = default;
  Config(std::initializer_list<Entry> entries);

  /// Sets `key` (replacing its value in place, or appending it). Chainable.
  Config& set(const std::string& key, ConfigValue value);
  bool contains(const std::string& key) const;
  /// Removes `key`; returns whether it was there.
  bool erase(const std::string& key);

  /// The value of `key` as a T: bool, int64_t, int, double (also from an int),
  /// std::string, std::vector<int64_t>, std::vector<std::string> or Config (a
  /// nested mapping). Throws ConfigError (a std::invalid_argument) naming the
  /// key when it is missing or has another type.
  template <class T>
  T get(const std::string& key) const;
  /// As get<T>(key), or `fallback` when the key is missing.
  template <class T>
  T get_or(const std::string& key, T fallback) const {
    return contains(key) ? get<T>(key) : fallback;
  }

  const ConfigValue& at(const std::string& key) const;
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<std::string> keys() const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  /// Throws ConfigError (at the key) if a key is not in `accepted`, naming the
  /// key, `owner` (e.g. "StepSLScheduler") and the accepted keys.
  void check_keys(const std::string& owner, const std::vector<std::string>& accepted) const;

  /// This config with every entry of `overrides` set on top (order: ours first,
  /// then the new keys of `overrides`).
  Config merged_with(const Config& overrides) const;

  /// Same keys with equal values; order does not matter.
  bool operator==(const Config& other) const;
  bool operator!=(const Config& other) const { return !(*this == other); }

  /// `{key: value, ...}` in insertion order.
  std::string to_string() const;

  /// Reads a YAML mapping whose values are scalars, sequences of integers or
  /// of strings, or mappings (nested Configs). Scalars become bool
  /// (`true`/`false`), int, double or string, in that order of preference; a
  /// sequence whose items are all unquoted integers is an int list (an empty
  /// one too), one of other scalars a string list. Errors name the key and
  /// the line and column of the node.
  static Config from_yaml(const YAML::Node& node);
  /// One value by from_yaml's rules;
  /// `key` names it in errors. Unlike putting `node` into a mapping for
  /// from_yaml, this costs the size of `node`, not of its whole document.
  static ConfigValue value_from_yaml(const std::string& key, const YAML::Node& node);
  YAML::Node to_yaml() const;

 private:
  const ConfigValue* find(const std::string& key) const;
  std::vector<Entry> entries_;
};

inline ConfigValue::ConfigValue(const Config& v) : value_(std::make_shared<const Config>(v)) {}

}  // namespace sparsity
