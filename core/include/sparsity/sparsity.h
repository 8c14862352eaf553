#pragma once

/// The sparsity core library: configs, data sparsifiers, data schedulers and
/// their registries, lossy sparsifier layers, and what makes a sparse model
/// pay off: compact files, quantized embedding tables, sparse inference.
/// Link `sparsity::core`.

#include "sparsity/closest_match.h"
#include "sparsity/config.h"
#include "sparsity/config_error.h"
#include "sparsity/float_text.h"
#include "sparsity/data_scheduler/base_data_scheduler.h"
#include "sparsity/data_scheduler/cubic_sl_scheduler.h"
#include "sparsity/data_scheduler/lambda_sl_scheduler.h"
#include "sparsity/data_scheduler/polynomial_decay_scheduler.h"
#include "sparsity/data_scheduler/registry.h"
#include "sparsity/data_scheduler/step_sl_scheduler.h"
#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/data_sparsifier/data_norm_sparsifier.h"
#include "sparsity/data_sparsifier/global_norm_sparsifier.h"
#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/file_io.h"
#include "sparsity/logging.h"
#include "sparsity/lossy/activation_collector.h"
#include "sparsity/lossy/activation_sparsity.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/lossy/penalties.h"
#include "sparsity/lossy/sparse_loss.h"
#include "sparsity/message_text.h"
#include "sparsity/option_fields.h"
#include "sparsity/runtime/allocator.h"
#include "sparsity/runtime/blas_info.h"
#include "sparsity/runtime/threads.h"
#include "sparsity/sparse/quantized_embedding.h"
#include "sparsity/sparse/sparse_file.h"
#include "sparsity/sparse/sparse_inference.h"
#include "sparsity/sparse/sparse_linear.h"
#include "sparsity/state_file.h"
