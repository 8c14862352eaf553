#pragma once

// One table per Options struct that drives both reading it from a Config and
// writing it back: the keys, their types and their order live in one place.

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sparsity/config.h"

namespace sparsity {

/// One config key of an Options struct: how to read it into the struct and
/// how to write the struct's value back.
template <class Options>
struct OptionField {
  const char* key;
  void (*read)(Options& options, const Config& config, const std::string& key);
  void (*write)(const Options& options, Config& config, const std::string& key);
};

/// The fields of an Options struct, in the order `options_to_config` writes them.
template <class Options>
using OptionFields = std::vector<OptionField<Options>>;

/// The keys of `fields`, in order.
template <class Options>
std::vector<std::string> option_keys(const OptionFields<Options>& fields) {
  std::vector<std::string> keys;
  keys.reserve(fields.size());
  for (const auto& field : fields) keys.emplace_back(field.key);
  return keys;
}

/// `options` with every key of `config` read into it. A key that is not a
/// field's (and not in `other_keys`, which the caller reads itself) is a
/// ConfigError at the key naming `owner` and the accepted keys; a value of the
/// wrong type is a ConfigError at the value.
template <class Options>
Options options_from_config(const std::string& owner, const Config& config, const OptionFields<Options>& fields,
                            Options options = {}, const std::vector<std::string>& other_keys = {}) {
  std::vector<std::string> accepted = other_keys;
  const std::vector<std::string> keys = option_keys(fields);
  accepted.insert(accepted.end(), keys.begin(), keys.end());
  config.check_keys(owner, accepted);
  for (const auto& field : fields) {
    if (config.contains(field.key)) field.read(options, config, field.key);
  }
  return options;
}

/// Every field of `options`, in table order: what `options_from_config` reads
/// back to equal options.
template <class Options>
Config options_to_config(const Options& options, const OptionFields<Options>& fields) {
  Config config;
  for (const auto& field : fields) field.write(options, config, field.key);
  return config;
}

}  // namespace sparsity

/// A field for the TORCH_ARG option `name` of `Options`, whose type Config
/// reads and writes as is (bool, int64_t, double, std::string, int or string
/// lists, Config).
///
/// Example:
/// ```
/// static const sparsity::OptionFields<MyOptions> fields = {
///     SPARSITY_OPTION_FIELD(MyOptions, factor), SPARSITY_OPTION_FIELD(MyOptions, period)};
/// ```
#define SPARSITY_OPTION_FIELD(Options, name)                                                          \
  ::sparsity::OptionField<Options> {                                                                  \
    #name,                                                                                            \
        [](Options& o, const ::sparsity::Config& c, const std::string& k) {                           \
          o.name(c.get<std::decay_t<decltype(std::declval<const Options&>().name())>>(k));            \
        },                                                                                            \
        [](const Options& o, ::sparsity::Config& c, const std::string& k) { c.set(k, o.name()); }     \
  }
