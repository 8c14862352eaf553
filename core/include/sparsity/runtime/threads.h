#pragma once

#include <cstdint>

namespace sparsity {

/// The number of cores this process may run on: the size of its CPU affinity
/// set (`sched_getaffinity`), which is what a container or `taskset` leaves
/// it, not the machine's total. At least 1.
int64_t available_cores();

/// The most threads `resolve_threads` accepts: a multiple of the available
/// cores. More threads than that only oversubscribe the cores (and a typo
/// such as 100000 would stall the process for minutes creating them).
int64_t max_threads();

/// The thread count a `threads` setting stands for: 0 means every available
/// core (`available_cores()`), a positive number itself. Throws
/// std::invalid_argument naming the value when it is negative or above
/// `max_threads()`.
int64_t resolve_threads(int64_t requested);

/// Sets LibTorch's intra-op thread count (and so OpenBLAS's, which shares
/// its OpenMP pool) to `resolve_threads(requested)` for the whole process, and
/// returns that count. LibTorch's own default on a machine with one thread per
/// core pair is 1; `set_threads(0)` uses every core.
///
/// Example:
/// ```
/// const int64_t threads = sparsity::set_threads(0);  // every core
/// ```
int64_t set_threads(int64_t requested);

}  // namespace sparsity
