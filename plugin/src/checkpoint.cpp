#include "checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "sparsity/message_text.h"
// core's saved-state files (checksummed pickled dicts, written atomically).
#include "sparsity/state_file.h"
#include "training_state.h"

namespace sparsity::detail {

c10::IValue metrics_to_ivalue(const std::vector<MetricsRow>& rows) {
  c10::impl::GenericList list(c10::DictType::create(c10::StringType::get(), c10::AnyType::get()));
  for (const auto& row : rows) {
    c10::impl::GenericDict dict = new_state_dict();
    dict.insert("epoch", row.epoch);
    dict.insert("step", row.step);
    for (const auto& [key, value] : row.values) dict.insert(key, value);
    list.push_back(dict);
  }
  return list;
}

std::vector<MetricsRow> metrics_from_ivalue(const c10::IValue& value) {
  if (!value.isList()) throw std::runtime_error(fmt::format("'metrics_history' is a {}, not a list", value.tagKind()));
  std::vector<MetricsRow> rows;
  for (const c10::IValue& item : value.toListRef()) {
    if (!item.isGenericDict())
      throw std::runtime_error(fmt::format("a row of 'metrics_history' is a {}, not a dict", item.tagKind()));
    MetricsRow row;
    bool has_epoch = false, has_step = false;
    for (const auto& entry : item.toGenericDict()) {
      if (!entry.key().isString()) throw std::runtime_error("a row of 'metrics_history' has a key that is not a string");
      const std::string& key = entry.key().toStringRef();
      const c10::IValue& v = entry.value();
      if (key == "epoch" || key == "step") {
        if (!v.isInt()) throw std::runtime_error(fmt::format("'{}' of a metrics row is a {}, not an int", key, v.tagKind()));
        (key == "epoch" ? row.epoch : row.step) = v.toInt();
        (key == "epoch" ? has_epoch : has_step) = true;
      } else if (v.isDouble() || v.isInt()) {
        row.values[key] = v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
      } else {
        throw std::runtime_error(fmt::format("metric '{}' of a metrics row is a {}, not a number", key, v.tagKind()));
      }
    }
    if (!has_epoch || !has_step) throw std::runtime_error("a row of 'metrics_history' lacks 'epoch' or 'step'");
    rows.push_back(std::move(row));
  }
  return rows;
}

void write_checkpoint(const std::string& path, const CheckpointContent& content) {
  c10::impl::GenericDict callbacks = new_state_dict();
  for (const auto& callback : content.callbacks) {
    try {
      callbacks.insert(callback->name(), callback->state_dict());
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("callback '{}' failed in state_dict: {}", callback->name(), error_text(e)));
    }
  }
  c10::impl::GenericDict checkpoint = new_state_dict();
  checkpoint.insert("format", std::string(kCheckpointFormat));
  checkpoint.insert("version", kCheckpointVersion);
  checkpoint.insert("epoch", content.epoch);
  checkpoint.insert("global_step", content.global_step);
  checkpoint.insert("model", model_state(content.model));
  checkpoint.insert("optimizer", optimizer_state(content.optimizer));
  checkpoint.insert("rng", cpu_rng_state());
  checkpoint.insert("callbacks", callbacks);
  checkpoint.insert("metrics_history", metrics_to_ivalue(content.history));
  save_state_file(path, checkpoint);
}

c10::IValue checkpoint_field(const c10::impl::GenericDict& checkpoint, const std::string& key) {
  const auto found = checkpoint.find(key);
  if (found == checkpoint.end()) throw std::runtime_error(fmt::format("the checkpoint has no '{}'", key));
  return found->value();
}

c10::impl::GenericDict read_checkpoint(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw std::runtime_error(fmt::format("no checkpoint at '{}': {}", path,
                                         error ? error.message() : std::string("no such file")));
  const c10::IValue root = load_state_file(path, "a sparsity checkpoint");
  if (!root.isGenericDict()) throw std::runtime_error(fmt::format("'{}' is not a sparsity checkpoint", path));
  c10::impl::GenericDict checkpoint = root.toGenericDict();
  const auto format = checkpoint.find("format");
  if (format == checkpoint.end() || !format->value().isString() || format->value().toStringRef() != kCheckpointFormat) {
    const std::string found = format == checkpoint.end()      ? std::string("missing")
                              : format->value().isString() ? "'" + format->value().toStringRef() + "'"
                                                           : "a " + format->value().tagKind();
    throw std::runtime_error(
        fmt::format("'{}' is not a sparsity checkpoint (its 'format' is {}, not '{}')", path, found, kCheckpointFormat));
  }
  const auto version = checkpoint.find("version");
  if (version == checkpoint.end() || !version->value().isInt() || version->value().toInt() != kCheckpointVersion)
    throw std::runtime_error(fmt::format(
        "'{}' is a sparsity checkpoint of version {}; this build reads version {}", path,
        version != checkpoint.end() && version->value().isInt() ? std::to_string(version->value().toInt()) : "?",
        kCheckpointVersion));
  return checkpoint;
}

}  // namespace sparsity::detail
