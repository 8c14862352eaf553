#pragma once

// ParameterSelection, sparsifier_name and attach_parameters live in the core
// library now (a MaskGuard needs them without the plugin); this header keeps
// the plugin's include path working.
#include "sparsity/parameter_selection.h"
