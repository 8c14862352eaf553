#pragma once
// The field tables of a run config. Each section struct (DataConfig,
// ModelConfig, ...) has one Section: a list of Fields in the order the
// section is read and written. A Field knows its key, how to read and check
// its value into the struct and how to write it back, so that reading,
// writing (to_yaml_text) and the accepted keys (unknown-key errors) cannot
// drift apart: adding a key is adding one row.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "located_yaml.h"
#include "sparsity/float_text.h"
#include "sparsity/message_text.h"

namespace sparsity::demo::detail {

template <class S>
struct Field {
  std::string key;
  /// Reads the present entry `key` into the struct. Empty for a key read
  /// after the table (RunConfig's callbacks, which need the whole model).
  std::function<void(const Reader&, const Value&, S&)> read;
  /// Writes "key: value" (nothing at all for an absent optional section).
  std::function<void(YAML::Emitter&, const S&)> write;
};

template <class S>
struct Section {
  /// "a mapping of data settings": what a non-mapping got instead.
  std::string expected;
  std::vector<Field<S>> fields;

  /// The accepted keys, in table order (for unknown-key messages).
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    out.reserve(fields.size());
    for (const Field<S>& f : fields) out.push_back(f.key);
    return out;
  }
};

/// Reads the mapping `v` by `section`'s table: unknown keys are errors, each
/// present key is read in table order (not file order, so that a config's
/// first error does not depend on how its keys are ordered). Returns the
/// mapping, for the section's cross-field checks.
template <class S>
Mapping read_fields(const Reader& r, const Value& v, const Section<S>& section, S& out) {
  const std::vector<std::string> keys = section.keys();
  const Mapping m = r.mapping(v, &keys, section.expected);
  for (const Field<S>& f : section.fields) {
    if (!f.read) continue;
    if (const Value* x = m.find(f.key)) f.read(r, *x, out);
  }
  return m;
}

/// Writes every field of `s` as one block mapping, in table order.
template <class S>
void write_fields(YAML::Emitter& out, const Section<S>& section, const S& s) {
  out << YAML::BeginMap;
  for (const Field<S>& f : section.fields) f.write(out, s);
  out << YAML::EndMap;
}

// Writing scalars ------------------------------------------------------------

inline void emit_string(YAML::Emitter& out, const std::string& s) {
  // Empty and null-like strings must be quoted to come back as strings.
  static const std::vector<std::string> kNullLike = {"~", "null", "Null", "NULL"};
  if (s.empty() || contains(kNullLike, s)) out << YAML::DoubleQuoted;
  out << s;
}

inline void emit_ints(YAML::Emitter& out, const std::vector<int64_t>& list) {
  out << YAML::Flow << YAML::BeginSeq;
  for (int64_t x : list) out << x;
  out << YAML::EndSeq;
}

// The kinds of field ----------------------------------------------------------

/// An integer >= `minimum` (int64_t, or uint64_t for the seed).
template <class S, class T>
Field<S> integer_field(std::string key, T S::*member, int64_t minimum) {
  return {key, [member, minimum](const Reader& r, const Value& v, S& s) {
            s.*member = static_cast<T>(r.integer_at_least(v, minimum));
          },
          [key, member](YAML::Emitter& out, const S& s) { out << YAML::Key << key << YAML::Value << s.*member; }};
}

/// An integer in [minimum, maximum].
template <class S, class T>
Field<S> bounded_integer_field(std::string key, T S::*member, int64_t minimum, int64_t maximum) {
  return {key, [member, minimum, maximum](const Reader& r, const Value& v, S& s) {
            const int64_t x = r.integer_at_least(v, minimum);
            if (x > maximum) r.fail(v, fmt::format("expected an integer in [{}, {}], got {}", minimum, maximum, x));
            s.*member = static_cast<T>(x);
          },
          [key, member](YAML::Emitter& out, const S& s) { out << YAML::Key << key << YAML::Value << s.*member; }};
}

/// The range of a number field. `finite`: infinity and NaN are rejected as
/// written, before the range, and an out-of-range value is shown as read;
/// otherwise (fractions) the range check rejects them and the value is shown
/// as written ("got .inf", not "got inf").
struct NumberRule {
  const char* expected;  // "a finite number > 0": the message's "expected ..."
  bool finite = true;
  double low = -std::numeric_limits<double>::infinity();
  bool low_open = false;
  double high = std::numeric_limits<double>::infinity();
  bool high_open = false;

  bool admits(double x) const {
    const bool above = low_open ? x > low : x >= low;
    const bool below = high_open ? x < high : x <= high;
    return above && below;
  }
};

inline const NumberRule kAnyFinite{"a finite number"};
inline const NumberRule kPositive{"a finite number > 0", true, 0.0, true};
inline const NumberRule kNonNegative{"a finite number >= 0", true, 0.0, false};
/// [0, 1), for a fraction or a momentum; `expected` names which.
inline NumberRule unit_interval(const char* expected) { return {expected, false, 0.0, false, 1.0, true}; }

template <class S>
Field<S> number_field(std::string key, double S::*member, NumberRule rule) {
  return {key, [member, rule](const Reader& r, const Value& v, S& s) {
            const double x = rule.finite ? r.finite_number(v, rule.expected) : r.number(v);
            if (!rule.admits(x)) {
              r.fail(v, rule.finite ? fmt::format("expected {}, got {}", rule.expected, x)
                                    : fmt::format("expected {}, got {}", rule.expected, message_text(v.node.Scalar())));
            }
            s.*member = x;
          },
          [key, member](YAML::Emitter& out, const S& s) {
            out << YAML::Key << key << YAML::Value << yaml_float(s.*member);
          }};
}

template <class S>
Field<S> bool_field(std::string key, bool S::*member) {
  return {key, [member](const Reader& r, const Value& v, S& s) { s.*member = r.boolean(v); },
          [key, member](YAML::Emitter& out, const S& s) { out << YAML::Key << key << YAML::Value << s.*member; }};
}

template <class S>
Field<S> string_field(std::string key, std::string S::*member) {
  return {key, [member](const Reader& r, const Value& v, S& s) { s.*member = r.string(v); },
          [key, member](YAML::Emitter& out, const S& s) {
            out << YAML::Key << key << YAML::Value;
            emit_string(out, s.*member);
          }};
}

/// One of `choices()` (a function: some lists, like the penalties, come from
/// a registry); `what` names it in "unknown WHAT 'x'".
template <class S>
Field<S> choice_field(std::string key, std::string S::*member, std::function<std::vector<std::string>()> choices,
                      std::string what) {
  return {key, [member, choices, what](const Reader& r, const Value& v, S& s) {
            s.*member = r.choice(v, choices(), what);
          },
          [key, member](YAML::Emitter& out, const S& s) {
            out << YAML::Key << key << YAML::Value;
            emit_string(out, s.*member);
          }};
}

/// A list of integers, each >= `minimum`.
template <class S>
Field<S> integer_list_field(std::string key, std::vector<int64_t> S::*member, int64_t minimum) {
  return {key, [member, minimum](const Reader& r, const Value& v, S& s) { s.*member = r.integer_list(v, minimum); },
          [key, member](YAML::Emitter& out, const S& s) {
            out << YAML::Key << key << YAML::Value;
            emit_ints(out, s.*member);
          }};
}

/// A list of numbers, each admitted by `rule`.
template <class S>
Field<S> number_list_field(std::string key, std::vector<double> S::*member, NumberRule rule) {
  return {key, [member, rule](const Reader& r, const Value& v, S& s) {
            if (!v.node.IsSequence()) r.fail(v, fmt::format("expected a list of numbers, e.g. [0.5, 0.9]"));
            r.check_length(v, kMaxListEntries, "list");
            std::vector<double> list;
            for (size_t i = 0; i < v.node.size(); ++i) {
              const Value item = r.item(v, v.node[i], i);
              const double x = r.finite_number(item, rule.expected);
              if (!rule.admits(x)) r.fail(item, fmt::format("expected {}, got {}", rule.expected, x));
              list.push_back(x);
            }
            s.*member = std::move(list);
          },
          [key, member](YAML::Emitter& out, const S& s) {
            out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
            for (double x : s.*member) out << yaml_float(x);
            out << YAML::EndSeq;
          }};
}

/// A nested section, read by `read` (its table and its cross-field checks)
/// and written by its table.
template <class S, class Sub>
Field<S> section_field(std::string key, Sub S::*member, void (*read)(const Reader&, const Value&, Sub&),
                       const Section<Sub>& (*table)()) {
  return {key, [member, read](const Reader& r, const Value& v, S& s) { read(r, v, s.*member); },
          [key, member, table](YAML::Emitter& out, const S& s) {
            out << YAML::Key << key << YAML::Value;
            write_fields(out, table(), s.*member);
          }};
}

/// An optional nested section: read when the key has a value (`key:` alone
/// counts as absent), written only when set.
template <class S, class Sub>
Field<S> optional_section_field(std::string key, std::optional<Sub> S::*member,
                                void (*read)(const Reader&, const Value&, Sub&), const Section<Sub>& (*table)()) {
  return {key, [member, read](const Reader& r, const Value& v, S& s) {
            if (!v.present()) return;
            Sub sub;
            read(r, v, sub);
            s.*member = std::move(sub);
          },
          [key, member, table](YAML::Emitter& out, const S& s) {
            if (!(s.*member)) return;
            out << YAML::Key << key << YAML::Value;
            write_fields(out, table(), *(s.*member));
          }};
}

}  // namespace sparsity::demo::detail
