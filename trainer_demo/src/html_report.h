#pragma once
// report.html: one self-contained page (no network, opens from disk) that
// shows a finished run: the final table, training curves, the sparsity
// schedules, per-layer weight and activation sparsity, accuracy against
// sparsity, sizes and speedups, the sensitivity analysis and the resolved
// config. Built from the run's own files, so that `trainer_demo --report DIR`
// rebuilds it for any output directory.

#include <optional>
#include <string>

namespace sparsity::demo {

/// The files a report is built from, as read from an output directory.
/// Required: config.yaml, metrics.csv, models.csv, layers.csv; optional:
/// sensitivity.csv and sensitivity_levels.csv (absent: empty).
struct ReportFiles {
  std::string title;
  std::string config_yaml;
  std::string metrics_csv;
  std::string models_csv;
  std::string layers_csv;
  std::string sensitivity_csv;
  std::string sensitivity_levels_csv;
};

/// Reads the report's files from `dir`; a missing required file or a CSV
/// whose rows do not match its header is a std::runtime_error naming it.
ReportFiles read_report_files(const std::string& dir);

/// A CSV text (header line first; cells may be double-quoted) as JSON:
/// {"columns": [...], "rows": [[...], ...]}, numbers as numbers, empty cells
/// and non-finite values as null, the rest as strings. `source` names the
/// file in errors.
std::string csv_to_json(const std::string& csv, const std::string& source);

/// Chart.js as Debian's libjs-chart.js installs it
/// (/usr/share/javascript/chart.js/chart.min.js), or the file that
/// SPARSITY_CHART_JS names; nullopt when it cannot be read.
std::optional<std::string> chart_js_library();

/// The page. With `chart_js` the library is inlined and the charts drawn;
/// without it the tables still render and each chart's place says how to
/// get the charts.
std::string render_html_report(const ReportFiles& files, const std::optional<std::string>& chart_js);

/// Reads `dir`'s files and writes `dir`/report.html atomically; returns its
/// path.
std::string write_html_report(const std::string& dir);

}  // namespace sparsity::demo
