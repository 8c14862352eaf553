#pragma once

#include <cstddef>

namespace sparsity::detail {

/// Walks the opcodes of a protocol-2 pickle the way LibTorch's Unpickler reads
/// them and throws std::invalid_argument, naming the opcode's offset, where a
/// declared size could make the Unpickler allocate more than the pickle holds:
/// a string longer than the bytes left (it reserves the declared length first,
/// up to 4 GiB) or a memo index past the entries stored so far (it fills the
/// gap, up to 2^32 values, so a gap may be no longer than the pickle), and
/// where an opcode takes more values or pairs than its stack or its mark holds
/// (the Unpickler then reads and erases past its stack). Stops at STOP or at
/// an opcode the Unpickler does not know, which it rejects itself.
void prescan_pickle(const char* data, size_t size);

}  // namespace sparsity::detail
