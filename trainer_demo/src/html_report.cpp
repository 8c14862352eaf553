#include "html_report.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "demo_report.h"
#include "sparsity/file_io.h"

namespace sparsity::demo {

namespace fs = std::filesystem;

namespace {

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// The lines of a CSV text, each split into cells ("..." quoting with ""
// for a quote, as Python's csv module writes).
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& source) {
  std::vector<std::vector<std::string>> lines;
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false, any = false;
  int64_t line_number = 1, quote_line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line_number;
        cell += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      quote_line = line_number;
      any = true;
    } else if (c == ',') {
      cells.push_back(std::move(cell));
      cell.clear();
      any = true;
    } else if (c == '\n') {
      if (any || !cell.empty()) {
        cells.push_back(std::move(cell));
        lines.push_back(std::move(cells));
      }
      cells.clear();
      cell.clear();
      any = false;
      ++line_number;
    } else if (c != '\r') {
      cell += c;
      any = true;
    }
  }
  if (quoted) throw std::runtime_error(fmt::format("{}:{}: a quoted cell is not closed", source, quote_line));
  if (any || !cell.empty()) {
    cells.push_back(std::move(cell));
    lines.push_back(std::move(cells));
  }
  return lines;
}

// A cell as a JSON value: a number when the whole cell reads as a finite
// one, null when empty or not finite, else a string.
std::string json_cell(const std::string& cell) {
  if (cell.empty()) return "null";
  char* end = nullptr;
  const double value = std::strtod(cell.c_str(), &end);
  if (end == cell.c_str() + cell.size()) return std::isfinite(value) ? cell : "null";
  return json_string(cell);
}

std::string read_text(const fs::path& path) {
  const std::vector<char> bytes = read_file(path.string());
  return std::string(bytes.begin(), bytes.end());
}

// The page's script: renders every table and chart from the embedded data.
// Charts are drawn without animation, so that a page loaded headless is
// complete when its load event has run; each canvas then gets
// data-painted="1" when it holds visible pixels, and <body> data-charts /
// data-painted counts and data-errors (script errors, '' when none).
constexpr const char* kScript = R"JS(
(function () {
  var body = document.body;
  var errors = [];
  function fail(message) { errors.push(String(message)); body.setAttribute('data-errors', errors.join(' | ')); }
  window.addEventListener('error', function (e) { fail(e.message); });
  body.setAttribute('data-errors', '');
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var haveCharts = typeof Chart !== 'undefined';
  var charts = 0, painted = 0;
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf'];
  function color(i) { return palette[i % palette.length]; }
  function records(table) {
    if (!table) return [];
    return table.rows.map(function (row) {
      var r = {};
      table.columns.forEach(function (c, i) { r[c] = row[i]; });
      return r;
    });
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function section(title, note) {
    var s = el('section');
    s.appendChild(el('h2', {}, title));
    if (note) s.appendChild(el('p', {'class': 'note'}, note));
    document.getElementById('content').appendChild(s);
    return s;
  }
  function table(parent, header, rows) {
    var t = el('table');
    var tr = el('tr');
    header.forEach(function (h) { tr.appendChild(el('th', {}, h)); });
    t.appendChild(tr);
    rows.forEach(function (row) {
      var r = el('tr');
      row.forEach(function (cell) { r.appendChild(el('td', {}, cell === null || cell === undefined ? '-' : String(cell))); });
      t.appendChild(r);
    });
    parent.appendChild(t);
    return t;
  }
  function pct(x) { return x === null || x === undefined ? '-' : (100 * x).toFixed(2) + '%'; }
  function bytes(b) {
    if (b === null || b === undefined) return '-';
    if (b >= 1e6) return (b / 1e6).toFixed(2) + ' MB';
    if (b >= 1e3) return (b / 1e3).toFixed(1) + ' kB';
    return b + ' B';
  }
  function isPainted(canvas) {
    var ctx = canvas.getContext('2d');
    var w = canvas.width, h = canvas.height;
    if (!w || !h) return false;
    var pixels = ctx.getImageData(0, 0, w, h).data;
    var seen = 0;
    for (var i = 3; i < pixels.length; i += 4 * 7) { if (pixels[i] !== 0) { seen++; if (seen > 50) return true; } }
    return false;
  }
  // A chart (Chart.js config) in its own box; without Chart.js, a note.
  function chart(parent, id, config) {
    var box = el('div', {'class': 'chart', 'id': id});
    parent.appendChild(box);
    if (!haveCharts) {
      box.appendChild(el('p', {'class': 'missing'},
        'Chart not drawn: Chart.js was not found when this report was written. Install Debian\'s libjs-chart.js ' +
        '(./scripts/setup.sh does), then rebuild the report: trainer_demo --report DIR.'));
      return;
    }
    var canvas = el('canvas', {'width': '760', 'height': '340'});
    box.appendChild(canvas);
    config.options = Object.assign({animation: false, responsive: false}, config.options || {});
    try {
      new Chart(canvas.getContext('2d'), config);
      charts++;
      if (isPainted(canvas)) { painted++; canvas.setAttribute('data-painted', '1'); }
    } catch (e) {
      fail(id + ': ' + e.message);
    }
  }
  function axes(x, y, extra) {
    return Object.assign({scales: {x: {type: 'linear', title: {display: true, text: x}},
                                   y: {title: {display: true, text: y}}}}, extra || {});
  }

  var models = records(data.models);
  var layers = records(data.layers);
  var metrics = records(data.metrics);
  var dense = models.filter(function (m) { return !m.callback_type; })[0];

  // The final table.
  var s = section('Results', 'Test accuracy, weight and activation sparsity, file sizes (compact: save_sparse) and ' +
                  'inference time per batch of 256 test images, dense against to_sparse_inference.');
  var shrunk = models.some(function (m) { return m.shrunk_parameters > 0; });
  var header = ['model', 'test acc', 'vs dense', 'weight sparsity', 'act. sparsity', 'params', 'size', 'gzipped',
                'compact', 'dense ms', 'sparse ms', 'speedup'];
  if (shrunk) header = header.concat(['shrunk params', 'shrunk size', 'shrunk speedup']);
  var results = table(s, header, models.map(function (m) {
    var row = [m.model, pct(m.test_accuracy),
               m.callback_type && dense ? (100 * (m.test_accuracy - dense.test_accuracy)).toFixed(2) + ' pt' : '-',
               pct(m.weight_sparsity), pct(m.activation_sparsity), m.parameters, bytes(m.file_bytes),
               bytes(m.gzip_bytes), bytes(m.compact_bytes),
               m.dense_ms ? m.dense_ms.toFixed(3) : '-', m.sparse_ms ? m.sparse_ms.toFixed(3) : '-',
               m.inference_speedup ? m.inference_speedup.toFixed(2) + 'x' : '-'];
    if (shrunk) row = row.concat(m.shrunk_parameters > 0 ? [m.shrunk_parameters, bytes(m.shrunk_bytes),
                                 m.shrink_speedup.toFixed(2) + 'x'] : ['-', '-', '-']);
    return row;
  }));
  results.id = 'results';

  // Training curves, one line per run.
  var runs = [];
  metrics.forEach(function (r) { if (runs.indexOf(r.run) < 0) runs.push(r.run); });
  function series(run, column) {
    return metrics.filter(function (r) { return r.run === run && r[column] !== null && r[column] !== undefined; })
                  .map(function (r) { return {x: r.epoch + 1, y: r[column]}; });
  }
  function lines(columns, labelOf, dashed) {
    var sets = [];
    runs.forEach(function (run, i) {
      columns.forEach(function (column) {
        var points = series(run, column);
        if (points.length) sets.push({label: labelOf(run, column), data: points, borderColor: color(i),
                                      backgroundColor: color(i), borderDash: dashed(column) ? [6, 4] : [],
                                      pointRadius: 2, showLine: true});
      });
    });
    return sets;
  }
  s = section('Training', 'Per epoch, for every run: training loss (solid) and validation loss (dashed); ' +
              'validation accuracy.');
  chart(s, 'chart-loss', {type: 'scatter', data: {datasets: lines(['train_loss', 'val_loss'],
        function (run, c) { return run + ' ' + c; }, function (c) { return c === 'val_loss'; })},
        options: axes('epoch', 'loss')});
  if (data.metrics.columns.indexOf('val_acc') >= 0) {
    chart(s, 'chart-accuracy', {type: 'scatter', data: {datasets: lines(['val_acc'],
          function (run) { return run; }, function () { return false; })},
          options: axes('epoch', 'validation accuracy')});
  }

  // Each data-sparsity callback: its scheduled level and the measured
  // sparsity of each layer, per epoch.
  var callbacks = data.metrics.columns.filter(function (c) { return /\/data_sparsity$/.test(c); })
                                      .map(function (c) { return c.slice(0, -'/data_sparsity'.length); });
  if (callbacks.length) {
    s = section('Sparsity schedules', 'Scheduled level (solid, thick) and measured sparsity of each layer (dashed), ' +
                'per epoch.');
    callbacks.forEach(function (cb, k) {
      var columns = data.metrics.columns.filter(function (c) { return c.indexOf(cb + '/sparsity/') === 0; });
      var sets = [];
      runs.forEach(function (run) {
        var level = series(run, cb + '/data_sparsity');
        if (level.length) sets.push({label: cb + ' level', data: level, borderColor: '#000', backgroundColor: '#000',
                                     borderWidth: 3, pointRadius: 2, showLine: true});
        columns.forEach(function (c, i) {
          var points = series(run, c);
          if (points.length) sets.push({label: c.slice(cb.length + '/sparsity/'.length), data: points,
                                        borderColor: color(i), backgroundColor: color(i), borderDash: [6, 4],
                                        pointRadius: 2, showLine: true});
        });
      });
      s.appendChild(el('h3', {}, cb));
      chart(s, 'chart-schedule-' + k, {type: 'scatter', data: {datasets: sets},
            options: axes('epoch', 'sparsity', {scales: {x: {type: 'linear', title: {display: true, text: 'epoch'}},
                                                         y: {min: 0, max: 1}}})});
    });
  }
  if (data.metrics.columns.indexOf('activation_sparsity') >= 0) {
    s = section('Activation sparsity during training', 'Zeros in the activations the lossy layers pass on, per epoch.');
    chart(s, 'chart-activation-epochs', {type: 'scatter', data: {datasets: lines(['activation_sparsity'],
          function (run) { return run; }, function () { return false; })},
          options: axes('epoch', 'activation sparsity')});
  }

  // Per-layer bars.
  function bars(kind, filter) {
    var rows = layers.filter(function (r) { return r.kind === kind && filter(r); });
    var names = [];
    rows.forEach(function (r) { if (names.indexOf(r.layer) < 0) names.push(r.layer); });
    var byModel = [];
    rows.forEach(function (r) { if (byModel.indexOf(r.model) < 0) byModel.push(r.model); });
    return {names: names, rows: rows, datasets: byModel.map(function (m, i) {
      return {label: m, backgroundColor: color(i), data: names.map(function (n) {
        var r = rows.filter(function (x) { return x.model === m && x.layer === n; })[0];
        return r && r.elements ? r.zeros / r.elements : null;
      })};
    })};
  }
  var weightBars = bars('weight', function (r) { return /weight$/.test(r.layer); });
  if (weightBars.names.length) {
    s = section('Weight sparsity per layer', 'Exact zeros in each weight, per model.');
    chart(s, 'chart-weight-layers', {type: 'bar', data: {labels: weightBars.names, datasets: weightBars.datasets},
          options: {scales: {y: {min: 0, max: 1, title: {display: true, text: 'sparsity'}}}}});
    table(s, ['model', 'layer', 'zeros', 'elements', 'sparsity'], weightBars.rows.map(function (r) {
      return [r.model, r.layer, r.zeros, r.elements, pct(r.elements ? r.zeros / r.elements : 0)];
    }));
  }
  var activationBars = bars('activation', function () { return true; });
  if (activationBars.names.length) {
    s = section('Activation sparsity per layer', 'Exact zeros (|x| == 0) over the test set at each measured ' +
                'place (the input of each hidden layer; for a resnet the output of each convolution slot), the ' +
                'dense model against the lossy ones; near zero: |x| <= 0.001; bytes of the maps stored dense and ' +
                'as a bitmask plus the nonzeros.');
    chart(s, 'chart-activation-layers', {type: 'bar', data: {labels: activationBars.names,
          datasets: activationBars.datasets}, options: {scales: {y: {min: 0, max: 1}}}});
    table(s, ['model', 'place', 'zeros', 'elements', 'sparsity', 'near zero', 'dense bytes', 'sparse bytes'],
          activationBars.rows.map(function (r) {
      var near = r.near_zero === undefined || r.near_zero === null ? null : r.near_zero;
      return [r.model, r.layer, r.zeros, r.elements, pct(r.elements ? r.zeros / r.elements : 0),
              near === null ? '' : pct(r.elements ? near / r.elements : 0),
              r.dense_bytes === undefined || r.dense_bytes === null ? '' : bytes(r.dense_bytes),
              r.sparse_bytes === undefined || r.sparse_bytes === null ? '' : bytes(r.sparse_bytes)];
    }));
  }

  // Trade-offs.
  s = section('Accuracy against sparsity', 'Each model: test accuracy against weight sparsity.');
  chart(s, 'chart-tradeoff', {type: 'scatter', data: {datasets: models.map(function (m, i) {
    return {label: m.model, data: [{x: m.weight_sparsity, y: m.test_accuracy}], backgroundColor: color(i),
            pointRadius: 6};
  })}, options: axes('weight sparsity', 'test accuracy')});
  s = section('Size and speed', 'File sizes per model (as trained, gzipped, compact) and the inference speedup of ' +
              'the compact model through to_sparse_inference.');
  chart(s, 'chart-sizes', {type: 'bar', data: {labels: models.map(function (m) { return m.model; }), datasets: [
    {label: 'model file (bytes)', backgroundColor: color(0), data: models.map(function (m) { return m.file_bytes; })},
    {label: 'gzipped', backgroundColor: color(1), data: models.map(function (m) { return m.gzip_bytes; })},
    {label: 'compact', backgroundColor: color(2), data: models.map(function (m) { return m.compact_bytes; })}]}});
  if (models.some(function (m) { return m.inference_speedup; })) {
    chart(s, 'chart-speedup', {type: 'bar', data: {labels: models.map(function (m) { return m.model; }), datasets: [
      {label: 'inference speedup (x)', backgroundColor: color(3),
       data: models.map(function (m) { return m.inference_speedup; })}]}});
  }

  // Sensitivity analysis, when the run made one.
  var sensitivity = records(data.sensitivity);
  if (sensitivity.length) {
    s = section('Sensitivity', 'Accuracy lost when one layer alone is pruned (magnitude) to each level, the ' +
                'others dense; one line per layer.');
    var names = [];
    sensitivity.forEach(function (r) { if (names.indexOf(r.layer) < 0) names.push(r.layer); });
    chart(s, 'chart-sensitivity', {type: 'scatter', data: {datasets: names.map(function (n, i) {
      return {label: n, borderColor: color(i), backgroundColor: color(i), showLine: true, pointRadius: 3,
              data: sensitivity.filter(function (r) { return r.layer === n; })
                               .map(function (r) { return {x: r.level, y: r.loss}; })};
    })}, options: axes('level (fraction pruned)', 'loss of the metric')});
    var suggested = records(data.sensitivity_levels);
    if (suggested.length) {
      s.appendChild(el('h3', {}, 'Suggested levels'));
      table(s, data.sensitivity_levels.columns, suggested.map(function (r) {
        return data.sensitivity_levels.columns.map(function (c) {
          var x = r[c];
          return typeof x === 'number' && !Number.isInteger(x) ? Number(x.toPrecision(4)) : x;
        });
      }));
    }
  }

  s = section('Configuration', 'The resolved config of this run (config.yaml).');
  s.appendChild(el('pre', {'id': 'config'}, data.config));

  body.setAttribute('data-charts', String(charts));
  body.setAttribute('data-painted', String(painted));
  body.setAttribute('data-chart-library', haveCharts ? 'yes' : 'missing');
  body.setAttribute('data-ready', '1');
})();
)JS";

constexpr const char* kStyle = R"CSS(
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.chart { margin: 1em 0; } .note { color: #555; } .missing { background: #fff3cd; padding: 0.8em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
)CSS";

}  // namespace

std::string csv_to_json(const std::string& csv, const std::string& source) {
  const auto lines = parse_csv(csv, source);
  if (lines.empty()) return R"({"columns": [], "rows": []})";
  const auto& header = lines.front();
  std::string out = "{\"columns\": [";
  for (size_t i = 0; i < header.size(); ++i) out += (i ? ", " : "") + json_string(header[i]);
  out += "], \"rows\": [";
  for (size_t l = 1; l < lines.size(); ++l) {
    if (lines[l].size() != header.size()) {
      throw std::runtime_error(fmt::format("{}: row {} has {} cells where the header has {}", source, l + 1,
                                           lines[l].size(), header.size()));
    }
    out += l > 1 ? ",\n[" : "\n[";
    for (size_t i = 0; i < lines[l].size(); ++i) out += (i ? ", " : "") + json_cell(lines[l][i]);
    out += "]";
  }
  return out + "]}";
}

ReportFiles read_report_files(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw std::runtime_error(fmt::format("'{}' is not a run's output directory", dir));
  ReportFiles files;
  files.title = fs::absolute(root).lexically_normal().filename().string();
  if (files.title.empty()) files.title = fs::absolute(root).lexically_normal().parent_path().filename().string();
  auto required = [&](const char* name) {
    const fs::path path = root / name;
    if (!fs::exists(path)) {
      throw std::runtime_error(fmt::format("'{}' is missing: the report is built from a finished run's config.yaml, "
                                           "metrics.csv, models.csv and layers.csv",
                                           path.string()));
    }
    return read_text(path);
  };
  auto optional = [&](const char* name) { return fs::exists(root / name) ? read_text(root / name) : std::string(); };
  files.config_yaml = required("config.yaml");
  files.metrics_csv = required("metrics.csv");
  files.models_csv = required("models.csv");
  files.layers_csv = required("layers.csv");
  files.sensitivity_csv = optional("sensitivity.csv");
  files.sensitivity_levels_csv = optional("sensitivity_levels.csv");
  return files;
}

std::optional<std::string> chart_js_library() {
  const char* env = std::getenv("SPARSITY_CHART_JS");
  const fs::path path = env != nullptr && *env != '\0' ? fs::path(env) : fs::path("/usr/share/javascript/chart.js/chart.min.js");
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return std::nullopt;
  try {
    return read_text(path);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string render_html_report(const ReportFiles& files, const std::optional<std::string>& chart_js) {
  std::string data = "{\"title\": " + json_string(files.title);
  data += ",\n\"config\": " + json_string(files.config_yaml);
  data += ",\n\"metrics\": " + csv_to_json(files.metrics_csv, "metrics.csv");
  data += ",\n\"models\": " + csv_to_json(files.models_csv, "models.csv");
  data += ",\n\"layers\": " + csv_to_json(files.layers_csv, "layers.csv");
  data += ",\n\"sensitivity\": " +
          (files.sensitivity_csv.empty() ? std::string("null") : csv_to_json(files.sensitivity_csv, "sensitivity.csv"));
  data += ",\n\"sensitivity_levels\": " +
          (files.sensitivity_levels_csv.empty() ? std::string("null")
                                                : csv_to_json(files.sensitivity_levels_csv, "sensitivity_levels.csv"));
  data += "}";

  std::string library;
  if (chart_js) {
    // A literal "</script" inside the library would end its element early.
    library = *chart_js;
    for (size_t at = library.find("</script"); at != std::string::npos; at = library.find("</script", at + 2)) {
      library.replace(at, 2, "<\\/");
    }
  }
  std::string page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += fmt::format("<title>sparsity run: {}</title>\n<style>{}</style>\n", html_escape(files.title), kStyle);
  if (chart_js) page += "<script>" + library + "</script>\n";
  page += "</head>\n<body>\n";
  page += fmt::format("<h1>sparsity run: {}</h1>\n", html_escape(files.title));
  page += "<p class=\"note\">Written by trainer_demo (docs/trainer_demo.md, \"The report\"); rebuild with "
          "<code>trainer_demo --report DIR</code>.</p>\n";
  page += "<div id=\"content\"></div>\n";
  page += "<noscript><pre>" + html_escape(files.models_csv) + "</pre></noscript>\n";
  page += "<script type=\"application/json\" id=\"report-data\">" + data + "</script>\n";
  page += std::string("<script>") + kScript + "</script>\n</body>\n</html>\n";
  return page;
}

std::string write_html_report(const std::string& dir) {
  const ReportFiles files = read_report_files(dir);
  const std::string path = (fs::path(dir) / "report.html").string();
  write_file_atomically(path, render_html_report(files, chart_js_library()));
  return path;
}

}  // namespace sparsity::demo
