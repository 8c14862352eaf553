#include "sparsity/message_text.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace sparsity {

namespace {

// The length of the valid UTF-8 sequence starting at text[i], or 0.
size_t utf8_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t j) { return static_cast<unsigned char>(text[j]); };
  const unsigned char lead = byte(i);
  size_t n = 0;
  if (lead >= 0xc2 && lead <= 0xdf) n = 2;
  else if (lead >= 0xe0 && lead <= 0xef) n = 3;
  else if (lead >= 0xf0 && lead <= 0xf4) n = 4;
  else return 0;
  if (i + n > text.size()) return 0;
  for (size_t j = i + 1; j < i + n; ++j) {
    if ((byte(j) & 0xc0) != 0x80) return 0;
  }
  // Overlong forms, surrogates and code points past U+10FFFF.
  if (lead == 0xe0 && byte(i + 1) < 0xa0) return 0;
  if (lead == 0xed && byte(i + 1) > 0x9f) return 0;
  if (lead == 0xf0 && byte(i + 1) < 0x90) return 0;
  if (lead == 0xf4 && byte(i + 1) > 0x8f) return 0;
  return n;
}

}  // namespace

std::string message_text(std::string_view text, size_t limit) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::string piece;
    size_t consumed = 1;
    if (c == '\n') {
      piece = "\\n";
    } else if (c == '\t') {
      piece = "\\t";
    } else if (c == '\r') {
      piece = "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      piece = fmt::format("\\x{:02x}", c);
    } else if (c < 0x80) {
      piece = std::string(1, static_cast<char>(c));
    } else if (const size_t n = utf8_length(text, i); n > 0) {
      piece = std::string(text.substr(i, n));
      consumed = n;
    } else {
      piece = fmt::format("\\x{:02x}", c);
    }
    if (out.size() + piece.size() > limit) {
      return fmt::format("{}... ({} bytes)", out, text.size());
    }
    out += piece;
    i += consumed;
  }
  return out;
}

std::string shape_text(const at::Tensor& tensor) {
  // A message about a bad tensor must not fail itself: sizes() of an undefined one throws.
  if (!tensor.defined()) return "(undefined)";
  return fmt::format("[{}]", fmt::join(tensor.sizes(), ", "));
}

std::string error_text(const std::exception& error) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) return c10_error->what_without_backtrace();
  const std::string message = error.what();
  return message.substr(0, message.find("\nException raised from"));
}

}  // namespace sparsity
