#pragma once

/// The sparsity plugin: a minimal Trainer, the Callback API and the
/// data-sparsity callbacks. Link `sparsity::plugin`.

#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/callback_registry.h"
#include "sparsity/plugin/data_source.h"
#include "sparsity/plugin/distributed.h"
#include "sparsity/plugin/idx_reader.h"
#include "sparsity/plugin/lossy_sparsifier_callback.h"
#include "sparsity/plugin/model_copy.h"
#include "sparsity/plugin/model_state.h"
#include "sparsity/plugin/parameter_selection.h"
#include "sparsity/plugin/post_training_data_sparsity.h"
#include "sparsity/plugin/sparsifying_callback.h"
#include "sparsity/plugin/sparsity_report.h"
#include "sparsity/plugin/trainer.h"
#include "sparsity/plugin/training_aware_data_sparsity.h"
#include "sparsity/plugin/training_module.h"
