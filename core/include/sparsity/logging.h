#pragma once

#include <spdlog/fwd.h>

#include <memory>

namespace sparsity {

/// The logger sparsity writes its warnings and progress to: an spdlog logger
/// named "sparsity", registered with spdlog on first use, printing to stderr.
/// Change its level or sinks to redirect or silence it, e.g.
/// `sparsity::logger()->set_level(spdlog::level::err);`.
std::shared_ptr<spdlog::logger> logger();

}  // namespace sparsity
