#include "pickle_prescan.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

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
  kEmptyList = ']',
  kEmptyTuple = ')',
  kEmptyDict = '}',
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kNone = 'N',
  kMark = '(',
  kTuple = 't',
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kAppends = 'e',
  kList = 'l',
  kDict = 'd',
  kSetItems = 'u',
  kSetItem = 's',
  kNewObj = 0x81,
  kBuild = 'b',
  kReduce = 'R',
  kBinPersId = 'Q',
};

// The depth of the Unpickler's value stack and its marks, as its opcodes
// change them. It checks few of these itself: a DICT over an odd number of
// values reads past its stack, and a mark above the stack (the values under
// it consumed since) makes TUPLE, LIST and DICT erase from past its end, which
// corrupted the heap (found by fuzzing).
class StackModel {
 public:
  void push() { ++depth_; }
  void mark() { marks_.push_back(depth_); }
  /// Requires `n` values; then `n` are replaced by `left`.
  void take(size_t n, size_t left, unsigned char op, size_t at) {
    if (depth_ < n) fail(op, at, fmt::format("needs {} values, the stack holds {}", n, depth_));
    depth_ = depth_ - n + left;
  }
  /// Pops the last mark: the values above it are then replaced by `left`.
  /// `pairs`: they must come in pairs (keys and values); `under`: a value
  /// (the container) must lie under the mark.
  void take_mark(size_t left, bool pairs, bool under, unsigned char op, size_t at) {
    if (marks_.empty()) fail(op, at, "has no mark");
    const size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > depth_) fail(op, at, fmt::format("refers to a mark at depth {} above the stack's {}", mark, depth_));
    if (under && mark == 0) fail(op, at, "has no container under its mark");
    if (pairs && (depth_ - mark) % 2 != 0) fail(op, at, fmt::format("pairs {} values", depth_ - mark));
    depth_ = mark + left;
  }

 private:
  [[noreturn]] static void fail(unsigned char op, size_t at, const std::string& why) {
    throw std::invalid_argument(fmt::format("the pickle is malformed: opcode 0x{:02x} at byte {} {}", op, at, why));
  }

  size_t depth_ = 0;
  std::vector<size_t> marks_;
};

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
  StackModel stack;
  uint64_t memo_entries = 0;
  while (!in.done()) {
    const size_t at = in.pos();
    const unsigned char op = in.byte();
    uint64_t value = 0;
    switch (op) {
      case kStop:
        return;
      case kProto:
        if (!in.skip(1)) return;
        break;
      case kBinInt1:
      case kBinGet:
        if (!in.skip(1)) return;
        stack.push();
        break;
      case kBinInt2:
        if (!in.skip(2)) return;
        stack.push();
        break;
      case kBinInt:
      case kLongBinGet:
        if (!in.skip(4)) return;
        stack.push();
        break;
      case kBinFloat:
        if (!in.skip(8)) return;
        stack.push();
        break;
      case kLong1:
        if (!in.uint(1, &value) || !in.skip(value)) return;
        stack.push();
        break;
      case kBinPut:
      case kLongBinPut:
        if (!in.uint(op == kBinPut ? 1 : 4, &value)) return;
        stack.take(1, 1, op, at);
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
        stack.push();
        break;
      case kGlobal:
        // Every global the Unpickler knows pushes its index.
        if (!in.skip_line() || !in.skip_line()) return;
        stack.push();
        break;
      case kEmptyList:
      case kEmptyTuple:
      case kEmptyDict:
      case kNewTrue:
      case kNewFalse:
      case kNone:
        stack.push();
        break;
      case kMark:
        stack.mark();
        break;
      case kTuple:
      case kList:
        stack.take_mark(1, false, false, op, at);
        break;
      case kDict:
        stack.take_mark(1, true, false, op, at);
        break;
      case kAppends:
        stack.take_mark(0, false, true, op, at);
        break;
      case kSetItems:
        stack.take_mark(0, true, true, op, at);
        break;
      case kTuple1:
        stack.take(1, 1, op, at);
        break;
      case kTuple2:
        stack.take(2, 1, op, at);
        break;
      case kTuple3:
        stack.take(3, 1, op, at);
        break;
      case kSetItem:
        stack.take(3, 1, op, at);
        break;
      case kNewObj:
        stack.take(1, 0, op, at);
        break;
      case kBuild:
      case kReduce:
        // The function's index and its argument become its result.
        stack.take(2, 1, op, at);
        break;
      case kBinPersId:
        stack.take(1, 1, op, at);
        break;
      default:
        // An opcode the Unpickler does not know: it rejects it itself.
        return;
    }
  }
}

}  // namespace sparsity::detail
