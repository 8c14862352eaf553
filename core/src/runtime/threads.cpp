#include "sparsity/runtime/threads.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <sched.h>

#include <stdexcept>
#include <thread>

namespace sparsity {

namespace {
// Oversubscribing up to this factor can still help a program that waits on
// I/O; beyond it only a mistake asks for that many threads.
constexpr int64_t kMaxThreadsPerCore = 4;
}  // namespace

int64_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int64_t>(hardware) : 1;
}

int64_t max_threads() { return kMaxThreadsPerCore * available_cores(); }

int64_t resolve_threads(int64_t requested) {
  if (requested < 0) {
    throw std::invalid_argument(
        fmt::format("threads must be 0 (every available core) or positive, got {}", requested));
  }
  if (requested > max_threads()) {
    throw std::invalid_argument(fmt::format(
        "threads {} is more than {} ({} x the {} cores this process may use); use 0 for every core",
        requested, max_threads(), kMaxThreadsPerCore, available_cores()));
  }
  return requested == 0 ? available_cores() : requested;
}

int64_t set_threads(int64_t requested) {
  const int64_t threads = resolve_threads(requested);
  if (at::get_num_threads() != threads) at::set_num_threads(static_cast<int>(threads));
  return threads;
}

}  // namespace sparsity
