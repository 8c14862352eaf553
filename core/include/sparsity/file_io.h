#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sparsity {

/// Writes `bytes` to `path` so that readers see either the old file or the
/// whole new one, never a partial write: the bytes go to a temporary file in the
/// same directory, are flushed to disk, and the temporary is renamed over
/// `path`. Throws std::runtime_error naming the path and the system's reason.
void write_file_atomically(const std::string& path, const std::vector<char>& bytes);
void write_file_atomically(const std::string& path, std::string_view text);

/// The whole content of `path`. Throws std::runtime_error naming the path when
/// it cannot be opened or read.
std::vector<char> read_file(const std::string& path);

}  // namespace sparsity
