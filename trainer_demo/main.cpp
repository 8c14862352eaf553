// trainer_demo: trains and sparsifies models as a YAML config describes.
//
//   trainer_demo [CONFIG] [--output DIR] [--check] [key=value ...]
//   trainer_demo --report DIR     rebuild DIR/report.html from a finished run
//   trainer_demo --nproc N ...    the same run data-parallel over N local processes
//
// Exit status: 0 done, 1 a mistake in the config, 2 a usage mistake, 3 the run
// failed (e.g. missing data). See docs/trainer_demo.md and docs/configuration.md.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "default_paths.h"
#include "demo_runner.h"
#include "html_report.h"
#include "launcher.h"
#include "run_config.h"
#include "sparsity/message_text.h"

int main(int argc, char** argv) {
  CLI::App app{"Trains a model on Fashion-MNIST (or other data) and sparsifies it as a YAML config describes.",
               "trainer_demo"};
  std::string config_path;
  std::string output_dir;
  std::vector<std::string> overrides;
  bool check_only = false;
  bool sensitivity = false;
  std::string report_dir;
  int nproc = 0;
  app.add_option("config", config_path, "Run config (YAML); default: configs/default.yaml");
  app.add_option("overrides", overrides,
                 "Config overrides as dotted.key=value, e.g. trainer.epochs=2 "
                 "callbacks.0.sparsifier.args.sparsity_level=0.9 'model.hidden=[64, 32]'");
  app.add_option("-o,--output", output_dir, "Output directory; default: runs/<config name>-<date>-<time>");
  app.add_flag("--check", check_only, "Only read and check the config, print it resolved, and exit");
  app.add_flag("--sensitivity", sensitivity,
               "Also analyse the dense model's per-layer sensitivity (the config's `sensitivity` section, or its "
               "defaults)");
  app.add_option("--report", report_dir,
                 "Only rebuild DIR/report.html from the files of a finished run in DIR, and exit");
  app.add_option("--nproc", nproc,
                 "Train data-parallel over N processes on this machine (each with data.batch_size examples per step; "
                 "rank 0 writes the outputs); see docs/distributed.md")
      ->check(CLI::Range(1, 1024));
  app.footer("Outputs: config.yaml, metrics.csv, models/, sparsifiers/, train/<run>/, summary.json, models.csv,\n"
             "layers.csv, report.html.\n"
             "Docs: docs/trainer_demo.md, docs/configuration.md.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and succeeds; any other usage mistake is exit status 2.
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }

  if (nproc > 0 && std::getenv("RANK") != nullptr) {
    std::cerr << "trainer_demo: --nproc starts the ranks itself; RANK is already set (started by a launcher?)\n";
    return 2;
  }
  if (!report_dir.empty()) {
    if (!config_path.empty() || !overrides.empty() || check_only || sensitivity || !output_dir.empty() || nproc > 0) {
      std::cerr << "trainer_demo: --report takes only the output directory of a finished run\n";
      return 2;
    }
    try {
      std::cout << "report: " << sparsity::demo::write_html_report(report_dir) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "trainer_demo: error: " << sparsity::error_text(e) << "\n";
      return 3;
    }
    return 0;
  }

  // `trainer_demo trainer.epochs=1` means the default config with an override.
  if (config_path.find('=') != std::string::npos && !std::filesystem::exists(config_path)) {
    overrides.insert(overrides.begin(), config_path);
    config_path.clear();
  }
  if (config_path.empty()) config_path = sparsity::demo::default_config_path();

  sparsity::demo::RunConfig config;
  try {
    config = sparsity::demo::load_run_config(config_path, overrides);
  } catch (const sparsity::demo::ConfigError& e) {
    std::cerr << "trainer_demo: config error: " << e.what() << "\n";
    return 1;
  }
  if (sensitivity && !config.sensitivity) config.sensitivity.emplace();
  if (check_only) {
    std::cout << sparsity::demo::to_yaml_text(config);
    return 0;
  }
  if (output_dir.empty()) output_dir = sparsity::demo::default_output_dir(config_path);
  if (nproc > 1) {
    // Every rank runs this command with the same, resolved output directory.
    std::vector<std::string> args{config_path};
    args.insert(args.end(), overrides.begin(), overrides.end());
    args.insert(args.end(), {"--output", output_dir});
    if (sensitivity) args.emplace_back("--sensitivity");
    try {
      return sparsity::demo::launch_local_ranks(nproc, "/proc/self/exe", args) == 0 ? 0 : 3;
    } catch (const std::exception& e) {
      std::cerr << "trainer_demo: error: " << sparsity::error_text(e) << "\n";
      return 3;
    }
  }
  try {
    sparsity::demo::run_demo(config, output_dir);
  } catch (const std::exception& e) {
    std::cerr << "trainer_demo: error: " << sparsity::error_text(e) << "\n";
    return 3;
  }
  return 0;
}
