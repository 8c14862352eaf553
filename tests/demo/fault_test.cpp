// trainer_demo under faults: killed with SIGKILL at several points then
// resumed (the same models as an uninterrupted run, byte for byte, with
// TrainingAwareDataSparsity updating every N steps); a disk that fills up
// during each kind of write (an error naming the file, every file left
// complete, no temporary file left); a read-only output directory. The disk
// cases mount a tiny tmpfs in a private mount namespace (`unshare -m`), and
// are skipped, saying so, where that is not allowed.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../core/test_support.h"
#include "sparsity/state_file.h"

namespace sparsity::demo {
namespace {

namespace fs = std::filesystem;
using sparsity::testing::exit_status;
using sparsity::testing::read_bytes;
using sparsity::testing::run_command;
using sparsity::testing::write_bytes;

// About a second of training: 4,000 synthetic 8x8 images, 12 epochs of 63
// batches, a checkpoint per epoch, and a training-aware callback whose masks
// are updated every 10 steps (so updates fall between checkpoints).
const std::string kFaultConfig =
    "seed: 1\n"
    "threads: 1\n"
    "data:\n"
    "  source: synthetic\n"
    "  batch_size: 64\n"
    "  validation_split: 0.2\n"
    "  synthetic: {train_size: 5000, test_size: 200, classes: 4, image_size: 8, noise: 1.0}\n"
    "model:\n"
    "  hidden: [32]\n"
    "trainer:\n"
    "  epochs: 12\n"
    "  progress: false\n"
    "callbacks:\n"
    "  - type: TrainingAwareDataSparsity\n"
    "    sparsifier: {type: DataNormSparsifier, args: {sparsity_level: 0.8, sparse_block_shape: [1, 4]}}\n"
    "    scheduler: {type: CubicSLScheduler, args: {delta_t: 1, total_t: 20}}\n"
    "    update_every_n_steps: 10\n"
    "    include: [\"*weight\"]\n";

fs::path fault_config(const fs::path& dir) {
  const fs::path path = dir / "fault.yaml";
  write_bytes(path, kFaultConfig);
  return path;
}

std::string demo_command(const fs::path& config, const fs::path& output, const std::string& extra = "") {
  return fmt::format("'{}' '{}' --output '{}' {}", SPARSITY_TRAINER_DEMO_PATH, config.string(), output.string(),
                     extra);
}

/// The files of `dir`, relative, that a finished run writes deterministically.
std::set<std::string> model_files(const fs::path& dir) {
  std::set<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string name = fs::relative(entry.path(), dir).string();
    if (entry.is_regular_file() && (name.rfind("models/", 0) == 0 || name.rfind("sparsifiers/", 0) == 0)) {
      files.insert(name);
    }
  }
  return files;
}

TEST(FaultKill, KilledAtSeveralEpochsThenResumedGivesTheUninterruptedModels) {
  const fs::path dir = testing::scratch_dir("FaultKill");
  const fs::path config = fault_config(dir);
  const auto [straight_status, straight_output] = run_command(demo_command(config, dir / "straight") + " 2>&1");
  ASSERT_EQ(exit_status(straight_status), 0) << straight_output;
  const std::set<std::string> expected = model_files(dir / "straight");
  // The dense and training-aware models, their compact files, the callback's sparsifier state.
  ASSERT_EQ(expected.size(), 5u);

  // Killed once the dense model's metrics.csv holds `epochs` rows (its header
  // and that many epochs), i.e. while the run is between two checkpoints.
  for (const int epochs : {1, 4, 9}) {
    const fs::path run = dir / fmt::format("killed_after_{}", epochs);
    const std::string script = fmt::format(
        "{} >/dev/null 2>&1 & pid=$!; i=0; "
        "while [ \"$(wc -l < '{}' 2>/dev/null || echo 0)\" -le {} ] && kill -0 $pid 2>/dev/null && [ $i -lt 3000 ]; "
        "do sleep 0.005; i=$((i+1)); done; kill -9 $pid 2>/dev/null; wait $pid; echo status=$?",
        demo_command(config, run), (run / "train" / "dense" / "metrics.csv").string(), epochs);
    const auto [status, output] = run_command(script);
    ASSERT_EQ(exit_status(status), 0) << output;
    // 137: killed by SIGKILL, as intended (0 would mean it finished first).
    EXPECT_NE(output.find("status=137"), std::string::npos) << "epochs " << epochs << ": " << output;
    const auto [resumed_status, resumed_output] =
        run_command(demo_command(config, run, "trainer.resume=true") + " 2>&1");
    ASSERT_EQ(exit_status(resumed_status), 0) << resumed_output;
    EXPECT_EQ(model_files(run), expected);
    for (const std::string& name : expected) {
      EXPECT_EQ(read_bytes(run / name), read_bytes(dir / "straight" / name))
          << name << " after a kill at epoch " << epochs;
    }
  }
}

/// Whether this process may mount a tmpfs in a private mount namespace.
bool can_mount_privately() {
  return exit_status(run_command("unshare -m --propagation private sh -c "
                                 "'mount -t tmpfs -o size=64k tmpfs /mnt' >/dev/null 2>&1")
                         .first) == 0;
}

/// Runs `command` with a tmpfs of `size` mounted on `mount_point` in a
/// private mount namespace (`options`: extra mount options, e.g. "ro"), and
/// copies what it left there into `copy` before the namespace goes.
std::pair<int, std::string> with_tmpfs(const fs::path& mount_point, const std::string& size, const std::string& options,
                                       const std::string& command, const fs::path& copy) {
  fs::create_directories(mount_point);
  fs::create_directories(copy);
  const fs::path script = copy.parent_path() / "in_namespace.sh";
  write_bytes(script, fmt::format("mount -t tmpfs -o size={}{} tmpfs '{}' || exit 99\n"
                                  "{} > '{}/out.log' 2>&1\nrc=$?\n"
                                  "cp -a '{}/.' '{}/'\ncat '{}/out.log'\nexit $rc\n",
                                  size, options.empty() ? "" : "," + options, mount_point.string(), command,
                                  copy.parent_path().string(), mount_point.string(), copy.string(),
                                  copy.parent_path().string()));
  const auto [status, output] = run_command(fmt::format("unshare -m --propagation private sh '{}'", script.string()));
  return {exit_status(status), output};
}

TEST(FaultDisk, AFullDiskIsAnErrorNamingTheFileAndLeavesOnlyCompleteFiles) {
  if (!can_mount_privately()) GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace (needs root or "
                                              "CAP_SYS_ADMIN; unshare -m): the full-disk case is not run";
  const fs::path dir = testing::scratch_dir("FaultDisk");
  const fs::path config = dir / "tiny.yaml";
  write_bytes(config,
              "seed: 1\nthreads: 1\ndata:\n  source: synthetic\n  batch_size: 16\n  validation_split: 0.25\n"
              "  synthetic: {train_size: 64, test_size: 32, classes: 2, image_size: 4, noise: 0.1}\n"
              "model:\n  hidden: [8]\ntrainer:\n  epochs: 1\n  progress: false\ncallbacks:\n"
              "  - type: PostTrainingDataSparsity\n"
              "    sparsifier: {type: DataNormSparsifier, args: {sparsity_level: 0.5}}\n"
              "    include: [\"*weight\"]\n");
  // From a disk that holds almost nothing to one that holds the whole run:
  // the writes that fail are, in turn, metrics.csv, the checkpoint, the
  // models and their compact files, the sparsifier state, the summary and
  // the report.
  std::set<std::string> failed_writes;
  bool finished = false;
  // 4 KiB steps up to 64 KiB, then 64 KiB steps: report.html inlines Chart.js
  // (about 200 KB), so a run needs some 300 KiB.
  for (int kib = 4; kib <= 1024 && !finished; kib += kib < 64 ? 4 : 64) {
    const fs::path copy = dir / fmt::format("copy_{}k", kib) / "files";
    const auto [rc, output] =
        with_tmpfs(dir / "mnt", fmt::format("{}k", kib), "", demo_command(config, dir / "mnt" / "run"), copy);
    ASSERT_NE(rc, 99) << "mount failed: " << output;
    if (rc == 0) {
      finished = true;
      continue;
    }
    EXPECT_EQ(rc, 3) << kib << " KiB: " << output;
    const auto at = output.find("trainer_demo: error: cannot write '");
    ASSERT_NE(at, std::string::npos) << kib << " KiB: " << output;
    EXPECT_NE(output.find("No space left on device"), std::string::npos) << output;
    const auto name_begin = at + std::string("trainer_demo: error: cannot write '").size();
    failed_writes.insert(fs::path(output.substr(name_begin, output.find('\'', name_begin) - name_begin)).filename());
    // Whatever is there is whole: no temporary files, state files that load
    // with their checksum, text files that end with their last line.
    for (const auto& entry : fs::recursive_directory_iterator(copy)) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().filename().string();
      EXPECT_EQ(name.find(".tmp"), std::string::npos) << kib << " KiB: a temporary file is left: " << entry.path();
      const bool compact = name.size() > 10 && name.compare(name.size() - 10, 10, ".sparse.pt") == 0;
      if (name == "checkpoint.pt" || compact || entry.path().parent_path().filename() == "sparsifiers") {
        EXPECT_NO_THROW(load_state_file(entry.path().string(), "a state file")) << entry.path();
      } else if (entry.path().extension() != ".pt") {
        const std::string text = read_bytes(entry.path());
        EXPECT_TRUE(!text.empty() && text.back() == '\n') << entry.path();
      }
    }
  }
  EXPECT_TRUE(finished) << "1 MiB should hold the whole run";
  // (Each file takes at least a 4 KiB page of the tmpfs.)
  for (const char* file : {"metrics.csv", "checkpoint.pt", "dense.pt", "dense.sparse.pt", "PostTrainingDataSparsity.pt",
                           "PostTrainingDataSparsity.sparse.pt", "summary.json", "report.html"}) {
    EXPECT_EQ(failed_writes.count(file), 1u) << "no disk size made the write of " << file << " fail";
  }
}

TEST(FaultDisk, AReadOnlyOutputDirectoryIsAClearError) {
  if (!can_mount_privately()) GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace (needs root or "
                                              "CAP_SYS_ADMIN; unshare -m): the read-only case is not run";
  const fs::path dir = testing::scratch_dir("FaultReadOnly");
  const fs::path config = fault_config(dir);
  const auto [rc, output] =
      with_tmpfs(dir / "mnt", "1m", "ro", demo_command(config, dir / "mnt" / "run"), dir / "copy" / "files");
  ASSERT_NE(rc, 99) << "mount failed: " << output;
  EXPECT_EQ(rc, 3) << output;
  EXPECT_NE(output.find("trainer_demo: error: "), std::string::npos) << output;
  EXPECT_NE(output.find("Read-only file system"), std::string::npos) << output;
  EXPECT_NE(output.find((dir / "mnt" / "run").string()), std::string::npos) << output;
}

}  // namespace
}  // namespace sparsity::demo
