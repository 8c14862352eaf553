// QuantizedEmbeddingBag tests (to come).
#include "test_support.h"
