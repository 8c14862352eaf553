#include "pickle_prescan.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace sparsity::detail {

namespace {

// The opcodes of LibTorch's Unpickler::readInstruction that carry arguments;
// the others carry none.
enum Opcode : unsigned char {
  kProto = 0x80,
  kStop = '.',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kBinInt = 'J',
  kLong1 = 0x8a,
  kBinFloat = 'G',
  kBinUnicode = 'X',
  kGlobal = 'c',
};

bool takes_no_argument(unsigned char op) {
  static constexpr unsigned char kPlain[] = {
      ']', ')', '(', 0x88, 0x89, 'N', 't', 0x85, 0x86, 0x87, '}', 'e', 'l', 'd', 'u', 0x81, 'b', 'R', 'Q', 's'};
  return std::memchr(kPlain, op, sizeof(kPlain)) != nullptr;
}

class Cursor {
 public:
  Cursor(const char* data, size_t size) : data_(data), size_(size) {}

  bool done() const { return pos_ >= size_; }
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  unsigned char byte() { return static_cast<unsigned char>(data_[pos_++]); }

  // A little-endian unsigned integer of `n` bytes, or false where the pickle
  // ends first (the Unpickler then reports the end itself).
  bool uint(size_t n, uint64_t* value) {
    if (left() < n) return false;
    *value = 0;
    for (size_t i = 0; i < n; ++i) *value |= uint64_t{static_cast<unsigned char>(data_[pos_ + i])} << (8 * i);
    pos_ += n;
    return true;
  }

  bool skip(uint64_t n) {
    if (left() < n) return false;
    pos_ += n;
    return true;
  }

  bool skip_line() {
    const void* newline = std::memchr(data_ + pos_, '\n', left());
    if (newline == nullptr) return false;
    pos_ = static_cast<const char*>(newline) - data_ + 1;
    return true;
  }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

void prescan_pickle(const char* data, size_t size) {
  Cursor in(data, size);
  uint64_t memo_entries = 0;
  while (!in.done()) {
    const size_t at = in.pos();
    const unsigned char op = in.byte();
    uint64_t value = 0;
    switch (op) {
      case kStop:
        return;
      case kProto:
      case kBinInt1:
      case kBinGet:
        if (!in.skip(1)) return;
        break;
      case kBinInt2:
        if (!in.skip(2)) return;
        break;
      case kBinInt:
      case kLongBinGet:
        if (!in.skip(4)) return;
        break;
      case kBinFloat:
        if (!in.skip(8)) return;
        break;
      case kLong1:
        if (!in.uint(1, &value) || !in.skip(value)) return;
        break;
      case kBinPut:
      case kLongBinPut:
        if (!in.uint(op == kBinPut ? 1 : 4, &value)) return;
        // Picklers number memo entries 0, 1, 2, ...; a later index makes the
        // Unpickler fill the gap with that many values, so bound the gap by
        // the bytes the pickle has.
        if (value >= memo_entries) {
          if (value - memo_entries > size) {
            throw std::invalid_argument(fmt::format(
                "the pickle stores memo entry {} at byte {} when it holds {} entries", value, at, memo_entries));
          }
          memo_entries = value + 1;
        }
        break;
      case kBinUnicode:
        if (!in.uint(4, &value)) return;
        if (value > in.left()) {
          throw std::invalid_argument(fmt::format(
              "the pickle declares a string of {} bytes at byte {} with {} bytes left", value, at, in.left()));
        }
        in.skip(value);
        break;
      case kGlobal:
        if (!in.skip_line() || !in.skip_line()) return;
        break;
      default:
        if (!takes_no_argument(op)) return;
        break;
    }
  }
}

}  // namespace sparsity::detail
