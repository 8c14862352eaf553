#include "sparsity/state_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <unordered_map>

#include <optional>
#include <stdexcept>

#include "config_ivalue.h"
#include "pickle_prescan.h"
#include "sparsity/file_io.h"
#include "sparsity/message_text.h"
#include "state_checksum.h"

namespace sparsity {

using detail::as_dict;
using detail::dict_field;
using detail::state_checksum;
using detail::StateDict;

namespace {

const char* const kChecksumKey = "checksum";

// A zip archive (the format of torch.save and pickle_save) ends with a 22-byte
// end-of-central-directory record; its reader tolerates a few bytes cut from
// that record, so check it is whole before trusting the file.
bool ends_with_zip_end_record(const std::vector<char>& bytes) {
  constexpr size_t kRecord = 22;
  if (bytes.size() < kRecord) return false;
  const char* end = bytes.data() + bytes.size() - kRecord;
  return end[0] == 'P' && end[1] == 'K' && end[2] == 5 && end[3] == 6 && end[20] == 0 && end[21] == 0;
}

// LibTorch's MemoryReadAdapter copies whatever range the zip reader asks for;
// a corrupt end record sends it past the buffer (a fuzzer found one). This one
// returns only the bytes there are, which the zip reader reports as an error.
class BoundedReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReadAdapter(const std::vector<char>& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<uint64_t>(n, bytes_.size() - pos);
    // An empty record comes with no buffer (memcpy must not see null).
    if (n > 0) std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::vector<char>& bytes_;
};

// The highest element offset `t` reaches, or nullopt on overflow.
std::optional<int64_t> last_element(const at::Tensor& t) {
  int64_t last = t.storage_offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t reach = 0;
    if (__builtin_mul_overflow(t.size(d) - 1, t.stride(d), &reach) || __builtin_add_overflow(last, reach, &last)) {
      return std::nullopt;
    }
  }
  return last;
}

// Throws unless `t` is dense and lies inside the `record_bytes` its storage
// really has.
void check_tensor_in_bounds(const at::Tensor& t, uint64_t record_bytes) {
  if (t.layout() != at::kStrided || !t.has_storage()) {
    throw std::invalid_argument(fmt::format("a {} tensor where only dense ones are saved", c10::toString(t.layout())));
  }
  if (t.numel() == 0) return;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.stride(d) < 0) throw std::invalid_argument("a tensor with a negative stride");
  }
  const std::optional<int64_t> last = last_element(t);
  const uint64_t bytes = std::min<uint64_t>(record_bytes, t.storage().nbytes());
  const auto item = static_cast<uint64_t>(t.element_size());
  if (!last || t.storage_offset() < 0 || static_cast<uint64_t>(*last) >= bytes / item) {
    throw std::invalid_argument(fmt::format(
        "a tensor of shape {}, strides [{}] and offset {} reaches past its storage of {} bytes", shape_text(t),
        fmt::join(t.strides(), ", "), t.storage_offset(), bytes));
  }
}

// Every tensor in `value`, through lists, tuples and dicts.
template <typename F>
void for_each_tensor(const c10::IValue& value, const F& f) {
  if (value.isTensor()) {
    f(value.toTensor());
  } else if (value.isList()) {
    for (const auto& item : value.toListRef()) for_each_tensor(item, f);
  } else if (value.isTuple()) {
    for (const auto& item : value.toTupleRef().elements()) for_each_tensor(item, f);
  } else if (value.isGenericDict()) {
    for (const auto& item : value.toGenericDict()) {
      for_each_tensor(item.key(), f);
      for_each_tensor(item.value(), f);
    }
  }
}

}  // namespace

c10::IValue checked_pickle_load(const std::vector<char>& bytes) {
  // What torch::jit::pickle_load does (the archive "data": data.pkl and the
  // records data/<key>), noting each storage record's true size.
  caffe2::serialize::PyTorchStreamReader archive(std::make_shared<BoundedReadAdapter>(bytes));
  // Not a structured binding: C++17 lambdas cannot capture one.
  at::DataPtr pickle;
  size_t pickle_size = 0;
  std::tie(pickle, pickle_size) = archive.getRecord("data.pkl");
  const auto* pickle_bytes = static_cast<const char*>(pickle.get());
  detail::prescan_pickle(pickle_bytes, pickle_size);
  size_t read = 0;
  auto reader = [&](char* buffer, size_t n) -> size_t {
    n = std::min(n, pickle_size - read);
    std::memcpy(buffer, pickle_bytes + read, n);
    read += n;
    return n;
  };
  std::unordered_map<const void*, uint64_t> record_bytes;
  auto read_record = [&](const std::string& key) {
    auto [data, size] = archive.getRecord("data/" + key);
    record_bytes[data.get()] = size;
    return std::move(data);
  };
  torch::jit::Unpickler unpickler(reader, nullptr, nullptr, read_record, c10::nullopt);
  unpickler.set_version(archive.version());
  c10::IValue value = unpickler.parse_ivalue();
  for_each_tensor(value, [&](const at::Tensor& t) {
    const auto record = t.has_storage() ? record_bytes.find(t.storage().data()) : record_bytes.end();
    check_tensor_in_bounds(t, record == record_bytes.end() ? 0 : record->second);
  });
  return value;
}

c10::impl::GenericDict new_state_dict() {
  return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get());
}

void save_state_file(const std::string& path, const c10::IValue& state) {
  StateDict with_checksum = as_dict(state, "state");
  with_checksum.insert(kChecksumKey, static_cast<int64_t>(state_checksum(state)));
  write_file_atomically(path, torch::jit::pickle_save(with_checksum));
}

c10::IValue load_state_file(const std::string& path, const std::string& what) {
  const std::vector<char> bytes = read_file(path);
  const auto fail = [&](const std::string& why) {
    return std::runtime_error(fmt::format("cannot read {} from '{}': {}", what, path, why));
  };
  if (!ends_with_zip_end_record(bytes))
    throw fail(fmt::format("the file is truncated or not a saved state ({} bytes, no zip end record)",
                           bytes.size()));
  try {
    StateDict root = as_dict(checked_pickle_load(bytes), what);
    const c10::IValue stored = dict_field(root, kChecksumKey, what);
    (void)root.erase(c10::IValue(std::string(kChecksumKey)));
    if (!stored.isInt() || static_cast<uint64_t>(stored.toInt()) != state_checksum(root))
      throw std::invalid_argument("the content does not match its checksum");
    return root;
  } catch (const std::exception& e) {
    throw fail("the file is truncated or corrupt (" + error_text(e) + ")");
  }
}

}  // namespace sparsity
