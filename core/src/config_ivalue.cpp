#include "config_ivalue.h"

#include <fmt/format.h>

#include <stdexcept>

namespace sparsity::detail {

c10::IValue config_to_ivalue(const Config& config) {
  StateDict dict = new_state_dict();
  for (const auto& [key, value] : config.entries()) {
    std::visit(
        [&dict, &key = key](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, ConfigValue::IntList>) {
            dict.insert(key, c10::List<int64_t>(v));
          } else if constexpr (std::is_same_v<T, ConfigValue::StringList>) {
            dict.insert(key, c10::List<std::string>(v));
          } else if constexpr (std::is_same_v<T, ConfigValue::Mapping>) {
            dict.insert(key, config_to_ivalue(*v));
          } else {
            dict.insert(key, v);
          }
        },
        value.variant());
  }
  return dict;
}

Config config_from_ivalue(const c10::IValue& value, const std::string& what) {
  Config config;
  for (const auto& item : as_dict(value, what)) {
    const std::string& key = item.key().toStringRef();
    const c10::IValue& v = item.value();
    if (v.isBool()) {
      config.set(key, v.toBool());
    } else if (v.isInt()) {
      config.set(key, v.toInt());
    } else if (v.isDouble()) {
      config.set(key, v.toDouble());
    } else if (v.isString()) {
      config.set(key, v.toStringRef());
    } else if (v.isIntList()) {
      config.set(key, v.toIntVector());
    } else if (v.isGenericDict()) {
      config.set(key, config_from_ivalue(v, fmt::format("{}: key '{}'", what, key)));
    } else if (v.isList() && !v.toListRef().empty() && v.toListRef()[0].isString()) {
      ConfigValue::StringList list;
      for (const auto& e : v.toListRef()) {
        if (!e.isString())
          throw std::invalid_argument(
              fmt::format("{}: key '{}' holds a list of strings with a {}", what, key, e.tagKind()));
        list.push_back(e.toStringRef());
      }
      config.set(key, list);
    } else if (v.isList() && v.toListRef().empty()) {
      config.set(key, ConfigValue::IntList{});
    } else if (v.isTuple() || v.isList()) {
      // Python writes block shapes as tuples; accept any sequence of ints.
      ConfigValue::IntList list;
      const auto elements = v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec();
      for (const auto& e : elements) {
        if (!e.isInt())
          throw std::invalid_argument(
              fmt::format("{}: key '{}' holds a list with a non-integer {}", what, key, e.tagKind()));
        list.push_back(e.toInt());
      }
      config.set(key, list);
    } else {
      throw std::invalid_argument(fmt::format(
          "{}: key '{}' holds a {}; expected bool, int, float, str, list of int or str, or dict", what, key,
          v.tagKind()));
    }
  }
  return config;
}

StateDict as_dict(const c10::IValue& value, const std::string& what) {
  if (!value.isGenericDict())
    throw std::invalid_argument(fmt::format("{}: expected a dict, got {}", what, value.tagKind()));
  // Rebuilt rather than cast: a dict unpickled from Python may be typed Dict[Any, Any].
  StateDict dict = new_state_dict();
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString())
      throw std::invalid_argument(
          fmt::format("{}: dict keys must be strings, got {}", what, item.key().tagKind()));
    dict.insert(item.key().toStringRef(), item.value());
  }
  return dict;
}

const c10::IValue& dict_field(const StateDict& dict,
                              const std::string& key, const std::string& what) {
  auto it = dict.find(c10::IValue(key));
  if (it == dict.end()) throw std::invalid_argument(fmt::format("{}: missing '{}'", what, key));
  return it->value();
}

}  // namespace sparsity::detail
