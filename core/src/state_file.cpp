#include "sparsity/state_file.h"

#include <fmt/format.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <stdexcept>

#include "config_ivalue.h"
#include "sparsity/file_io.h"
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

std::string message_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

}  // namespace

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
    StateDict root = as_dict(torch::jit::pickle_load(bytes), what);
    const c10::IValue stored = dict_field(root, kChecksumKey, what);
    (void)root.erase(c10::IValue(std::string(kChecksumKey)));
    if (!stored.isInt() || static_cast<uint64_t>(stored.toInt()) != state_checksum(root))
      throw std::invalid_argument("the content does not match its checksum");
    return root;
  } catch (const std::exception& e) {
    throw fail("the file is truncated or corrupt (" + message_of(e) + ")");
  }
}

}  // namespace sparsity
