#pragma once

// A thread-safe map from type names to factories: the registries of data
// sparsifiers, data schedulers and callbacks are built on it, and so can a
// user's own.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsity/closest_match.h"

namespace sparsity {

/// Factories by type name, e.g. `NamedRegistry<DataSparsifierFactory>`.
/// Errors name the kind of thing registered and list the known types.
template <class Factory>
class NamedRegistry {
 public:
  /// `kind` names what is registered in messages, e.g. "data sparsifier".
  explicit NamedRegistry(std::string kind) : kind_(std::move(kind)) {}

  void add(const std::string& type, Factory factory, bool replace) {
    if (type.empty()) throw std::invalid_argument(fmt::format("a {} type name must not be empty", kind_));
    if (!factory) throw std::invalid_argument(fmt::format("{} '{}': empty factory", kind_, type));
    std::lock_guard<std::mutex> lock(mutex_);
    if (!replace && factories_.count(type) != 0) {
      throw std::invalid_argument(
          fmt::format("{} type '{}' is already registered (pass replace=true to override it)", kind_, type));
    }
    factories_[type] = std::move(factory);
  }

  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> result;
    for (const auto& entry : factories_) result.push_back(entry.first);
    return result;
  }

  /// The factory of `type`; an unknown type is an error listing the known ones.
  Factory get(const std::string& type) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = factories_.find(type);
    if (it == factories_.end()) {
      std::vector<std::string> known;
      for (const auto& entry : factories_) known.push_back(entry.first);
      throw std::invalid_argument(
          fmt::format("unknown {} type '{}'{} (known: {})", kind_, type, did_you_mean(type, known),
                      fmt::join(known, ", ")));
    }
    return it->second;
  }

 private:
  std::string kind_;
  mutable std::mutex mutex_;
  std::map<std::string, Factory> factories_;
};

}  // namespace sparsity
