#pragma once

/// The sparsity core library: configs, data sparsifiers and their registry.
/// Link `sparsity::core`.

#include "sparsity/config.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/data_sparsifier/data_norm_sparsifier.h"
#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/file_io.h"
#include "sparsity/logging.h"
