#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"

namespace sparsity {

/// Builds a data sparsifier from its arguments (e.g. read from YAML).
using DataSparsifierFactory = std::function<std::unique_ptr<BaseDataSparsifier>(const Config& args)>;

/// Makes `type` constructible by `make_data_sparsifier`. Registering a name
/// twice is an error unless `replace` is true. Thread-safe.
///
/// Example:
/// ```
/// sparsity::register_data_sparsifier("Threshold", [](const sparsity::Config& args) {
///   return std::make_unique<ThresholdSparsifier>(args.get<double>("threshold"));
/// });
/// ```
void register_data_sparsifier(const std::string& type, DataSparsifierFactory factory,
                              bool replace = false);

/// The registered type names, sorted. Built in: "DataNormSparsifier" (args
/// `sparsity_level`, `sparse_block_shape`, `zeros_per_block`, `norm`).
std::vector<std::string> registered_data_sparsifiers();

/// A new sparsifier of the registered `type` built from `args`. An unknown type
/// is std::invalid_argument listing the known ones.
std::unique_ptr<BaseDataSparsifier> make_data_sparsifier(const std::string& type,
                                                         const Config& args = {});

}  // namespace sparsity
