#pragma once

#include <string>
#include <vector>

namespace sparsity::demo {

/// A free TCP port on the loopback (bound to port 0, read back, released).
int free_local_port();

/// Runs `nproc` copies of `program` with `args` as local ranks of one
/// data-parallel run: each with RANK, LOCAL_RANK, WORLD_SIZE,
/// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port) set,
/// as torchrun does. SIGINT and SIGTERM are forwarded to every rank; when a
/// rank fails (nonzero exit or a signal), the others are stopped (SIGTERM,
/// then SIGKILL after 5 s). Returns 0 when every rank succeeded, otherwise
/// the first failed rank's exit status (128 + signal for a signal), after
/// printing which rank failed and how to stderr. `nproc` in [1, 1024].
int launch_local_ranks(int nproc, const std::string& program, const std::vector<std::string>& args);

}  // namespace sparsity::demo
