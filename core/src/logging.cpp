#include "sparsity/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace sparsity {

std::shared_ptr<spdlog::logger> logger() {
  // Looked up in spdlog's registry each time so that a user who replaced or
  // dropped the "sparsity" logger gets theirs, not a stale copy.
  static std::mutex creation;
  std::lock_guard<std::mutex> lock(creation);
  if (auto existing = spdlog::get("sparsity")) return existing;
  return spdlog::stderr_color_mt("sparsity");
}

}  // namespace sparsity
