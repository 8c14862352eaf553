#pragma once
// The sections of a run config: one field table per section struct, which
// reads, checks and writes it (run_config_fields.h), and the section readers:
// the table, then the checks that relate fields to each other.

#include <optional>

#include "located_yaml.h"
#include "run_config.h"
#include "run_config_fields.h"

namespace sparsity::demo::detail {

const Section<SyntheticDataConfig>& synthetic_table();
const Section<DataConfig>& data_table();
const Section<LossyLayersConfig>& lossy_table();
const Section<ModelConfig>& model_table();
const Section<OptimizerConfig>& optimizer_table();
const Section<TrainerConfig>& trainer_table();
const Section<SensitivityConfig>& sensitivity_table();
/// The top level: seed, threads, the sections above and callbacks (written by
/// the table; read after it, by read_callbacks, as they pair with the model).
const Section<RunConfig>& run_config_table();

/// The whole config at `root` (a mapping), its callbacks built once.
RunConfig read_run_config(const Reader& r, const YAML::Node& root, const std::string& source);

}  // namespace sparsity::demo::detail
