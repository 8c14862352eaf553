#include "sparsity/sparse/sparse_file.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../config_ivalue.h"
#include "sparsity/message_text.h"
#include "sparsity/state_file.h"

namespace sparsity {

using detail::StateDict;

namespace {

const char* const kFormat = "sparsity.sparse_file";
constexpr int64_t kVersion = 1;
const char* const kWhat = "a compact sparse file";

// The dtype names of the file (those of Python's torch.<name>).
std::string dtype_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kByte: return "uint8";
    case at::kChar: return "int8";
    case at::kShort: return "int16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kBool: return "bool";
    default: return c10::toString(type);
  }
}

// The integer type of the same width as a floating type: its bit pattern.
at::ScalarType bits_type(at::ScalarType type) {
  switch (c10::elementSize(type)) {
    case 2: return at::kShort;
    case 4: return at::kInt;
    case 8: return at::kLong;
    default: throw std::invalid_argument(fmt::format("no bit-pattern type for {}", dtype_name(type)));
  }
}

// The dtype the values of a floating tensor of `type` are stored in.
at::ScalarType stored_type(SparseValueType value_type, at::ScalarType type) {
  switch (value_type) {
    case SparseValueType::Float32: return type;
    case SparseValueType::Float16: return at::kHalf;
    case SparseValueType::Int8: return at::kChar;
  }
  return type;
}

std::optional<SparseValueType> value_type_from_string(const std::string& text) {
  for (SparseValueType t : {SparseValueType::Float32, SparseValueType::Float16, SparseValueType::Int8}) {
    if (text == to_string(t)) return t;
  }
  return std::nullopt;
}

// Rows of the int8 encoding: dim 0 of a tensor of 2 or more dimensions, else one.
int64_t int8_rows(at::IntArrayRef shape) { return shape.size() >= 2 ? shape[0] : 1; }

// The module's state in save order: parameters, then buffers.
std::vector<std::pair<std::string, at::Tensor>> module_state(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (item.value().defined()) state.emplace_back(item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    if (item.value().defined()) state.emplace_back(item.key(), item.value());
  }
  return state;
}

c10::List<int64_t> shape_list(at::IntArrayRef shape) { return c10::List<int64_t>(shape.vec()); }

// Pieces of one dtype gathered into one flat storage; each piece becomes a view.
class FlatStorage {
 public:
  // Returns the index of the piece.
  size_t add(at::Tensor piece) {
    pieces_.push_back(piece.contiguous().view(-1));
    return pieces_.size() - 1;
  }
  void build() {
    if (pieces_.empty()) return;
    flat_ = pieces_.size() == 1 ? pieces_[0].clone() : at::cat(pieces_);
    int64_t offset = 0;
    for (const auto& piece : pieces_) {
      offsets_.push_back(offset);
      offset += piece.numel();
    }
  }
  at::Tensor view(size_t index) const { return flat_.narrow(0, offsets_[index], pieces_[index].numel()); }

 private:
  std::vector<at::Tensor> pieces_;
  std::vector<int64_t> offsets_;
  at::Tensor flat_;
};

// A bool tensor (contiguous) packed 8 elements a byte, element i in bit i % 8 of byte i / 8.
at::Tensor pack_bits(const at::Tensor& keep) {
  const int64_t n = keep.numel();
  at::Tensor bytes = at::zeros({(n + 7) / 8}, at::kByte);
  const bool* k = keep.data_ptr<bool>();
  uint8_t* b = bytes.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) b[i >> 3] = static_cast<uint8_t>(b[i >> 3] | (static_cast<uint8_t>(k[i]) << (i & 7)));
  return bytes;
}

// What `save_sparse` keeps of one floating tensor before the flat storages exist.
struct PendingEntry {
  std::string name;
  at::Tensor original;  // the module's tensor (for shape and dtype)
  bool masked = false;
  at::ScalarType stored = at::kFloat;
  size_t values = 0, mask = 0, scale = 0;
  bool has_scale = false;
};

[[noreturn]] void malformed(const std::string& path, const std::string& name, const std::string& why) {
  throw std::runtime_error(fmt::format("cannot read {} from '{}': tensor '{}': {}", kWhat, path, message_text(name), why));
}

const c10::IValue& field(const StateDict& dict, const std::string& key, const std::string& path,
                         const std::string& name) {
  const auto it = dict.find(c10::IValue(key));
  if (it == dict.end()) malformed(path, name, fmt::format("no '{}' key", key));
  return it->value();
}

at::Tensor tensor_field(const StateDict& dict, const std::string& key, const std::string& path,
                        const std::string& name, at::ScalarType dtype, int64_t numel) {
  const c10::IValue& value = field(dict, key, path, name);
  if (!value.isTensor()) malformed(path, name, fmt::format("'{}' is a {}, not a tensor", key, value.tagKind()));
  const at::Tensor t = value.toTensor();
  if (t.scalar_type() != dtype || t.dim() != 1 || t.numel() != numel) {
    malformed(path, name,
              fmt::format("'{}' is {} of shape {}, expected {} of shape [{}]", key, dtype_name(t.scalar_type()),
                          shape_text(t), dtype_name(dtype), numel));
  }
  return t.contiguous();
}

// Decodes one entry of the file into a new tensor of `target`'s shape and dtype.
at::Tensor decode_entry(const c10::IValue& value, const at::Tensor& target, SparseValueType value_type,
                        const std::string& path, const std::string& name) {
  if (!value.isGenericDict()) malformed(path, name, fmt::format("the entry is a {}, not a dict", value.tagKind()));
  const StateDict entry = value.toGenericDict();
  const c10::IValue& dtype = field(entry, "dtype", path, name);
  const c10::IValue& shape = field(entry, "shape", path, name);
  const c10::IValue& encoding = field(entry, "encoding", path, name);
  if (!dtype.isString()) malformed(path, name, "'dtype' is not a string");
  if (!encoding.isString()) malformed(path, name, "'encoding' is not a string");
  if (!shape.isIntList()) malformed(path, name, "'shape' is not a list of integers");
  const std::vector<int64_t> file_shape = shape.toIntVector();
  const std::string shape_in_file = fmt::format("[{}]", fmt::join(file_shape, ", "));
  if (file_shape != target.sizes().vec()) {
    throw std::invalid_argument(fmt::format("cannot load '{}': tensor '{}' has shape {} in the file, the module's is {}",
                                            path, message_text(name), shape_in_file, shape_text(target)));
  }
  if (dtype.toStringRef() != dtype_name(target.scalar_type())) {
    throw std::invalid_argument(fmt::format("cannot load '{}': tensor '{}' is {} in the file, the module's is {}", path,
                                            message_text(name), message_text(dtype.toStringRef()),
                                            dtype_name(target.scalar_type())));
  }
  const std::string& how = encoding.toStringRef();
  const int64_t n = target.numel();
  if (!target.is_floating_point()) {
    if (how != "plain") malformed(path, name, fmt::format("a {} tensor with encoding '{}'", dtype.toStringRef(), message_text(how)));
    const c10::IValue& stored = field(entry, "tensor", path, name);
    if (!stored.isTensor()) malformed(path, name, "'tensor' is not a tensor");
    const at::Tensor t = stored.toTensor();
    if (t.scalar_type() != target.scalar_type() || t.sizes() != target.sizes()) {
      malformed(path, name, fmt::format("'tensor' is {} of shape {}", dtype_name(t.scalar_type()), shape_text(t)));
    }
    return t.contiguous();
  }
  const at::ScalarType stored = stored_type(value_type, target.scalar_type());
  at::Tensor flat;  // n values of the stored dtype
  if (how == "dense") {
    flat = tensor_field(entry, "values", path, name, stored, n);
  } else if (how == "masked") {
    const at::Tensor mask = tensor_field(entry, "mask", path, name, at::kByte, (n + 7) / 8);
    const uint8_t* bits = mask.data_ptr<uint8_t>();
    if (n % 8 != 0 && (bits[n / 8] >> (n % 8)) != 0) malformed(path, name, "mask bits set past the last element");
    int64_t kept = 0;
    for (int64_t i = 0; i < mask.numel(); ++i) kept += __builtin_popcount(bits[i]);
    const at::Tensor values = tensor_field(entry, "values", path, name, stored, kept);
    at::Tensor keep = at::empty({n}, at::kBool);
    bool* k = keep.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) k[i] = ((bits[i >> 3] >> (i & 7)) & 1) != 0;
    // Scattered as bit patterns, so that NaN payloads survive.
    const at::ScalarType as_bits = c10::isFloatingType(stored) ? bits_type(stored) : stored;
    flat = at::zeros({n}, as_bits).masked_scatter_(keep, values.view(as_bits)).view(stored);
  } else {
    malformed(path, name, fmt::format("unknown encoding '{}'", message_text(how)));
  }
  at::Tensor decoded;
  if (value_type == SparseValueType::Int8) {
    const int64_t rows = int8_rows(target.sizes());
    const at::Tensor scale = tensor_field(entry, "scale", path, name, at::kFloat, rows);
    const int64_t row_length = rows == 0 ? 0 : n / rows;
    decoded = flat.to(at::kFloat).view({rows, row_length}) * scale.unsqueeze(1);
    decoded = decoded.to(target.scalar_type());
  } else {
    decoded = flat.to(target.scalar_type());
  }
  return decoded.view(target.sizes());
}

}  // namespace

const char* to_string(SparseValueType type) {
  switch (type) {
    case SparseValueType::Float32: return "float32";
    case SparseValueType::Float16: return "float16";
    case SparseValueType::Int8: return "int8";
  }
  return "?";
}

void save_sparse(const torch::nn::Module& module, const std::string& path, SparseSaveOptions options) {
  const SparseValueType value_type = options.value_type();
  torch::NoGradGuard no_grad;
  std::map<at::ScalarType, FlatStorage> values;  // by stored dtype
  FlatStorage masks, scales;
  std::vector<PendingEntry> pending;
  StateDict tensors = new_state_dict();

  for (const auto& [name, tensor] : module_state(module)) {
    const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    if (!t.is_floating_point()) {
      StateDict entry = new_state_dict();
      entry.insert("encoding", "plain");
      entry.insert("dtype", dtype_name(t.scalar_type()));
      entry.insert("shape", shape_list(t.sizes()));
      entry.insert("tensor", t.clone());
      tensors.insert(name, entry);
      continue;
    }
    PendingEntry e;
    e.name = name;
    e.original = t;
    e.stored = stored_type(value_type, t.scalar_type());
    const int64_t n = t.numel();
    // A zero of either sign is a zero: multiplying by a mask leaves -0.0 on
    // every pruned negative weight, and keeping those as values would make a
    // pruned model's file barely smaller. NaN is not zero, so it is kept.
    const at::Tensor keep = t.view(-1).ne(0);
    const int64_t kept = keep.sum().item<int64_t>();
    const int64_t item = c10::elementSize(e.stored);
    e.masked = kept * item + (n + 7) / 8 < n * item;

    at::Tensor stored;  // n values in the stored dtype
    switch (value_type) {
      case SparseValueType::Float32:
        stored = t.view(-1);
        break;
      case SparseValueType::Float16: {
        stored = t.view(-1).to(at::kHalf);
        const at::Tensor overflow = t.view(-1).isfinite().logical_and(stored.isfinite().logical_not());
        if (overflow.any().item<bool>()) {
          const double bad = t.view(-1).masked_select(overflow)[0].item<double>();
          throw std::invalid_argument(fmt::format(
              "save_sparse('{}'): tensor '{}' of shape {} holds {}, beyond float16's range (max 65504)", path,
              message_text(name), shape_text(t), bad));
        }
        break;
      }
      case SparseValueType::Int8: {
        const int64_t rows = int8_rows(t.sizes());
        const at::Tensor x = t.to(at::kFloat).reshape({rows, rows == 0 ? 0 : n / rows});
        if (!x.isfinite().all().item<bool>()) {
          throw std::invalid_argument(fmt::format(
              "save_sparse('{}'): tensor '{}' of shape {} holds a non-finite value, which int8 cannot encode", path,
              message_text(name), shape_text(t)));
        }
        const at::Tensor scale = (n == 0 || x.size(1) == 0) ? at::zeros({rows}, at::kFloat)
                                                            : x.abs().amax(1).div(127.0f);
        const at::Tensor divisor = at::where(scale.gt(0), scale, at::ones_like(scale)).unsqueeze(1);
        stored = x.div(divisor).round().clamp(-127, 127).to(at::kChar).view(-1);
        e.has_scale = true;
        e.scale = scales.add(scale);
        break;
      }
    }
    if (e.masked) {
      e.values = values[e.stored].add(stored.masked_select(keep));
      e.mask = masks.add(pack_bits(keep.contiguous()));
    } else {
      e.values = values[e.stored].add(stored);
    }
    pending.push_back(std::move(e));
    tensors.insert(name, c10::IValue());  // keeps the module's order; filled below
  }

  for (auto& [dtype, storage] : values) storage.build();
  masks.build();
  scales.build();
  for (const PendingEntry& e : pending) {
    StateDict entry = new_state_dict();
    entry.insert("encoding", e.masked ? "masked" : "dense");
    entry.insert("dtype", dtype_name(e.original.scalar_type()));
    entry.insert("shape", shape_list(e.original.sizes()));
    entry.insert("values", values.at(e.stored).view(e.values));
    if (e.masked) entry.insert("mask", masks.view(e.mask));
    if (e.has_scale) entry.insert("scale", scales.view(e.scale));
    tensors.insert_or_assign(e.name, entry);
  }

  StateDict root = new_state_dict();
  root.insert("format", kFormat);
  root.insert("version", kVersion);
  root.insert("value_type", to_string(value_type));
  root.insert("tensors", tensors);
  save_state_file(path, root);
}

void load_sparse(torch::nn::Module& module, const std::string& path) {
  const StateDict root = detail::as_dict(load_state_file(path, kWhat), kWhat);
  const auto not_compact = [&](const std::string& why) {
    return std::runtime_error(fmt::format("'{}' is not {}: {}", path, kWhat, why));
  };
  const auto format = root.find(c10::IValue(std::string("format")));
  if (format == root.end() || !format->value().isString()) throw not_compact("it has no 'format' string");
  if (format->value().toStringRef() != kFormat) {
    throw not_compact(fmt::format("its format is '{}', not '{}'", message_text(format->value().toStringRef()), kFormat));
  }
  const auto version = root.find(c10::IValue(std::string("version")));
  if (version == root.end() || !version->value().isInt() || version->value().toInt() != kVersion) {
    const std::string found = version == root.end()          ? std::string("missing")
                              : version->value().isInt() ? std::to_string(version->value().toInt())
                                                         : std::string("a ") + version->value().tagKind();
    throw not_compact(fmt::format("its version is {}, this library reads version {}", found, kVersion));
  }
  const auto type_field = root.find(c10::IValue(std::string("value_type")));
  std::optional<SparseValueType> value_type;
  if (type_field != root.end() && type_field->value().isString()) {
    value_type = value_type_from_string(type_field->value().toStringRef());
  }
  if (!value_type) throw not_compact("its 'value_type' is not one of float32, float16, int8");
  const auto tensors_field = root.find(c10::IValue(std::string("tensors")));
  if (tensors_field == root.end() || !tensors_field->value().isGenericDict()) {
    throw not_compact("it has no 'tensors' dict");
  }
  const StateDict tensors = tensors_field->value().toGenericDict();

  // Decode and check everything before the module changes.
  const auto state = module_state(module);
  std::vector<at::Tensor> decoded;
  decoded.reserve(state.size());
  for (const auto& [name, target] : state) {
    const auto it = tensors.find(c10::IValue(name));
    if (it == tensors.end()) {
      throw std::invalid_argument(fmt::format("cannot load '{}': the module's tensor '{}' (shape {}) is not in the file",
                                              path, message_text(name), shape_text(target)));
    }
    decoded.push_back(decode_entry(it->value(), target, *value_type, path, name));
  }
  if (static_cast<size_t>(tensors.size()) != state.size()) {
    for (const auto& item : tensors) {
      const bool known = item.key().isString() &&
                         std::any_of(state.begin(), state.end(),
                                     [&](const auto& s) { return s.first == item.key().toStringRef(); });
      if (!known) {
        throw std::invalid_argument(fmt::format(
            "cannot load '{}': the file's tensor '{}' is not in the module ({} tensors in the file, {} in the module)",
            path, item.key().isString() ? message_text(item.key().toStringRef()) : std::string(item.key().tagKind()),
            tensors.size(), state.size()));
      }
    }
  }

  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < state.size(); ++i) state[i].second.copy_(decoded[i]);
}

}  // namespace sparsity
