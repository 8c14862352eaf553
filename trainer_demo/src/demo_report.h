#pragma once
// Helpers for the demo's outputs that do not train anything.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sparsity::demo {

/// One metrics.csv per run, merged into one table with a leading `run`
/// column: the header is `run` then the union of the files' columns (`epoch`,
/// `step` first, the rest sorted); a row lacking a column has an empty cell.
/// A missing file contributes nothing; a malformed one is std::runtime_error
/// naming it.
std::string merge_metrics_csv(const std::vector<std::pair<std::string, std::string>>& run_and_path);

/// The size of `path` once compressed by zlib at its default level (what
/// gzip would give, less its 18-byte header): how much of a file is zeros and
/// repetition.
int64_t compressed_size(const std::string& path);

/// "1.02 MB", "310.4 kB", "512 B".
std::string human_bytes(int64_t bytes);

}  // namespace sparsity::demo
