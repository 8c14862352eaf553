#pragma once

#include <map>
#include <string>
#include <vector>

#include "sparsity/config.h"

namespace torch {
namespace nn {
class Module;
}  // namespace nn
}  // namespace torch

namespace sparsity {

class BaseDataSparsifier;

/// Which of a model's parameters are attached to a data sparsifier (by a
/// data-sparsity callback, a `MaskGuard`, `attach_parameters`), by their
/// dotted names (`0.weight`, `encoder.fc1.bias`), with shell-style patterns
/// (`*`, `?`, `[...]`): a parameter is selected when it matches an `include`
/// pattern (or `include` is empty) and no `exclude` pattern.
///
/// Example: every weight but the norm layers' ones:
/// `ParameterSelection{{"*weight"}, {"*norm*"}}`.
struct ParameterSelection {
  std::vector<std::string> include;
  std::vector<std::string> exclude;

  bool selects(const std::string& parameter_name) const;
};

/// The sparsifier name of a parameter: its dotted name with '.' replaced by
/// '_' (`a.b.weight` → `a_b_weight`), as the reference does.
std::string sparsifier_name(const std::string& parameter_name);

/// Registers every selected parameter of `model` with `sparsifier` under its
/// `sparsifier_name`, with the config `configs` holds for that name (if any)
/// overlaid on the sparsifier's. Returns the dotted names attached, in order.
/// Two parameters mapping to the same sparsifier name are an error.
std::vector<std::string> attach_parameters(torch::nn::Module& model, BaseDataSparsifier& sparsifier,
                                           const ParameterSelection& selection,
                                           const std::map<std::string, Config>& configs = {});

}  // namespace sparsity
