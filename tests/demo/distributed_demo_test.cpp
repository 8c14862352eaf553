// trainer_demo data-parallel: --nproc, its failures, and the launcher's variables.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "../core/test_support.h"

namespace sparsity::demo {
namespace {

namespace fs = std::filesystem;

const std::string kSourceDir = SPARSITY_SOURCE_DIR;

std::string demo_command(const std::string& prefix, const std::string& arguments) {
  // `timeout` keeps a broken launcher from hanging the suite.
  return fmt::format("cd '{}' && {} timeout -k 5 120 '{}' {} 2>&1", kSourceDir, prefix, SPARSITY_TRAINER_DEMO_PATH,
                     arguments);
}

TEST(TrainerDemoDistributed, TwoLocalRanksOnTheSyntheticConfig) {
  const fs::path out = testing::scratch_dir("TrainerDemoNproc2");
  const auto [status, output] = testing::run_command(
      demo_command("", fmt::format("--nproc 2 configs/synthetic.yaml trainer.epochs=2 --output '{}'", out.string())));
  ASSERT_EQ(testing::exit_status(status), 0) << output;
  EXPECT_CONTAINS(output, "launching 2 ranks (MASTER_ADDR=127.0.0.1 MASTER_PORT=");
  EXPECT_CONTAINS(output, "batch 64 per rank x 2 ranks (128 per step)");
  EXPECT_CONTAINS(output, "data-parallel over 2 processes");
  const std::string summary = testing::read_bytes(out / "summary.json");
  EXPECT_CONTAINS(summary, "\"world_size\": 2,");
  for (const char* file : {"metrics.csv", "models/dense.pt", "models/TrainingAwareDataSparsity.pt",
                           "train/dense/checkpoint.pt", "report.html"})
    EXPECT_TRUE(fs::exists(out / file)) << file;
  // Rank 0 alone reports: one result table.
  size_t tables = 0;
  for (size_t at = output.find("wall time"); at != std::string::npos; at = output.find("wall time", at + 1)) ++tables;
  EXPECT_EQ(tables, 1u) << output;
}

TEST(TrainerDemoDistributed, AFailingRankStopsTheOthers) {
  // Rank 0 cannot use the output directory (a file) and fails before joining;
  // rank 1, waiting to join, is stopped by the launcher.
  const fs::path dir = testing::scratch_dir("TrainerDemoNprocFails");
  testing::write_bytes(dir / "file", "not a directory");
  const auto started = std::chrono::steady_clock::now();
  const auto [status, output] = testing::run_command(
      demo_command("", fmt::format("--nproc 2 configs/synthetic.yaml --output '{}'", (dir / "file").string())));
  EXPECT_EQ(testing::exit_status(status), 3) << output;
  EXPECT_CONTAINS(output, "is a file, not a directory");
  EXPECT_CONTAINS(output, "trainer_demo: rank 0 exited with status 3; stopping the other ranks");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 60.0);
}

TEST(TrainerDemoDistributed, BadLauncherVariablesAreClearErrors) {
  const fs::path out = testing::scratch_dir("TrainerDemoBadWorldSize");
  auto [status, output] = testing::run_command(
      demo_command("RANK=0 WORLD_SIZE=abc", fmt::format("configs/synthetic.yaml --output '{}/run'", out.string())));
  EXPECT_EQ(testing::exit_status(status), 3) << output;
  EXPECT_CONTAINS(output, "WORLD_SIZE=\"abc\" is not an integer");
  std::tie(status, output) = testing::run_command(
      demo_command("RANK=0 WORLD_SIZE=2", fmt::format("--nproc 2 configs/synthetic.yaml --output '{}/run'", out.string())));
  EXPECT_EQ(testing::exit_status(status), 2) << output;
  EXPECT_CONTAINS(output, "--nproc starts the ranks itself; RANK is already set");
  std::tie(status, output) = testing::run_command(
      demo_command("", fmt::format("--nproc 0 configs/synthetic.yaml --output '{}/run'", out.string())));
  EXPECT_EQ(testing::exit_status(status), 2) << output;
  EXPECT_FALSE(fs::exists(out / "run"));
}

}  // namespace
}  // namespace sparsity::demo
