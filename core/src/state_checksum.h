#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>

namespace sparsity::detail {

/// A 64-bit checksum of a saved state's content: the bytes of every tensor and
/// every scalar, string, list and dict entry, in order. The zip container's own
/// CRCs do not cover everything its reader trusts (a flipped header byte can
/// shift where a tensor is read from), so saved states carry this as well.
uint64_t state_checksum(const c10::IValue& value);

}  // namespace sparsity::detail
