#pragma once
// Text quoted in error messages. A user's value may be megabytes long or hold
// terminal escape sequences, and an error message must stay readable and
// harmless on a terminal; a LibTorch error carries a C++ backtrace that would
// bury the message it is quoted in.

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>

namespace at {
class Tensor;
}  // namespace at

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

/// A tensor's shape as error messages write it: "[3, 4]", "[]" for a scalar,
/// "(undefined)" for an undefined tensor (whose sizes() would throw).
std::string shape_text(const at::Tensor& tensor);

/// The message of `error` without LibTorch's C++ backtrace: a `c10::Error`'s
/// `what_without_backtrace()`, and any other exception's `what()` cut where a
/// backtrace starts ("\nException raised from"), as when a LibTorch message
/// was copied into another exception. Messages without one are kept whole.
///
/// Example:
/// ```
/// try {
///   TORCH_CHECK(false, "tensor trouble");
/// } catch (const std::exception& e) {
///   sparsity::error_text(e);  // "tensor trouble"; e.what() goes on with "Exception raised from ..."
/// }
/// ```
std::string error_text(const std::exception& error);

}  // namespace sparsity
