#pragma once

// The switch every hand-vectorised kernel obeys: SPARSITY_PORTABLE_KERNELS
// set to anything but "" or "0" forces the portable C++ paths (tests run both).

#include <cstdlib>
#include <cstring>

namespace sparsity::detail {

/// Whether SPARSITY_PORTABLE_KERNELS asks for the portable kernels. Read at
/// every call, so that a test can switch it.
inline bool portable_kernels_requested() {
  const char* value = std::getenv("SPARSITY_PORTABLE_KERNELS");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

}  // namespace sparsity::detail
