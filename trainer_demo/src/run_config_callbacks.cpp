#include "run_config_callbacks.h"

#include <fmt/format.h>

#include <cctype>
#include <map>
#include <stdexcept>

#include "sparsity/plugin/callback_registry.h"

namespace sparsity::demo {

std::shared_ptr<SparsifyingCallback> CallbackConfig::make() const { return make_sparsifying_callback(type, args); }

namespace detail {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  if (name.find_first_not_of('.') == std::string::npos) return false;  // "." and ".." are not file names
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
  });
}

/// One `callbacks[i]` entry, not yet built; `name_at` gets its name's value
/// when given, `type_at` the value of its type.
CallbackConfig read_callback(const Reader& r, const Value& v, std::optional<Value>& name_at, Value& type_at) {
  const std::vector<std::string> types = registered_callbacks();
  if (!v.node.IsMap()) {
    r.fail(v, fmt::format("expected a callback: a mapping with a 'type' key (one of: {}), got {}", one_of(types),
                          describe(v.node)));
  }
  const Mapping m = r.mapping(v, nullptr, "a callback mapping");
  const Value* type = m.find("type");
  if (type == nullptr) r.fail(v, fmt::format("missing key 'type': the callback type, one of: {}", one_of(types)));
  CallbackConfig out;
  out.type = r.choice(*type, types, "callback type");
  type_at = *type;
  out.location = r.location(v, v.node);
  if (const Value* x = m.find("name")) {
    out.name = r.string(*x);
    name_at = *x;
  }
  for (const auto& [key, entry] : m.entries) {
    if (key != "type" && key != "name") out.args.set(key, r.argument(v, key, entry));
  }
  return out;
}

/// Builds the callback of `c` once, so that a bad key or value is reported
/// now, at its place in the file, and records what the demo needs to know of it.
void build_callback(const Reader& r, const Value& v, CallbackConfig& c) {
  c.args.set("name", c.name);
  std::shared_ptr<SparsifyingCallback> callback;
  try {
    callback = c.make();
  } catch (const sparsity::ConfigError& e) {
    r.fail_at_key_path(v, e);
  } catch (const std::invalid_argument& e) {
    r.fail(v, e.what());
  }
  c.resolved = callback->to_config();
  c.changes_trained_model = callback->changes_trained_model();
  c.needs_lossy_layers = callback->needs_lossy_layers();
}

}  // namespace

void read_callbacks(const Reader& r, const Value* v, RunConfig& config, const std::optional<Value>& lossy_at) {
  std::vector<std::optional<Value>> name_at;
  std::vector<Value> type_at;
  std::vector<Value> entry_at;
  if (v != nullptr && v->present()) {
    if (!v->node.IsSequence()) {
      r.fail(*v, fmt::format("expected a list of callbacks (entries '- type: ...'), got {}", describe(v->node)));
    }
    r.check_length(*v, kMaxCallbacks, "list of callbacks");
    for (size_t i = 0; i < v->node.size(); ++i) {
      std::optional<Value> name;
      Value type;
      entry_at.push_back(r.item(*v, v->node[i], i));
      config.callbacks.push_back(read_callback(r, entry_at.back(), name, type));
      name_at.push_back(std::move(name));
      type_at.push_back(std::move(type));
    }
  }

  // Names given in the file: well-formed and unique.
  std::map<std::string, size_t> taken;
  for (size_t i = 0; i < config.callbacks.size(); ++i) {
    if (!name_at[i]) continue;
    const std::string& name = config.callbacks[i].name;
    if (!valid_name(name)) {
      r.fail(*name_at[i], fmt::format("invalid callback name '{}': expected letters, digits, '_', '.' and '-' only "
                                      "(it names files)",
                                      name));
    }
    if (name == "dense") {
      r.fail(*name_at[i], "the name 'dense' is reserved for the baseline run without callbacks; choose another");
    }
    if (auto it = taken.find(name); it != taken.end()) {
      r.fail(*name_at[i], fmt::format("the name '{}' is already used by callbacks[{}]; callback names must be unique",
                                      name, it->second));
    }
    taken.emplace(name, i);
  }
  // Default names: the type, then TYPE_2, TYPE_3, ... skipping given names.
  std::map<std::string, int> seen;
  for (size_t i = 0; i < config.callbacks.size(); ++i) {
    if (name_at[i]) continue;
    CallbackConfig& c = config.callbacks[i];
    std::string name;
    do {
      const int n = ++seen[c.type];
      name = n == 1 ? c.type : fmt::format("{}_{}", c.type, n);
    } while (taken.count(name) != 0);
    c.name = name;
    taken.emplace(name, i);
  }

  for (size_t i = 0; i < config.callbacks.size(); ++i) build_callback(r, entry_at[i], config.callbacks[i]);

  // Lossy layers <-> the callback that drives them.
  std::optional<size_t> lossy_callback;
  for (size_t i = 0; i < config.callbacks.size(); ++i) {
    if (!config.callbacks[i].needs_lossy_layers) continue;
    if (lossy_callback) {
      r.fail(type_at[i], fmt::format("only one callback may drive the model's lossy sparsifier layers (callbacks[{}] "
                                     "is a {} already)",
                                     *lossy_callback, config.callbacks[*lossy_callback].type));
    }
    lossy_callback = i;
  }
  if (lossy_callback && !config.model.lossy) {
    r.fail(type_at[*lossy_callback],
           fmt::format("a {} needs lossy sparsifier layers in the model: expected a model.lossy section "
                       "(e.g. lossy: {{penalty: L1, penalty_weight: 0.1}})",
                       config.callbacks[*lossy_callback].type));
  }
  if (config.model.lossy && !lossy_callback && lossy_at) {
    r.fail(*lossy_at, "lossy sparsifier layers need a LossySparsifierCallback to drive them: expected an entry "
                      "'- type: LossySparsifierCallback' in callbacks (or remove model.lossy)");
  }
}

void write_callbacks(YAML::Emitter& out, const std::vector<CallbackConfig>& callbacks) {
  if (callbacks.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const CallbackConfig& c : callbacks) {
    // The callback's own view, its type and name first.
    Config entry{{"type", c.type}, {"name", c.name}};
    for (const auto& [key, value] : c.resolved.entries()) {
      if (key != "name") entry.set(key, value);
    }
    out << entry.to_yaml();
  }
  out << YAML::EndSeq;
}

}  // namespace detail
}  // namespace sparsity::demo
