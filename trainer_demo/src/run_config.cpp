// The entry points of run configs: the text checked as one YAML document,
// then read by the section tables (run_config_sections.cpp); writing by the
// same tables.
#include "run_config.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "located_yaml.h"
#include "run_config_sections.h"
#include "yaml_overrides.h"

namespace sparsity::demo {

using detail::describe;
using detail::one_of;
using detail::read_run_config;
using detail::Reader;
using detail::run_config_table;

namespace {

// Reading the text: its size, and one YAML document only.

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

}  // namespace

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
                                  one_of(run_config_table().keys())));
  }
  if (!root.IsMap()) {
    const YAML::Mark mark = root.Mark();
    throw ConfigError(fmt::format("{}:{}:{}: expected a mapping of sections ({}) at the top level, got {}",
                                  source_name, mark.line + 1, mark.column + 1, one_of(run_config_table().keys()), describe(root)));
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
  detail::write_fields(out, run_config_table(), config);
  if (!out.good()) throw std::logic_error(fmt::format("to_yaml_text: {}", out.GetLastError()));
  return std::string(out.c_str()) + "\n";
}

}  // namespace sparsity::demo
