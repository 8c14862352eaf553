#include "run_config.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <variant>

#include "sparsity/closest_match.h"
#include "sparsity/float_text.h"
#include "sparsity/message_text.h"
#include "sparsity/data_scheduler/registry.h"
#include "sparsity/data_sparsifier/registry.h"
#include "sparsity/lossy/penalties.h"
#include "sparsity/config_error.h"
#include "sparsity/plugin/callback_registry.h"
#include "sparsity/runtime/threads.h"
#include "yaml_overrides.h"

namespace sparsity::demo {

std::shared_ptr<SparsifyingCallback> CallbackConfig::make() const { return make_sparsifying_callback(type, args); }

namespace {

// ---------------------------------------------------------------------------
// The accepted keys and values.

const std::vector<std::string> kTopKeys = {"seed", "threads", "data", "model", "optimizer", "trainer", "callbacks"};
const std::vector<std::string> kDataKeys = {"source",           "directory",   "batch_size",
                                            "validation_split", "train_limit", "synthetic"};
const std::vector<std::string> kSyntheticKeys = {"train_size", "test_size", "classes", "image_size", "noise"};
const std::vector<std::string> kModelKeys = {"type", "hidden", "channels", "lossy"};
const std::vector<std::string> kLossyKeys = {"eps", "a", "penalty", "penalty_weight", "l0_b"};
const std::vector<std::string> kOptimizerKeys = {"type", "lr", "momentum", "weight_decay"};
const std::vector<std::string> kTrainerKeys = {"epochs", "progress", "checkpoint", "resume", "log_level"};

const std::vector<std::string> kSources = {"fashion-mnist", "idx", "synthetic"};
const std::vector<std::string> kModelTypes = {"mlp", "cnn"};
const std::vector<std::string> kOptimizers = {"sgd", "adam"};
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error", "off"};

bool contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

std::string one_of(const std::vector<std::string>& list) { return fmt::format("{}", fmt::join(list, ", ")); }

// ---------------------------------------------------------------------------
// Reading nodes with their place in the file (or in an override).

/// A node being read: its value, its key (for a mapping entry), its path in
/// the config and, when an override put it (or one of its parents) there, the
/// override's text.
struct Value {
  YAML::Node node;
  YAML::Node key;
  std::string path;
  const std::string* override_text = nullptr;

  bool present() const { return node.IsDefined() && !node.IsNull(); }
};

/// The entries of a mapping, in file order.
struct Mapping {
  Value self;
  std::vector<std::pair<std::string, Value>> entries;

  const Value* find(const std::string& key) const {
    for (const auto& [name, value] : entries) {
      if (name == key) return &value;
    }
    return nullptr;
  }
  /// The entry `key`, or (for a message about a missing or defaulted key) the
  /// mapping itself with the key's path.
  Value at_or_self(const std::string& key) const {
    if (const Value* v = find(key)) return *v;
    Value fallback = self;
    fallback.path = self.path.empty() ? key : self.path + "." + key;
    return fallback;
  }
};

std::string quoted_kind(const YAML::Node& node) {
  // A quoted scalar carries the "!" tag, an explicit !!str the standard tag.
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str" ? "the quoted string " : "";
}

/// What a node is, for "got ..." in messages.
std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsScalar()) return fmt::format("{}'{}'", quoted_kind(node), message_text(node.Scalar()));
  if (node.IsSequence()) return "a list";
  return "a mapping";
}

/// The typed value of a scalar, by the rules of Config::from_yaml (bool, int,
/// double, else string; quoted scalars are strings). Not through a mapping
/// holding `node`: assigning a node into another merges its whole document's
/// node set, which made checking a long list quadratic.
ConfigValue scalar_value(const YAML::Node& node) { return Config::value_from_yaml("value", node); }

class Reader {
 public:
  Reader(std::string source, const std::vector<AppliedOverride>& overrides)
      : source_(std::move(source)), overrides_(overrides) {}

  Value root(const YAML::Node& node) const { return Value{node, YAML::Node(), "", nullptr}; }

  Value child(const Value& parent, const YAML::Node& key, const YAML::Node& node, const std::string& name) const {
    return Value{node, key, parent.path.empty() ? name : parent.path + "." + name, provenance(parent, node)};
  }

  Value item(const Value& parent, const YAML::Node& node, size_t index) const {
    return Value{node, YAML::Node(), fmt::format("{}[{}]", parent.path, index), provenance(parent, node)};
  }

  /// "FILE:LINE:COLUMN" of `node`, or "override 'TEXT'" when `value` came
  /// from an override.
  std::string location(const Value& value, const YAML::Node& node) const {
    if (value.override_text != nullptr) return fmt::format("override '{}'", message_text(*value.override_text));
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return source_;
    return fmt::format("{}:{}:{}", source_, mark.line + 1, mark.column + 1);
  }

  /// An error at the value.
  [[noreturn]] void fail(const Value& value, const std::string& message) const {
    raise(location(value, value.node), value.path, message);
  }

  /// An error at the key of a mapping entry (unknown or repeated keys).
  [[noreturn]] void fail_at_key(const Value& value, const std::string& message) const {
    raise(location(value, value.key), value.path, message);
  }

  /// A mapping's entries; no value reads as an empty mapping. Repeated keys
  /// are an error; so are keys not in `accepted` (unless it is null).
  Mapping mapping(const Value& value, const std::vector<std::string>* accepted, const std::string& expected) const {
    Mapping result{value, {}};
    if (!value.present()) return result;
    if (!value.node.IsMap()) fail(value, fmt::format("expected {}, got {}", expected, describe(value.node)));
    std::map<std::string, YAML::Node> seen;
    for (const auto& entry : value.node) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        Value at{entry.second, key, value.path, provenance(value, entry.second)};
        fail_at_key(at, fmt::format("keys must be plain names, got {}", describe(key)));
      }
      const std::string name = key.Scalar();
      Value v = child(value, key, entry.second, name);
      if (auto it = seen.find(name); it != seen.end()) {
        const YAML::Mark first = it->second.Mark();
        fail_at_key(v, fmt::format("key '{}' appears twice{}; each key may appear once", name,
                                   first.is_null() ? std::string() : fmt::format(" (first at line {})", first.line + 1)));
      }
      seen.emplace(name, key);
      if (accepted != nullptr && !contains(*accepted, name)) fail_unknown_key(value, v, name, *accepted);
      result.entries.emplace_back(name, std::move(v));
    }
    return result;
  }

  [[noreturn]] void fail_unknown_key(const Value& owner, const Value& entry, const std::string& name,
                                     const std::vector<std::string>& accepted) const {
    fail_at_key(entry, fmt::format("unknown key '{}' {}{}; expected one of: {}", message_text(name),
                                   owner.path.empty() ? std::string("at the top level") : "in " + owner.path,
                                   did_you_mean(name, accepted), one_of(accepted)));
  }

  // Scalars ------------------------------------------------------------------

  int64_t integer(const Value& v) const {
    if (v.node.IsScalar()) {
      const ConfigValue value = scalar_value(v.node);
      if (const auto* i = std::get_if<int64_t>(&value.variant())) return *i;
    }
    fail(v, fmt::format("expected an integer, got {}", describe(v.node)));
  }

  int64_t integer_at_least(const Value& v, int64_t minimum) const {
    const int64_t x = integer(v);
    if (x < minimum) fail(v, fmt::format("expected an integer >= {}, got {}", minimum, x));
    return x;
  }

  double number(const Value& v) const {
    if (v.node.IsScalar()) {
      const ConfigValue value = scalar_value(v.node);
      if (const auto* i = std::get_if<int64_t>(&value.variant())) return static_cast<double>(*i);
      if (const auto* d = std::get_if<double>(&value.variant())) return *d;
    }
    fail(v, fmt::format("expected a number, got {}", describe(v.node)));
  }

  double finite_number(const Value& v, const char* expected) const {
    const double x = number(v);
    if (!std::isfinite(x)) fail(v, fmt::format("expected {}, got {}", expected, message_text(v.node.Scalar())));
    return x;
  }

  bool boolean(const Value& v) const {
    if (v.node.IsScalar()) {
      const ConfigValue value = scalar_value(v.node);
      if (const auto* b = std::get_if<bool>(&value.variant())) return *b;
    }
    fail(v, fmt::format("expected true or false, got {}", describe(v.node)));
  }

  std::string string(const Value& v) const {
    if (!v.node.IsScalar()) fail(v, fmt::format("expected a string, got {}", describe(v.node)));
    return v.node.Scalar();
  }

  /// A string from `choices` (with a did-you-mean for a near miss).
  std::string choice(const Value& v, const std::vector<std::string>& choices, const std::string& what) const {
    const std::string s = string(v);
    if (!contains(choices, s)) {
      fail(v, fmt::format("unknown {} '{}'{}; expected one of: {}", what, message_text(s), did_you_mean(s, choices), one_of(choices)));
    }
    return s;
  }

  /// Fails unless the list (or mapping) `v` has at most `limit` entries.
  void check_length(const Value& v, size_t limit, const char* what) const {
    const size_t n = v.node.size();
    if (n > limit) {
      fail(v, fmt::format("the {} has {} entries; at most {} are allowed (docs/configuration.md, Limits)", what, n,
                          limit));
    }
  }

  std::vector<int64_t> integer_list(const Value& v, int64_t minimum) const {
    if (!v.node.IsSequence()) {
      fail(v, fmt::format("expected a list of integers (e.g. [64, 32]), got {}", describe(v.node)));
    }
    check_length(v, kMaxListEntries, "list");
    std::vector<int64_t> list;
    for (size_t i = 0; i < v.node.size(); ++i) {
      const Value it = item(v, v.node[i], i);
      std::optional<int64_t> x;
      if (it.node.IsScalar()) {
        const ConfigValue value = scalar_value(it.node);
        if (const auto* p = std::get_if<int64_t>(&value.variant())) x = *p;
      }
      if (!x) fail(it, fmt::format("expected a list of integers, got {} as entry {}", describe(it.node), i));
      if (*x < minimum) fail(it, fmt::format("expected integers >= {}, got {}", minimum, *x));
      list.push_back(*x);
    }
    return list;
  }



  /// One entry as a config value (Config::value_from_yaml's rules), its lists
  /// and mappings within the limits.
  ConfigValue argument(const Value& owner, const std::string& name, const Value& entry) const {
    check_sizes(entry);
    try {
      return Config::value_from_yaml(name, entry.node);
    } catch (const sparsity::ConfigError& e) {
      fail_at_key_path(owner, e);
    }
  }

  /// Fails unless every list and mapping within `v` is within the limits.
  void check_sizes(const Value& v) const {
    if (v.node.IsSequence()) check_length(v, kMaxListEntries, "list");
    if (!v.node.IsMap()) return;
    check_length(v, kMaxArguments, "mapping of arguments");
    for (const auto& entry : v.node) {
      if (entry.second.IsMap() || entry.second.IsSequence()) {
        check_sizes(child(v, entry.first, entry.second, entry.first.IsScalar() ? entry.first.Scalar() : "?"));
      }
    }
  }

  /// Reports `error`, found in the config read from `owner` (a mapping), at
  /// the node its key path leads to: at the key itself for an unknown key, at
  /// the value otherwise, at the deepest node the path reaches when the rest
  /// is missing.
  [[noreturn]] void fail_at_key_path(const Value& owner, const sparsity::ConfigError& error) const {
    Value at = owner;
    for (const std::string& part : error.key_path()) {
      if (at.node.IsMap()) {
        bool found = false;
        for (const auto& entry : at.node) {
          if (entry.first.IsScalar() && entry.first.Scalar() == part) {
            at = child(at, entry.first, entry.second, part);
            found = true;
            break;
          }
        }
        if (!found) break;
      } else if (at.node.IsSequence()) {
        const size_t index = std::stoul(part);
        if (index >= at.node.size()) break;
        at = item(at, at.node[index], index);
      } else {
        break;
      }
    }
    // A position found while reading the YAML is exact (the second of two
    // repeated keys, an item of a list): the walk above finds the path.
    if (error.line() > 0 && at.override_text == nullptr) {
      raise(fmt::format("{}:{}:{}", source_, error.line(), error.column()), at.path, error.message());
    }
    if (error.at() == sparsity::ConfigError::At::kKey && at.key.IsDefined() && at.path != owner.path) {
      fail_at_key(at, error.message());
    }
    fail(at, error.message());
  }

 private:
  const std::string* provenance(const Value& parent, const YAML::Node& node) const {
    if (const AppliedOverride* o = find_override(node, overrides_)) return &o->text;
    return parent.override_text;
  }

  [[noreturn]] void raise(const std::string& where, const std::string& path, const std::string& message) const {
    if (path.empty()) throw ConfigError(fmt::format("{}: {}", where, message));
    // Paths are made of the config's keys: quoted like any user text.
    throw ConfigError(fmt::format("{}: {}: {}", where, message_text(path), message));
  }

  std::string source_;
  const std::vector<AppliedOverride>& overrides_;
};

// ---------------------------------------------------------------------------
// The sections.

void read_synthetic(const Reader& r, const Value& v, SyntheticDataConfig& out) {
  const Mapping m = r.mapping(v, &kSyntheticKeys, "a mapping of synthetic data settings");
  if (const Value* x = m.find("train_size")) out.train_size = r.integer_at_least(*x, 1);
  if (const Value* x = m.find("test_size")) out.test_size = r.integer_at_least(*x, 1);
  if (const Value* x = m.find("classes")) out.classes = r.integer_at_least(*x, 2);
  if (const Value* x = m.find("image_size")) out.image_size = r.integer_at_least(*x, 4);
  if (const Value* x = m.find("noise")) {
    out.noise = r.finite_number(*x, "a finite number >= 0");
    if (out.noise < 0) r.fail(*x, fmt::format("expected a finite number >= 0, got {}", out.noise));
  }
  if (out.train_size < out.classes) {
    const Value at = m.find("train_size") != nullptr ? m.at_or_self("train_size") : m.at_or_self("classes");
    r.fail(at, fmt::format("train_size ({}) must be at least classes ({}), so that every class has an example",
                           out.train_size, out.classes));
  }
}

void read_data(const Reader& r, const Value& v, DataConfig& out) {
  const Mapping m = r.mapping(v, &kDataKeys, "a mapping of data settings");
  if (const Value* x = m.find("source")) out.source = r.choice(*x, kSources, "data source");
  if (const Value* x = m.find("directory")) out.directory = r.string(*x);
  if (const Value* x = m.find("batch_size")) out.batch_size = r.integer_at_least(*x, 1);
  if (const Value* x = m.find("validation_split")) {
    out.validation_split = r.number(*x);
    if (!(out.validation_split >= 0.0 && out.validation_split < 1.0)) {
      r.fail(*x, fmt::format("expected a fraction in [0, 1), got {}", message_text(x->node.Scalar())));
    }
  }
  if (const Value* x = m.find("train_limit")) out.train_limit = r.integer_at_least(*x, 0);
  if (const Value* x = m.find("synthetic")) read_synthetic(r, *x, out.synthetic);
  if (out.source == "idx" && out.directory.empty()) {
    Value at = m.at_or_self("source");
    at.path = v.path + ".directory";
    r.fail(at, "required when source is 'idx': the directory holding the MNIST-format files "
               "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...; .gz accepted)");
  }
}

LossyLayersConfig read_lossy(const Reader& r, const Value& v) {
  LossyLayersConfig out;
  const Mapping m = r.mapping(v, &kLossyKeys, "a mapping of lossy layer settings");
  if (const Value* x = m.find("eps")) out.eps = r.finite_number(*x, "a finite number");
  if (const Value* x = m.find("a")) {
    out.a = r.finite_number(*x, "a finite number > 0");
    if (!(out.a > 0)) r.fail(*x, fmt::format("expected a finite number > 0, got {}", out.a));
  }
  if (const Value* x = m.find("penalty")) out.penalty = r.choice(*x, penalty_names(), "penalty");
  if (const Value* x = m.find("penalty_weight")) {
    out.penalty_weight = r.finite_number(*x, "a finite number >= 0");
    if (out.penalty_weight < 0) r.fail(*x, fmt::format("expected a finite number >= 0, got {}", out.penalty_weight));
  }
  if (const Value* x = m.find("l0_b")) {
    out.l0_b = r.finite_number(*x, "a finite number > 0");
    if (!(out.l0_b > 0)) r.fail(*x, fmt::format("expected a finite number > 0, got {}", out.l0_b));
  }
  return out;
}

/// Reads `model`; `lossy_at` gets the lossy section's value when present.
void read_model(const Reader& r, const Value& v, ModelConfig& out, std::optional<Value>& lossy_at) {
  const Mapping m = r.mapping(v, &kModelKeys, "a mapping of model settings");
  if (const Value* x = m.find("type")) out.type = r.choice(*x, kModelTypes, "model type");
  if (const Value* x = m.find("hidden")) out.hidden = r.integer_list(*x, 1);
  if (const Value* x = m.find("channels")) out.channels = r.integer_list(*x, 1);
  if (const Value* x = m.find("lossy"); x != nullptr && x->present()) {
    out.lossy = read_lossy(r, *x);
    lossy_at = *x;
  }
  if (out.type == "cnn" && out.channels.empty()) {
    r.fail(m.find("channels") != nullptr ? m.at_or_self("channels") : m.at_or_self("type"),
           "a cnn needs at least one convolution: expected a non-empty list of channel counts, e.g. [16, 32]");
  }
}

void read_optimizer(const Reader& r, const Value& v, OptimizerConfig& out) {
  const Mapping m = r.mapping(v, &kOptimizerKeys, "a mapping of optimizer settings");
  if (const Value* x = m.find("type")) out.type = r.choice(*x, kOptimizers, "optimizer type");
  if (const Value* x = m.find("lr")) {
    out.lr = r.finite_number(*x, "a finite number > 0");
    if (!(out.lr > 0)) r.fail(*x, fmt::format("expected a finite number > 0, got {}", out.lr));
  }
  if (const Value* x = m.find("momentum")) {
    out.momentum = r.number(*x);
    if (!(out.momentum >= 0.0 && out.momentum < 1.0)) {
      r.fail(*x, fmt::format("expected a number in [0, 1), got {}", message_text(x->node.Scalar())));
    }
    if (out.momentum != 0.0 && out.type != "sgd") {
      r.fail(*x, fmt::format("momentum applies to the sgd optimizer only (this one is {}); expected 0 or "
                             "optimizer.type: sgd",
                             out.type));
    }
  }
  if (const Value* x = m.find("weight_decay")) {
    out.weight_decay = r.finite_number(*x, "a finite number >= 0");
    if (out.weight_decay < 0) r.fail(*x, fmt::format("expected a finite number >= 0, got {}", out.weight_decay));
  }
}

void read_trainer(const Reader& r, const Value& v, TrainerConfig& out) {
  const Mapping m = r.mapping(v, &kTrainerKeys, "a mapping of trainer settings");
  if (const Value* x = m.find("epochs")) out.epochs = r.integer_at_least(*x, 1);
  if (const Value* x = m.find("progress")) out.progress = r.boolean(*x);
  if (const Value* x = m.find("checkpoint")) out.checkpoint = r.boolean(*x);
  if (const Value* x = m.find("resume")) out.resume = r.boolean(*x);
  if (const Value* x = m.find("log_level")) out.log_level = r.choice(*x, kLogLevels, "log level");
}

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

/// `callbacks`, with names given and defaulted, and the lossy-layer pairing
/// with `model.lossy`.
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

RunConfig read_run_config(const Reader& r, const YAML::Node& root, const std::string& source) {
  RunConfig config;
  config.source = source;
  const Value top = r.root(root);
  const Mapping m = r.mapping(top, &kTopKeys, "a mapping of sections");
  if (const Value* x = m.find("seed")) config.seed = static_cast<uint64_t>(r.integer_at_least(*x, 0));
  if (const Value* x = m.find("threads")) {
    config.threads = r.integer_at_least(*x, 0);
    if (config.threads > max_threads())
      r.fail(*x, fmt::format("expected an integer <= {} ({} x the {} cores this process may use), got {}",
                             max_threads(), max_threads() / available_cores(), available_cores(), config.threads));
  }
  if (const Value* x = m.find("data")) read_data(r, *x, config.data);
  std::optional<Value> lossy_at;
  if (const Value* x = m.find("model")) read_model(r, *x, config.model, lossy_at);
  if (const Value* x = m.find("optimizer")) read_optimizer(r, *x, config.optimizer);
  if (const Value* x = m.find("trainer")) read_trainer(r, *x, config.trainer);
  read_callbacks(r, m.find("callbacks"), config, lossy_at);
  return config;
}

// ---------------------------------------------------------------------------
// Reading the text.

[[noreturn]] void throw_too_large(const std::string& source) {
  throw ConfigError(fmt::format("{}: cannot read the run config: it is larger than {} MiB, the limit for a run "
                                "config (is it the right file?)",
                                source, kMaxConfigBytes >> 20));
}

/// Records where each document of a YAML stream starts.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

/// Where a second document of the stream starts (its '---'), if there is one.
/// At most two documents are parsed, by events, before YAML::Load builds the
/// first: yaml-cpp 0.7's LoadAll never returns on some malformed streams (a
/// fuzzer found one), while the parser itself does.
std::optional<YAML::Mark> second_document_start(const std::string& yaml_text) {
  std::istringstream stream(yaml_text);
  YAML::Parser parser(stream);
  DocumentStarts handler;
  if (!parser.HandleNextDocument(handler) || !parser.HandleNextDocument(handler)) return std::nullopt;
  return handler.starts.size() >= 2 ? handler.starts[1] : YAML::Mark::null_mark();
}

// ---------------------------------------------------------------------------
// Writing.

void emit_string(YAML::Emitter& out, const std::string& s) {
  // Empty and null-like strings must be quoted to come back as strings.
  static const std::vector<std::string> kNullLike = {"~", "null", "Null", "NULL"};
  if (s.empty() || contains(kNullLike, s)) out << YAML::DoubleQuoted;
  out << s;
}

void emit_ints(YAML::Emitter& out, const std::vector<int64_t>& list) {
  out << YAML::Flow << YAML::BeginSeq;
  for (int64_t x : list) out << x;
  out << YAML::EndSeq;
}


}  // namespace

// ---------------------------------------------------------------------------

RunConfig parse_run_config(const std::string& yaml_text, const std::string& source_name,
                           const std::vector<std::string>& overrides) {
  if (yaml_text.size() > kMaxConfigBytes) throw_too_large(source_name);
  YAML::Node root;
  try {
    // YAML::Load reads the first document only: a second one would
    // otherwise be dropped without a word.
    if (const std::optional<YAML::Mark> second = second_document_start(yaml_text)) {
      const YAML::Mark mark = *second;
      throw ConfigError(fmt::format(
          "{}{}: a second YAML document starts here; a run config is a single document: remove this '---' and "
          "what follows it, or merge it into the first document",
          source_name, mark.is_null() ? std::string() : fmt::format(":{}:{}", mark.line + 1, mark.column + 1)));
    }
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    if (e.mark.is_null()) throw ConfigError(fmt::format("{}: invalid YAML: {}", source_name, e.msg));
    throw ConfigError(
        fmt::format("{}:{}:{}: invalid YAML: {}", source_name, e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: invalid YAML: {}", source_name, e.msg));
  }
  if (!root.IsDefined() || root.IsNull()) {
    throw ConfigError(fmt::format("{}: the run config is empty; expected a mapping of sections ({})", source_name,
                                  one_of(kTopKeys)));
  }
  if (!root.IsMap()) {
    const YAML::Mark mark = root.Mark();
    throw ConfigError(fmt::format("{}:{}:{}: expected a mapping of sections ({}) at the top level, got {}",
                                  source_name, mark.line + 1, mark.column + 1, one_of(kTopKeys), describe(root)));
  }
  std::vector<AppliedOverride> applied;
  for (const auto& text : overrides) apply_override(root, text, applied);
  try {
    const Reader reader(source_name, applied);
    return read_run_config(reader, root, source_name);
  } catch (const YAML::Exception& e) {
    // Not expected: the reader checks node types before converting.
    throw ConfigError(fmt::format("{}: {}", source_name, e.what()));
  }
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError(fmt::format("{}: cannot read the run config: it is a directory; expected a YAML file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(fmt::format("{}: cannot read the run config: {}", path, std::strerror(errno)));
  }
  // Bounded reads: /dev/zero, a pipe or a huge file would otherwise be read
  // for ever (or until memory runs out).
  std::string text;
  std::vector<char> chunk(size_t{1} << 16);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    text.append(chunk.data(), static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes) throw_too_large(path);
  }
  if (in.bad()) throw ConfigError(fmt::format("{}: cannot read the run config: read error", path));
  return parse_run_config(text, path, overrides);
}

std::string to_yaml_text(const RunConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "seed" << YAML::Value << config.seed;
  out << YAML::Key << "threads" << YAML::Value << config.threads;

  const DataConfig& d = config.data;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "source" << YAML::Value;
  emit_string(out, d.source);
  out << YAML::Key << "directory" << YAML::Value;
  emit_string(out, d.directory);
  out << YAML::Key << "batch_size" << YAML::Value << d.batch_size;
  out << YAML::Key << "validation_split" << YAML::Value << yaml_float(d.validation_split);
  out << YAML::Key << "train_limit" << YAML::Value << d.train_limit;
  out << YAML::Key << "synthetic" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "train_size" << YAML::Value << d.synthetic.train_size;
  out << YAML::Key << "test_size" << YAML::Value << d.synthetic.test_size;
  out << YAML::Key << "classes" << YAML::Value << d.synthetic.classes;
  out << YAML::Key << "image_size" << YAML::Value << d.synthetic.image_size;
  out << YAML::Key << "noise" << YAML::Value << yaml_float(d.synthetic.noise);
  out << YAML::EndMap << YAML::EndMap;

  const ModelConfig& m = config.model;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value;
  emit_string(out, m.type);
  out << YAML::Key << "hidden" << YAML::Value;
  emit_ints(out, m.hidden);
  out << YAML::Key << "channels" << YAML::Value;
  emit_ints(out, m.channels);
  if (m.lossy) {
    out << YAML::Key << "lossy" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "eps" << YAML::Value << yaml_float(m.lossy->eps);
    out << YAML::Key << "a" << YAML::Value << yaml_float(m.lossy->a);
    out << YAML::Key << "penalty" << YAML::Value;
    emit_string(out, m.lossy->penalty);
    out << YAML::Key << "penalty_weight" << YAML::Value << yaml_float(m.lossy->penalty_weight);
    out << YAML::Key << "l0_b" << YAML::Value << yaml_float(m.lossy->l0_b);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;

  const OptimizerConfig& o = config.optimizer;
  out << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value;
  emit_string(out, o.type);
  out << YAML::Key << "lr" << YAML::Value << yaml_float(o.lr);
  out << YAML::Key << "momentum" << YAML::Value << yaml_float(o.momentum);
  out << YAML::Key << "weight_decay" << YAML::Value << yaml_float(o.weight_decay);
  out << YAML::EndMap;

  const TrainerConfig& t = config.trainer;
  out << YAML::Key << "trainer" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "epochs" << YAML::Value << t.epochs;
  out << YAML::Key << "progress" << YAML::Value << t.progress;
  out << YAML::Key << "checkpoint" << YAML::Value << t.checkpoint;
  out << YAML::Key << "resume" << YAML::Value << t.resume;
  out << YAML::Key << "log_level" << YAML::Value;
  emit_string(out, t.log_level);
  out << YAML::EndMap;

  out << YAML::Key << "callbacks" << YAML::Value;
  if (config.callbacks.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const CallbackConfig& c : config.callbacks) {
    // The callback's own view, its type and name first.
    Config entry{{"type", c.type}, {"name", c.name}};
    for (const auto& [key, value] : c.resolved.entries()) {
      if (key != "name") entry.set(key, value);
    }
    out << entry.to_yaml();
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  if (!out.good()) throw std::logic_error(fmt::format("to_yaml_text: {}", out.GetLastError()));
  return std::string(out.c_str()) + "\n";
}

}  // namespace sparsity::demo
