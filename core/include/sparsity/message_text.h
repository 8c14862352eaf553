#pragma once
// Text from users quoted in error messages: a value may be megabytes long or
// hold terminal escape sequences, and an error message must stay readable and
// harmless on a terminal.

#include <cstddef>
#include <string>
#include <string_view>

namespace sparsity {

/// The longest quoted text `message_text` keeps by default, in bytes.
inline constexpr size_t kMessageTextLimit = 120;

/// `text` fit to quote in an error message: control bytes and bytes that are
/// not valid UTF-8 are escaped (`\n`, `\t`, `\r`, `\xNN`; valid UTF-8 is
/// kept), and text longer than `limit` bytes is cut there (never inside a
/// character or an escape) with "... (N bytes)" appended, N the original
/// length.
///
/// Example:
/// ```
/// sparsity::message_text("a\x1b[31mb");          // the 9 characters a\x1b[31mb
/// sparsity::message_text(std::string(1000, 'x')); // 120 x's, then "... (1000 bytes)"
/// ```
std::string message_text(std::string_view text, size_t limit = kMessageTextLimit);

}  // namespace sparsity
