#pragma once

// Conversion of Config to and from the IValue dicts stored in saved state.

#include <ATen/core/ivalue.h>

#include <string>

#include "sparsity/config.h"
#include "sparsity/state_file.h"

namespace sparsity::detail {

/// A dict of string keys to any values: the shape of every saved state.
using StateDict = c10::impl::GenericDict;
using ::sparsity::new_state_dict;

/// {key: bool | int | float | str | list[int]}, in the config's order.
c10::IValue config_to_ivalue(const Config& config);
/// The inverse of config_to_ivalue; `what` names the config in errors.
Config config_from_ivalue(const c10::IValue& value, const std::string& what);

/// The dict in `value`, or std::invalid_argument mentioning `what`.
StateDict as_dict(const c10::IValue& value, const std::string& what);
/// dict[key], or std::invalid_argument mentioning `what` and the key.
const c10::IValue& dict_field(const StateDict& dict,
                              const std::string& key, const std::string& what);

}  // namespace sparsity::detail
