#include "yaml_overrides.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "run_config.h"
#include "sparsity/message_text.h"

namespace sparsity::demo {

namespace {

[[noreturn]] void fail(const std::string& text, const std::string& message) {
  throw ConfigError(fmt::format("override '{}': {}", message_text(text), message));
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

size_t parse_index(const std::string& digits, const std::string& text) {
  if (!all_digits(digits)) fail(text, fmt::format("the list index '{}' is not a non-negative integer", digits));
  if (digits.size() > 9) fail(text, fmt::format("the list index {} is too large", digits));
  return static_cast<size_t>(std::stoul(digits));
}

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return fmt::format("the value '{}'", message_text(node.Scalar()));
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

std::string step_name(const std::string& walked, const OverrideSegment& seg) {
  if (seg.index && seg.key.empty()) return fmt::format("{}[{}]", walked, *seg.index);
  return walked.empty() ? seg.key : walked + "." + seg.key;
}

}  // namespace

std::vector<OverrideSegment> parse_override_path(const std::string& path, const std::string& text) {
  std::vector<OverrideSegment> segments;
  std::string name;
  bool after_index = false;  // just closed a "[i]": a '.' or '[' or the end must follow
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '.') {
      if (name.empty() && !after_index) fail(text, fmt::format("empty key in '{}' (keys are separated by single dots)", path));
      if (!name.empty()) segments.push_back({name, std::nullopt});
      name.clear();
      after_index = false;
      if (i + 1 == path.size()) fail(text, fmt::format("empty key at the end of '{}'", path));
    } else if (c == '[') {
      if (!name.empty()) {
        segments.push_back({name, std::nullopt});
        name.clear();
      } else if (segments.empty()) {
        fail(text, fmt::format("'[' must follow a key in '{}', e.g. callbacks[0].name", path));
      }
      const size_t close = path.find(']', i);
      if (close == std::string::npos) fail(text, fmt::format("missing ']' in '{}'", path));
      segments.push_back({"", parse_index(path.substr(i + 1, close - i - 1), text)});
      i = close;
      after_index = true;
      if (i + 1 < path.size() && path[i + 1] != '.' && path[i + 1] != '[') {
        fail(text, fmt::format("expected '.' or '[' after ']' in '{}'", path));
      }
    } else if (c == ']') {
      fail(text, fmt::format("unmatched ']' in '{}'", path));
    } else {
      name += c;
    }
  }
  if (!name.empty()) segments.push_back({name, std::nullopt});
  if (segments.empty()) fail(text, "the key before '=' is empty; expected e.g. trainer.epochs=2");
  return segments;
}

void apply_override(YAML::Node& root, const std::string& text, std::vector<AppliedOverride>& applied) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos) {
    fail(text, "expected KEY=VALUE, e.g. trainer.epochs=2 or callbacks.0.sparsifier.args.sparsity_level=0.9");
  }
  const std::string path = trim(text.substr(0, eq));
  if (path.empty()) fail(text, "the key before '=' is empty; expected e.g. trainer.epochs=2");
  const std::vector<OverrideSegment> segments = parse_override_path(path, text);

  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::ParserException& e) {
    fail(text, fmt::format("the value is not valid YAML: {}", e.msg));
  }

  YAML::Node current = root;  // a handle; moved on with reset(), never assigned (that would write the tree)
  std::string walked;
  for (size_t s = 0; s < segments.size(); ++s) {
    const OverrideSegment& seg = segments[s];
    const bool last = s + 1 == segments.size();
    const std::string here = step_name(walked, seg);
    YAML::Node next;
    if (current.IsSequence()) {
      std::optional<size_t> index = seg.index;
      if (!index && all_digits(seg.key)) index = parse_index(seg.key, text);
      if (!index) {
        fail(text, fmt::format("'{}' is a list: index it with a number, e.g. {}.0 or {}[0], not '{}'", walked, walked,
                               walked, seg.key));
      }
      if (*index >= current.size()) {
        fail(text, fmt::format("index {} is out of range: '{}' has {} entr{}", *index, walked, current.size(),
                               current.size() == 1 ? "y" : "ies"));
      }
      if (last) {
        current[*index] = value;
        applied.push_back({value, text});
        return;
      }
      if (current[*index].IsNull()) {
        // An empty list entry ("- ") becomes a mapping to descend into.
        YAML::Node fresh(YAML::NodeType::Map);
        current[*index] = fresh;
        applied.push_back({fresh, text});
      }
      next.reset(current[*index]);
    } else if (current.IsMap()) {
      if (seg.index && seg.key.empty()) {
        fail(text, fmt::format("'{}' is a mapping, not a list: name a key (e.g. {}.KEY) instead of [{}]", walked,
                               walked, *seg.index));
      }
      if (last) {
        current[seg.key] = value;
        applied.push_back({value, text});
        return;
      }
      const YAML::Node& view = current;  // const access does not insert the key
      const YAML::Node existing = view[seg.key];
      if (!existing || existing.IsNull()) {
        YAML::Node fresh(YAML::NodeType::Map);
        current[seg.key] = fresh;
        applied.push_back({fresh, text});
      }
      next.reset(current[seg.key]);
    } else {
      fail(text, fmt::format("cannot set '{}': '{}' is {}, not a mapping or a list", path, walked, describe(current)));
    }
    if (next.IsScalar()) {
      fail(text, fmt::format("cannot set '{}': '{}' is {}, not a mapping or a list", path, here, describe(next)));
    }
    current.reset(next);
    walked = here;
  }
}

const AppliedOverride* find_override(const YAML::Node& node, const std::vector<AppliedOverride>& applied) {
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    if (node.is(it->node)) return &*it;
  }
  return nullptr;
}

}  // namespace sparsity::demo
