#include "mask_codec.h"

#include "../config_ivalue.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <stdexcept>

namespace sparsity::detail {

namespace {

using Dict = StateDict;

int64_t numel_of(const std::vector<int64_t>& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument(fmt::format("{}: negative mask dimension {}", what, d));
    n *= d;
  }
  return n;
}

const c10::IValue& field(const Dict& dict, const std::string& key, const std::string& what) {
  return dict_field(dict, key, what + ": encoded mask");
}

}  // namespace

c10::IValue encode_mask(const at::Tensor& mask_in) {
  const at::Tensor mask = mask_in.to(at::kCPU).contiguous();
  const int64_t n = mask.numel();
  const uint8_t* m = mask.data_ptr<uint8_t>();
  int64_t ones = 0;
  for (int64_t i = 0; i < n; ++i) ones += m[i] != 0;
  const int64_t minority = std::min(ones, n - ones);
  const bool wide = n > std::numeric_limits<int32_t>::max();
  const int64_t sparse_bytes = minority * (wide ? 8 : 4);
  const int64_t packed_bytes = (n + 7) / 8;

  Dict dict = new_state_dict();
  dict.insert("shape", c10::List<int64_t>(mask.sizes().vec()));
  if (sparse_bytes < packed_bytes) {
    const uint8_t fill = ones * 2 >= n ? 1 : 0;
    at::Tensor indices = at::empty({minority}, at::TensorOptions().dtype(wide ? at::kLong : at::kInt));
    int64_t k = 0;
    if (wide) {
      int64_t* out = indices.data_ptr<int64_t>();
      for (int64_t i = 0; i < n; ++i)
        if ((m[i] != 0) != (fill != 0)) out[k++] = i;
    } else {
      int32_t* out = indices.data_ptr<int32_t>();
      for (int64_t i = 0; i < n; ++i)
        if ((m[i] != 0) != (fill != 0)) out[k++] = static_cast<int32_t>(i);
    }
    dict.insert("encoding", std::string("sparse"));
    dict.insert("fill", int64_t{fill});
    dict.insert("indices", indices);
  } else {
    at::Tensor bits = at::zeros({packed_bytes}, at::TensorOptions().dtype(at::kByte));
    uint8_t* out = bits.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      if (m[i] != 0) out[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
    dict.insert("encoding", std::string("bitpacked"));
    dict.insert("bits", bits);
  }
  return dict;
}

at::Tensor decode_mask(const c10::IValue& encoded, const std::string& what) {
  const Dict dict = as_dict(encoded, what + ": encoded mask");
  const c10::IValue& shape_value = field(dict, "shape", what);
  const c10::IValue& encoding_value = field(dict, "encoding", what);
  if (!shape_value.isIntList() || !encoding_value.isString())
    throw std::invalid_argument(fmt::format("{}: malformed encoded mask", what));
  const std::vector<int64_t> shape = shape_value.toIntVector();
  const int64_t n = numel_of(shape, what);
  const std::string encoding = encoding_value.toStringRef();

  at::Tensor mask = at::empty(shape, at::TensorOptions().dtype(at::kByte));
  uint8_t* m = mask.data_ptr<uint8_t>();
  if (encoding == "bitpacked") {
    const c10::IValue& bits_value = field(dict, "bits", what);
    if (!bits_value.isTensor())
      throw std::invalid_argument(fmt::format("{}: mask bits are not a tensor", what));
    const at::Tensor bits = bits_value.toTensor().contiguous();
    if (bits.scalar_type() != at::kByte || bits.dim() != 1 || bits.numel() != (n + 7) / 8) {
      throw std::invalid_argument(fmt::format(
          "{}: mask bits hold {} bytes of {}, expected {} bytes of uint8 for shape [{}]", what,
          bits.numel(), c10::toString(bits.scalar_type()), (n + 7) / 8, fmt::join(shape, ", ")));
    }
    const uint8_t* in = bits.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n; ++i) m[i] = (in[i >> 3] >> (i & 7)) & 1u;
  } else if (encoding == "sparse") {
    const c10::IValue& fill_value = field(dict, "fill", what);
    const c10::IValue& indices_value = field(dict, "indices", what);
    if (!fill_value.isInt() || (fill_value.toInt() != 0 && fill_value.toInt() != 1) ||
        !indices_value.isTensor())
      throw std::invalid_argument(fmt::format("{}: malformed sparse mask", what));
    const uint8_t fill = static_cast<uint8_t>(fill_value.toInt());
    const at::Tensor indices = indices_value.toTensor().to(at::kLong).contiguous();
    if (indices.dim() != 1)
      throw std::invalid_argument(fmt::format("{}: sparse mask indices must be 1-D", what));
    std::memset(m, fill, static_cast<size_t>(n));
    const int64_t* idx = indices.data_ptr<int64_t>();
    for (int64_t k = 0; k < indices.numel(); ++k) {
      if (idx[k] < 0 || idx[k] >= n)
        throw std::invalid_argument(
            fmt::format("{}: sparse mask index {} outside a mask of {} elements", what, idx[k], n));
      m[idx[k]] = 1 - fill;
    }
  } else {
    throw std::invalid_argument(fmt::format(
        "{}: unknown mask encoding '{}' (expected 'bitpacked' or 'sparse')", what, encoding));
  }
  return mask;
}

}  // namespace sparsity::detail
