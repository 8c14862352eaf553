#pragma once

// The one error type for a bad configuration value or key, wherever it is
// found: Config's typed getters, the options' from_config, the registries.

#include <stdexcept>
#include <string>
#include <vector>

namespace sparsity {

/// A configuration mistake, with where it is: the key path inside the config
/// that was read (empty: the config as a whole) and whether the key itself or
/// its value is wrong. A caller that knows where the config came from (the
/// YAML reader of trainer_demo) uses `key_path()` to point at the file's line
/// and column; `what()` is the message alone.
///
/// It is a std::invalid_argument, so code that catches that keeps working.
///
/// Example:
/// ```
/// try {
///   sparsity::make_data_sparsifier("DataNormSparsifier", {{"sparsity_levle", 0.5}});
/// } catch (const sparsity::ConfigError& e) {
///   // e.key() == "sparsity_levle", e.at() == sparsity::ConfigError::At::kKey
/// }
/// ```
class ConfigError : public std::invalid_argument {
 public:
  /// Which part of the entry at `key_path` is wrong.
  enum class At {
    kValue,  ///< the value (a wrong type, out of range)
    kKey,    ///< the key (unknown, misspelt, not applicable)
  };

  ConfigError(const std::string& message, std::vector<std::string> key_path, At at = At::kValue)
      : std::invalid_argument(message), message_(message), key_path_(std::move(key_path)), at_(at) {}
  ConfigError(const std::string& message, const std::string& key, At at = At::kValue)
      : ConfigError(message, key.empty() ? std::vector<std::string>{} : std::vector<std::string>{key}, at) {}

  /// The keys from the config that was read down to the entry, e.g.
  /// {"sparsifier", "args", "sparsity_level"}; a list item is its index
  /// ({"sparse_block_shape", "1"}).
  const std::vector<std::string>& key_path() const { return key_path_; }
  /// The key path joined with '.', e.g. "sparsifier.args.sparsity_level".
  std::string key() const {
    std::string joined;
    for (const auto& part : key_path_) joined += (joined.empty() ? "" : ".") + part;
    return joined;
  }
  At at() const { return at_; }
  /// The message without a source position; `what()` is "line L, column C: "
  /// and this where the error knows its line and column.
  const std::string& message() const { return message_; }
  /// The 1-based line and column in the source text, where known (0 if not).
  int line() const { return line_; }
  int column() const { return column_; }

  /// The same error seen from the config one level up, whose key `parent`
  /// holds the config this error was found in.
  ConfigError nested_in(const std::string& parent) const {
    std::vector<std::string> path{parent};
    path.insert(path.end(), key_path_.begin(), key_path_.end());
    ConfigError nested(message_, std::move(path), at_);
    return line_ > 0 ? nested.at_position(line_, column_) : nested;
  }

  /// The same error at a 1-based line and column of the text it was read from.
  ConfigError at_position(int line, int column) const {
    ConfigError positioned(*this, "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " +
                                      message_);
    positioned.line_ = line;
    positioned.column_ = column;
    return positioned;
  }

 private:
  ConfigError(const ConfigError& other, const std::string& what)
      : std::invalid_argument(what), message_(other.message_), key_path_(other.key_path_), at_(other.at_) {}

  std::string message_;
  std::vector<std::string> key_path_;
  At at_;
  int line_ = 0;
  int column_ = 0;
};

}  // namespace sparsity
