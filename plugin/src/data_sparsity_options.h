#pragma once

// What the two data-sparsity callbacks share: the config fields of their
// parameter selection, and the checks they run before training.

#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/option_fields.h"
#include "sparsity/plugin/model_copy.h"
#include "sparsity/plugin/parameter_selection.h"
#include "sparsity/plugin/torch_fwd.h"

namespace sparsity::detail {

/// `config[key]` as parameter name patterns: a string or a list of strings
/// (an empty list too), none of them empty.
std::vector<std::string> patterns_from(const Config& config, const std::string& key);

/// The `include` and `exclude` fields of an Options struct with a
/// `parameters` option.
template <class Options>
OptionField<Options> include_field() {
  return {"include",
          [](Options& o, const Config& c, const std::string& k) { o.parameters().include = patterns_from(c, k); },
          [](const Options& o, Config& c, const std::string& k) {
            c.set(k, ConfigValue::StringList(o.parameters().include));
          }};
}
template <class Options>
OptionField<Options> exclude_field() {
  return {"exclude",
          [](Options& o, const Config& c, const std::string& k) { o.parameters().exclude = patterns_from(c, k); },
          [](const Options& o, Config& c, const std::string& k) {
            c.set(k, ConfigValue::StringList(o.parameters().exclude));
          }};
}

/// Throws std::invalid_argument, naming `owner`, the patterns and the model's
/// parameters, when `selection` selects none of `model`'s parameters.
void check_selects_a_parameter(const std::string& owner, const ParameterSelection& selection,
                               const torch::nn::Module& model);

/// Throws, naming `owner`, unless `model` can be deep-copied (it is
/// Cloneable, or `factory` builds one): found at fit start, not at its end.
void check_copyable(const std::string& owner, const torch::nn::Module& model, const ModelFactory& factory);

/// A data-sparsity callback's to_config(): its components ({type, args} of
/// the sparsifier, and scheduler), then every entry of its options.
template <class Options>
Config callback_config(Config components, const Options& options) {
  const Config written = options_to_config(options, Options::fields());
  for (const auto& [key, value] : written.entries()) components.set(key, value);
  return components;
}

}  // namespace sparsity::detail
