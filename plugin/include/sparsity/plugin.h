#pragma once

/// The sparsity plugin: a minimal Trainer, the Callback API and the
/// data-sparsity callbacks. Link `sparsity::plugin`.

#include "sparsity/plugin/callback.h"
#include "sparsity/plugin/data_source.h"
#include "sparsity/plugin/trainer.h"
#include "sparsity/plugin/training_module.h"
