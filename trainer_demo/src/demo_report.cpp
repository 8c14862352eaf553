#include "demo_report.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "sparsity/file_io.h"
#include "sparsity/float_text.h"

namespace sparsity::demo {

namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream stream(line);
  while (std::getline(stream, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// JSON numbers cannot be NaN or infinite: those become null. Whole values
// keep a ".0" so that every reader sees a float, as Python's json writes them.
std::string json_number(double value) { return std::isfinite(value) ? float_repr(value) : "null"; }

std::string percent(double fraction) { return fmt::format("{:.2f}%", 100.0 * fraction); }

std::string milliseconds(double ms) { return ms > 0.0 ? fmt::format("{:.3f}", ms) : std::string("-"); }

}  // namespace

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '<': out += "\\u003c"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string merge_metrics_csv(const std::vector<std::pair<std::string, std::string>>& run_and_path) {
  using Row = std::map<std::string, std::string>;
  std::vector<std::pair<std::string, Row>> rows;
  std::set<std::string> columns;
  for (const auto& [run, path] : run_and_path) {
    if (!std::filesystem::exists(path)) continue;
    const std::vector<char> bytes = read_file(path);
    std::istringstream stream(std::string(bytes.begin(), bytes.end()));
    std::string line;
    if (!std::getline(stream, line)) continue;
    const std::vector<std::string> header = split_csv_line(line);
    columns.insert(header.begin(), header.end());
    int64_t line_number = 1;
    while (std::getline(stream, line)) {
      ++line_number;
      if (line.empty()) continue;
      const std::vector<std::string> cells = split_csv_line(line);
      if (cells.size() != header.size()) {
        throw std::runtime_error(fmt::format("{}:{}: {} cells where the header has {}", path, line_number,
                                             cells.size(), header.size()));
      }
      Row row;
      for (size_t i = 0; i < cells.size(); ++i) row[header[i]] = cells[i];
      rows.emplace_back(run, std::move(row));
    }
  }
  std::vector<std::string> ordered;
  for (const char* first : {"epoch", "step"}) {
    if (columns.erase(first) != 0) ordered.emplace_back(first);
  }
  ordered.insert(ordered.end(), columns.begin(), columns.end());

  std::string out = "run";
  for (const auto& column : ordered) out += "," + column;
  out += "\n";
  for (const auto& [run, row] : rows) {
    out += run;
    for (const auto& column : ordered) {
      auto found = row.find(column);
      out += ",";
      if (found != row.end()) out += found->second;
    }
    out += "\n";
  }
  return out;
}

std::string models_csv(const DemoResult& result) {
  std::string out =
      "model,callback_type,run,test_accuracy,weight_sparsity,activation_sparsity,parameters,file_bytes,gzip_bytes,"
      "compact_bytes,dense_ms,sparse_ms,inference_speedup,shrunk_parameters,shrunk_bytes,shrink_speedup,"
      "activation_dense_bytes,activation_sparse_bytes\n";
  for (const auto& m : result.models) {
    const bool measured = m.activation_sparsity.has_value();
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", m.name, m.callback_type, m.run,
                       json_number(m.test_accuracy), json_number(m.weight_sparsity),
                       m.activation_sparsity ? json_number(*m.activation_sparsity) : std::string(), m.parameters,
                       m.file_bytes, m.gzip_bytes, m.compact_bytes, json_number(m.dense_inference_ms),
                       json_number(m.sparse_inference_ms), json_number(m.inference_speedup()), m.shrunk_parameters,
                       m.shrunk_bytes, json_number(m.shrink_speedup()),
                       measured ? std::to_string(m.activation_dense_bytes) : std::string(),
                       measured ? std::to_string(m.activation_sparse_bytes) : std::string());
  }
  return out;
}

std::string layers_csv(const DemoResult& result) {
  std::string out = "model,kind,layer,zeros,elements,near_zero,dense_bytes,sparse_bytes\n";
  for (const auto& m : result.models) {
    for (const auto& w : m.weight_layers) {
      out += fmt::format("{},weight,{},{},{},,,\n", m.name, w.name, w.zeros, w.elements);
    }
    for (const auto& a : m.activation_layers) {
      out += fmt::format("{},activation,{},{},{},{},{},{}\n", m.name, a.name, a.zeros, a.elements, a.near_zero,
                         a.dense_bytes, a.sparse_bytes);
    }
  }
  return out;
}

int64_t compressed_size(const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::vector<Bytef> buffer(size);
  const int status = compress2(buffer.data(), &size, reinterpret_cast<const Bytef*>(bytes.data()),
                               static_cast<uLong>(bytes.size()), Z_DEFAULT_COMPRESSION);
  if (status != Z_OK) throw std::runtime_error(fmt::format("cannot compress '{}': zlib error {}", path, status));
  return static_cast<int64_t>(size);
}

std::string human_bytes(int64_t bytes) {
  if (bytes >= 1000 * 1000) return fmt::format("{:.2f} MB", static_cast<double>(bytes) / 1e6);
  if (bytes >= 1000) return fmt::format("{:.1f} kB", static_cast<double>(bytes) / 1e3);
  return fmt::format("{} B", bytes);
}

std::string summary_json(const DemoResult& result) {
  double dense_accuracy = 0.0;
  int64_t dense_compact_bytes = 0;
  std::optional<double> dense_activation_sparsity;
  std::vector<const ModelResult*> sparsified;
  for (const auto& model : result.models) {
    if (model.callback_type.empty()) {
      dense_accuracy = model.test_accuracy;
      dense_compact_bytes = model.compact_bytes;
      dense_activation_sparsity = model.activation_sparsity;
    } else {
      sparsified.push_back(&model);
    }
  }
  std::string out = "{\n";
  out += fmt::format("  \"dense_test_accuracy\": {},\n", json_number(dense_accuracy));
  out += fmt::format("  \"dense_compact_bytes\": {},\n", dense_compact_bytes);
  if (dense_activation_sparsity) {
    out += fmt::format("  \"dense_activation_sparsity\": {},\n", json_number(*dense_activation_sparsity));
  }
  out += "  \"sparsified\": [";
  for (size_t i = 0; i < sparsified.size(); ++i) {
    const ModelResult& m = *sparsified[i];
    out += i == 0 ? "\n" : ",\n";
    out += fmt::format("    {{\"callback\": {}, \"test_accuracy\": {}, \"weight_sparsity\": {}", json_string(m.name),
                       json_number(m.test_accuracy), json_number(m.weight_sparsity));
    if (m.activation_sparsity) {
      out += fmt::format(", \"activation_sparsity\": {}, \"activation_dense_bytes\": {}, "
                         "\"activation_sparse_bytes\": {}",
                         json_number(*m.activation_sparsity), m.activation_dense_bytes, m.activation_sparse_bytes);
    }
    out += fmt::format(", \"compact_bytes\": {}, \"inference_speedup\": {}", m.compact_bytes,
                       json_number(m.inference_speedup()));
    if (m.shrunk()) {
      out += fmt::format(", \"parameters\": {}, \"shrunk_parameters\": {}, \"shrunk_bytes\": {}, "
                         "\"shrink_speedup\": {}",
                         m.parameters, m.shrunk_parameters, m.shrunk_bytes, json_number(m.shrink_speedup()));
    }
    out += "}";
  }
  out += sparsified.empty() ? "],\n" : "\n  ],\n";
  out += fmt::format("  \"world_size\": {},\n", result.world_size);
  out += fmt::format("  \"wall_seconds\": {}\n}}\n", json_number(result.wall_seconds));
  return out;
}

std::string format_activation_table(const DemoResult& result) {
  std::vector<const ModelResult*> measured;
  for (const auto& m : result.models) {
    if (m.activation_sparsity) measured.push_back(&m);
  }
  if (measured.empty()) return "";
  // The places in the order the first model lists them, then any the others add.
  std::vector<std::string> places;
  for (const auto* m : measured) {
    for (const auto& a : m->activation_layers) {
      if (std::find(places.begin(), places.end(), a.name) == places.end()) places.push_back(a.name);
    }
  }
  size_t width = 5;
  for (const auto& p : places) width = std::max(width, p.size());
  std::string out = fmt::format("{:<{}}", "place", width);
  for (const auto* m : measured) out += fmt::format("  {:>24}", m->name + " zeros (near 0)");
  out += "\n";
  auto cell = [](int64_t count, int64_t elements) {
    return elements == 0 ? std::string("0") : percent(static_cast<double>(count) / static_cast<double>(elements));
  };
  for (const auto& place : places) {
    out += fmt::format("{:<{}}", place, width);
    for (const auto* m : measured) {
      const auto found = std::find_if(m->activation_layers.begin(), m->activation_layers.end(),
                                      [&](const ZeroCount& a) { return a.name == place; });
      out += found == m->activation_layers.end()
                 ? fmt::format("  {:>24}", "-")
                 : fmt::format("  {:>24}", fmt::format("{} ({})", cell(found->zeros, found->elements),
                                                       cell(found->near_zero, found->elements)));
    }
    out += "\n";
  }
  out += fmt::format("{:<{}}", "total", width);
  for (const auto* m : measured) {
    int64_t near = 0, elements = 0;
    for (const auto& a : m->activation_layers) {
      near += a.near_zero;
      elements += a.elements;
    }
    out += fmt::format("  {:>24}", fmt::format("{} ({})", percent(*m->activation_sparsity), cell(near, elements)));
  }
  out += fmt::format("\n{:<{}}", "bytes", width);
  for (const auto* m : measured) {
    out += fmt::format("  {:>24}", fmt::format("{} -> {}", human_bytes(m->activation_dense_bytes),
                                              human_bytes(m->activation_sparse_bytes)));
  }
  return out + "\n";
}

std::string format_result_table(const DemoResult& result) {
  bool any_activation = false;
  bool any_shrunk = false;
  size_t name_width = 5;
  double dense_accuracy = 0.0;
  for (const auto& model : result.models) {
    any_activation = any_activation || model.activation_sparsity.has_value();
    any_shrunk = any_shrunk || model.shrunk();
    name_width = std::max(name_width, model.name.size());
    if (model.callback_type.empty()) dense_accuracy = model.test_accuracy;
  }
  std::string out = fmt::format("{:<{}}  {:>9}  {:>9}  {:>15}", "model", name_width, "test acc", "vs dense",
                                "weight sparsity");
  if (any_activation) out += fmt::format("  {:>14}  {:>19}", "act. sparsity", "act. bytes/sparse");
  out += fmt::format("  {:>10}  {:>10}  {:>10}  {:>8}  {:>9}  {:>7}", "size", "gzipped", "compact", "dense ms",
                     "sparse ms", "speedup");
  if (any_shrunk) {
    out += fmt::format("  {:>8}  {:>13}  {:>11}  {:>9}  {:>10}", "params", "shrunk params", "shrunk size", "shrunk ms",
                       "shrunk x");
  }
  out += "\n";
  for (const auto& model : result.models) {
    const std::string delta = model.callback_type.empty()
                                  ? std::string("-")
                                  : fmt::format("{:+.2f} pt", 100.0 * (model.test_accuracy - dense_accuracy));
    out += fmt::format("{:<{}}  {:>9}  {:>9}  {:>15}", model.name, name_width, percent(model.test_accuracy), delta,
                       percent(model.weight_sparsity));
    if (any_activation) {
      out += fmt::format("  {:>14}  {:>19}", model.activation_sparsity ? percent(*model.activation_sparsity) : "-",
                         model.activation_sparsity ? fmt::format("{}/{}", human_bytes(model.activation_dense_bytes),
                                                                 human_bytes(model.activation_sparse_bytes))
                                                   : std::string("-"));
    }
    out += fmt::format("  {:>10}  {:>10}  {:>10}  {:>8}  {:>9}  {:>7}\n", human_bytes(model.file_bytes),
                       human_bytes(model.gzip_bytes), human_bytes(model.compact_bytes),
                       milliseconds(model.dense_inference_ms), milliseconds(model.sparse_inference_ms),
                       model.sparse_inference_ms > 0.0 ? fmt::format("{:.2f}x", model.inference_speedup())
                                                       : std::string("-"));
    if (any_shrunk) {
      out.pop_back();  // the row continues
      if (model.shrunk()) {
        out += fmt::format("  {:>8}  {:>13}  {:>11}  {:>9}  {:>10}\n", model.parameters, model.shrunk_parameters,
                           human_bytes(model.shrunk_bytes), milliseconds(model.shrunk_inference_ms),
                           fmt::format("{:.2f}x", model.shrink_speedup()));
      } else {
        out += fmt::format("  {:>8}  {:>13}  {:>11}  {:>9}  {:>10}\n", model.parameters, "-", "-", "-", "-");
      }
    }
  }
  return out;
}

}  // namespace sparsity::demo
