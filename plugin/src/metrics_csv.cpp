#include "metrics_csv.h"

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "sparsity/file_io.h"
#include "sparsity/float_text.h"

namespace sparsity::detail {

namespace {

// RFC 4180 quoting, as Python's csv module does for keys that need it.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

}  // namespace

std::string metrics_csv(const std::vector<MetricsRow>& rows) {
  std::set<std::string> keys;
  for (const auto& row : rows)
    for (const auto& entry : row.values) keys.insert(entry.first);
  keys.erase("epoch");
  keys.erase("step");

  std::string text = "epoch,step";
  for (const auto& key : keys) text += "," + csv_field(key);
  text += '\n';
  for (const auto& row : rows) {
    text += fmt::format("{},{}", row.epoch, row.step);
    for (const auto& key : keys) {
      text += ',';
      const auto found = row.values.find(key);
      if (found != row.values.end()) text += float_repr(found->second);
    }
    text += '\n';
  }
  return text;
}

void write_metrics_csv(const std::string& output_dir, const std::vector<MetricsRow>& rows) {
  if (output_dir.empty()) return;
  write_file_atomically((std::filesystem::path(output_dir) / "metrics.csv").string(), metrics_csv(rows));
}

}  // namespace sparsity::detail
