// report.html: the data it embeds (from fixed files), its behaviour without
// Chart.js, its errors, and the page of a real synthetic run loaded in
// headless Chromium (every chart drawn, no script error).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "html_report.h"
#include "../core/test_support.h"

namespace sparsity::demo {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

const std::string kSourceDir = SPARSITY_SOURCE_DIR;
const char* const kChromium = "/usr/bin/chromium";

ReportFiles fixed_files() {
  ReportFiles files;
  files.title = "fixed";
  files.config_yaml = "seed: 0\nmodel: {type: mlp}  # a </script> in a comment\n";
  files.metrics_csv =
      "run,epoch,step,gradual/data_sparsity,gradual/sparsity/1.weight,train_loss,val_acc,val_loss\n"
      "dense,0,10,,,0.5,0.75,0.625\n"
      "gradual,0,10,0.25,0.3125,0.5,0.5,nan\n";
  files.models_csv =
      "model,callback_type,run,test_accuracy,weight_sparsity,activation_sparsity,parameters,file_bytes,gzip_bytes,"
      "compact_bytes,dense_ms,sparse_ms,inference_speedup,shrunk_parameters,shrunk_bytes,shrink_speedup\n"
      "dense,,dense,0.875,0.0,,100,4000,3900,4010,0.5,0.5,1.0,0,0,0.0\n"
      "gradual,TrainingAwareDataSparsity,gradual,0.8125,0.9,,100,4000,900,700,0.5,0.125,4.0,0,0,0.0\n";
  files.layers_csv = "model,kind,layer,zeros,elements\ndense,weight,1.weight,0,80\ngradual,weight,1.weight,72,80\n";
  files.sensitivity_csv = "layer,numel,level,metric,loss\n1.weight,80,0.5,0.75,0.125\n\"a,b\",20,0.5,0.875,0.0\n";
  return files;
}

TEST(HtmlReport, CsvToJsonTypesEveryCell) {
  EXPECT_EQ(csv_to_json("a,b,c\n1,,x\n-2.5e3,nan,\"q,\"\"r\"\"\"\n", "t.csv"),
            "{\"columns\": [\"a\", \"b\", \"c\"], \"rows\": [\n[1, null, \"x\"],\n[-2.5e3, null, \"q,\\\"r\\\"\"]]}");
  EXPECT_EQ(csv_to_json("", "empty.csv"), R"({"columns": [], "rows": []})");
  // '<' never reaches the page raw: no string can close the <script> element.
  EXPECT_EQ(csv_to_json("name\n</script>\n", "t.csv"), "{\"columns\": [\"name\"], \"rows\": [\n[\"\\u003c/script>\"]]}");
  const std::string ragged = error_of<std::runtime_error>([] { csv_to_json("a,b\n1,2\n3\n", "layers.csv"); });
  EXPECT_NE(ragged.find("layers.csv: row 3 has 1 cells where the header has 2"), std::string::npos) << ragged;
  const std::string open = error_of<std::runtime_error>([] { csv_to_json("a\n\"x\n", "m.csv"); });
  EXPECT_NE(open.find("m.csv:2: a quoted cell is not closed"), std::string::npos) << open;
}

TEST(HtmlReport, EmbedsEveryFileAndInlinesTheLibrary) {
  const std::string page = render_html_report(fixed_files(), std::string("/*chart library*/ var Chart = 1;"));
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<script>/*chart library*/ var Chart = 1;</script>"), std::string::npos);
  EXPECT_NE(page.find("<title>sparsity run: fixed</title>"), std::string::npos);
  // The data, as the script reads it.
  EXPECT_NE(page.find("\"models\": {\"columns\": [\"model\", \"callback_type\", \"run\", \"test_accuracy\""),
            std::string::npos);
  EXPECT_NE(page.find("[\"gradual\", \"TrainingAwareDataSparsity\", \"gradual\", 0.8125, 0.9, null, 100, 4000, 900, "
                      "700, 0.5, 0.125, 4.0, 0, 0, 0.0]"),
            std::string::npos);
  EXPECT_NE(page.find("[\"gradual\", 0, 10, 0.25, 0.3125, 0.5, 0.5, null]"), std::string::npos);
  EXPECT_NE(page.find("\"layers\": {\"columns\": [\"model\", \"kind\", \"layer\", \"zeros\", \"elements\"], \"rows\": "
                      "[\n[\"dense\", \"weight\", \"1.weight\", 0, 80],\n[\"gradual\", \"weight\", \"1.weight\", 72, 80]]}"),
            std::string::npos);
  EXPECT_NE(page.find("[\"a,b\", 20, 0.5, 0.875, 0.0]"), std::string::npos);
  EXPECT_NE(page.find("\"sensitivity_levels\": null"), std::string::npos);
  EXPECT_NE(page.find("\"config\": \"seed: 0\\nmodel: {type: mlp}  # a \\u003c/script> in a comment\\n\""),
            std::string::npos);
  // Only the page's own elements close a script.
  size_t closes = 0;
  for (size_t at = page.find("</script>"); at != std::string::npos; at = page.find("</script>", at + 1)) ++closes;
  EXPECT_EQ(closes, 3u);
}

TEST(HtmlReport, WithoutTheLibraryThePageSaysHowToGetTheCharts) {
  const std::string page = render_html_report(fixed_files(), std::nullopt);
  EXPECT_EQ(page.find("var Chart"), std::string::npos);
  EXPECT_NE(page.find("libjs-chart.js"), std::string::npos);
  EXPECT_NE(page.find("trainer_demo --report DIR"), std::string::npos);
  // The library from a file named by SPARSITY_CHART_JS, or none.
  const fs::path dir = testing::scratch_dir("HtmlReportLibrary");
  testing::write_bytes(dir / "chart.js", "var Chart = 2;");
  ::setenv("SPARSITY_CHART_JS", (dir / "chart.js").c_str(), 1);
  EXPECT_EQ(chart_js_library(), std::optional<std::string>("var Chart = 2;"));
  ::setenv("SPARSITY_CHART_JS", (dir / "absent.js").c_str(), 1);
  EXPECT_EQ(chart_js_library(), std::nullopt);
  ::unsetenv("SPARSITY_CHART_JS");
}

TEST(HtmlReport, AMissingFileIsAnErrorNamingIt) {
  const fs::path dir = testing::scratch_dir("HtmlReportMissing");
  const ReportFiles files = fixed_files();
  testing::write_bytes(dir / "config.yaml", files.config_yaml);
  testing::write_bytes(dir / "metrics.csv", files.metrics_csv);
  testing::write_bytes(dir / "models.csv", files.models_csv);
  const std::string message = error_of<std::runtime_error>([&] { write_html_report(dir.string()); });
  EXPECT_NE(message.find((dir / "layers.csv").string() + "' is missing"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir / "report.html"));
  testing::write_bytes(dir / "layers.csv", files.layers_csv);
  EXPECT_EQ(write_html_report(dir.string()), (dir / "report.html").string());
  EXPECT_EQ(testing::read_bytes(dir / "report.html"), render_html_report(read_report_files(dir.string()),
                                                                          chart_js_library()));
  const std::string not_dir = error_of<std::runtime_error>([&] { write_html_report((dir / "nope").string()); });
  EXPECT_NE(not_dir.find("is not a run's output directory"), std::string::npos) << not_dir;
}

// The value of attribute `name` on the <body> of a dumped DOM ("" if absent).
std::string body_attribute(const std::string& dom, const std::string& name) {
  std::smatch match;
  const std::regex body("<body([^>]*)>");
  if (!std::regex_search(dom, match, body)) return "";
  const std::string attributes = match[1];
  const std::regex attribute(" " + name + "=\"([^\"]*)\"");
  return std::regex_search(attributes, match, attribute) ? std::string(match[1]) : std::string();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The DOM of `page` after its scripts ran, from headless Chromium.
std::string dump_dom(const fs::path& page) {
  const auto [status, dom] = testing::run_command(fmt::format(
      "timeout 120 {} --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir='{}' --dump-dom "
      "'file://{}' 2>/dev/null",
      kChromium, (page.parent_path() / "chromium-profile").string(), page.string()));
  EXPECT_EQ(testing::exit_status(status), 0) << dom;
  return dom;
}

TEST(HtmlReport, TheSyntheticRunsReportRendersInHeadlessChromium) {
  if (!fs::exists(kChromium)) {
    GTEST_SKIP() << kChromium << " is not installed (./scripts/setup.sh installs Debian's chromium): the report is "
                                 "not loaded in a browser";
  }
  const fs::path out = testing::scratch_dir("HtmlReportChromium");
  const auto [status, output] = testing::run_command(
      fmt::format("cd '{}' && '{}' configs/synthetic.yaml --output '{}/run' 2>&1", kSourceDir,
                  SPARSITY_TRAINER_DEMO_PATH, out.string()));
  ASSERT_EQ(testing::exit_status(status), 0) << output;
  EXPECT_NE(output.find("report: " + (out / "run" / "report.html").string()), std::string::npos) << output;
  ASSERT_TRUE(chart_js_library().has_value()) << "libjs-chart.js is not installed (./scripts/setup.sh installs it)";

  const std::string dom = dump_dom(out / "run" / "report.html");
  EXPECT_EQ(body_attribute(dom, "data-ready"), "1") << dom.substr(0, 2000);
  EXPECT_EQ(body_attribute(dom, "data-errors"), "");
  EXPECT_EQ(body_attribute(dom, "data-chart-library"), "yes");
  // The synthetic run: loss, accuracy, one schedule, activation sparsity per
  // epoch, weight and activation bars, accuracy against sparsity, sizes,
  // speedups, sensitivity; every one drawn (visible pixels on its canvas).
  const size_t boxes = count_of(dom, "class=\"chart\"");
  EXPECT_EQ(boxes, 10u);
  EXPECT_EQ(body_attribute(dom, "data-charts"), std::to_string(boxes));
  EXPECT_EQ(body_attribute(dom, "data-painted"), std::to_string(boxes));
  EXPECT_EQ(count_of(dom, "data-painted=\"1\""), boxes);
  for (const char* text : {"<td>TrainingAwareDataSparsity</td>", "<td>LossySparsifierCallback</td>", "Sparsity schedules",
                           "Activation sparsity per layer", "Suggested levels", "Configuration"}) {
    EXPECT_NE(dom.find(text), std::string::npos) << text;
  }

  // Rebuilt without the library: the tables, a note in each chart's place.
  const auto [rebuilt, rebuild_output] = testing::run_command(
      fmt::format("SPARSITY_CHART_JS=/nonexistent '{}' --report '{}/run' 2>&1", SPARSITY_TRAINER_DEMO_PATH,
                  out.string()));
  ASSERT_EQ(testing::exit_status(rebuilt), 0) << rebuild_output;
  const std::string plain = dump_dom(out / "run" / "report.html");
  EXPECT_EQ(body_attribute(plain, "data-ready"), "1");
  EXPECT_EQ(body_attribute(plain, "data-errors"), "");
  EXPECT_EQ(body_attribute(plain, "data-chart-library"), "missing");
  EXPECT_EQ(body_attribute(plain, "data-charts"), "0");
  EXPECT_EQ(count_of(plain, "<p class=\"missing\">Chart not drawn: Chart.js was not found"), boxes);
  EXPECT_NE(plain.find("<td>TrainingAwareDataSparsity</td>"), std::string::npos);

  // --report on a directory that is no run: exit status 3 naming the file.
  const auto [bad, bad_output] = testing::run_command(
      fmt::format("'{}' --report '{}' 2>&1", SPARSITY_TRAINER_DEMO_PATH, out.string()));
  EXPECT_EQ(testing::exit_status(bad), 3) << bad_output;
  EXPECT_NE(bad_output.find("config.yaml' is missing"), std::string::npos) << bad_output;
}

}  // namespace
}  // namespace sparsity::demo
