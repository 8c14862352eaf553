#include "sparsity/runtime/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <mutex>

namespace sparsity {

bool tune_allocator_for_training() {
#if defined(__GLIBC__)
  static const bool applied = [] {
    constexpr int kMmapThreshold = 32 << 20;  // glibc's own upper bound for its dynamic threshold
    constexpr int kTrimThreshold = 256 << 20;
    return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  }();
  return applied;
#else
  return false;
#endif
}

}  // namespace sparsity
