#include "state_checksum.h"

#include <ATen/ATen.h>

#include <cstring>
#include <stdexcept>

namespace sparsity::detail {

namespace {

// Word-at-a-time mixing (a multiply-xorshift in the style of splitmix64): fast
// enough to run over hundreds of MB on every save and load.
class Hasher {
 public:
  void mix(uint64_t word) {
    h_ ^= word + 0x9e3779b97f4a7c15ull + (h_ << 6) + (h_ >> 2);
    h_ *= 0xbf58476d1ce4e5b9ull;
    h_ ^= h_ >> 31;
  }
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      mix(word);
    }
    uint64_t tail = 0;
    if (size > i) std::memcpy(&tail, p + i, size - i);  // p may be null when size is 0
    mix(tail ^ (static_cast<uint64_t>(size) << 56));
  }
  void value(const c10::IValue& v) {
    if (v.isTensor()) {
      const at::Tensor t = v.toTensor().detach().to(at::kCPU).contiguous();
      mix(1);
      mix(static_cast<uint64_t>(t.scalar_type()));
      for (int64_t d : t.sizes()) mix(static_cast<uint64_t>(d));
      bytes(t.data_ptr(), t.numel() * t.element_size());
    } else if (v.isString()) {
      mix(2);
      bytes(v.toStringRef().data(), v.toStringRef().size());
    } else if (v.isInt()) {
      mix(3);
      mix(static_cast<uint64_t>(v.toInt()));
    } else if (v.isDouble()) {
      mix(4);
      const double d = v.toDouble();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      mix(bits);
    } else if (v.isBool()) {
      mix(v.toBool() ? 5 : 6);
    } else if (v.isList()) {
      mix(7);
      for (const auto& item : v.toListRef()) value(item);
    } else if (v.isTuple()) {
      mix(8);
      for (const auto& item : v.toTupleRef().elements()) value(item);
    } else if (v.isGenericDict()) {
      mix(9);
      for (const auto& item : v.toGenericDict()) {
        value(item.key());
        value(item.value());
      }
    } else if (v.isNone()) {
      mix(10);
    } else {
      throw std::invalid_argument(std::string("cannot checksum a ") + v.tagKind());
    }
  }
  uint64_t digest() const { return h_; }

 private:
  uint64_t h_ = 0x243f6a8885a308d3ull;
};

}  // namespace

uint64_t state_checksum(const c10::IValue& value) {
  Hasher hasher;
  hasher.value(value);
  return hasher.digest();
}

}  // namespace sparsity::detail
