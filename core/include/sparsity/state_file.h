#pragma once

// Saved states on disk: a dict pickled in LibTorch's format (readable with
// Python's torch.load), with a checksum of its content, written atomically.
// What sparsifiers, schedulers and the Trainer's checkpoints are saved with.

#include <ATen/core/ivalue.h>

#include <string>
#include <vector>

namespace sparsity {

/// A new empty dict with string keys and values of any type: the shape of
/// every saved state (sparsifiers, schedulers, callbacks, checkpoints).
c10::impl::GenericDict new_state_dict();

/// Writes `state` (a dict with string keys) to `path`, adding a "checksum" entry.
void save_state_file(const std::string& path, const c10::IValue& state);

/// Reads a file written by save_state_file and verifies its checksum. Returns
/// the dict without the checksum. A missing, truncated or corrupt file is a
/// std::runtime_error that names the path and `what` the file should hold.
c10::IValue load_state_file(const std::string& path, const std::string& what);

/// `torch::jit::pickle_load` that trusts no size in the file: every tensor
/// must be dense and lie inside the bytes its storage record really holds.
/// LibTorch sizes a storage by the element count the pickle declares, not by
/// its record, so a corrupt or crafted file would otherwise make every read of
/// such a tensor run past its memory (a fuzzer found one). The pickle's own
/// sizes are checked before LibTorch reads it: a string longer than the bytes
/// left or a memo index far past the entries so far would make it allocate up
/// to gigabytes first. Throws std::invalid_argument naming the offending size
/// (or the tensor's shape and the bytes it needs); a malformed archive or
/// pickle is LibTorch's c10::Error.
c10::IValue checked_pickle_load(const std::vector<char>& bytes);

}  // namespace sparsity
