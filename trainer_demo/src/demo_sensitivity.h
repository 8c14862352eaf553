#pragma once
// The demo's sensitivity analysis (config section `sensitivity`,
// `--sensitivity`): the trained dense model's weights pruned one at a time to
// each level, evaluated on a subset, the levels suggested for the target;
// written as sensitivity.csv and sensitivity_levels.csv and logged.

#include <ATen/core/Tensor.h>

#include <string>

#include "run_config.h"

namespace torch::nn {
class Module;
}

namespace sparsity::demo {

/// Runs the analysis of `model` (a classifier: accuracy on the first
/// `config.examples` of `inputs`/`targets`) and writes `dir`/sensitivity.csv
/// (SensitivityTable::to_csv) and `dir`/sensitivity_levels.csv (layer, numel,
/// suggested level, its predicted loss; a last row `total` with the
/// sparsity reached and the summed loss). Returns the text it logs. The
/// model's parameters are bit-identical afterwards.
std::string run_sensitivity(const SensitivityConfig& config, torch::nn::Module& model, const at::Tensor& inputs,
                            const at::Tensor& targets, const std::string& dir);

}  // namespace sparsity::demo
