// trainer_demo's reliability (issue 16): data splits of different sizes, a
// failed resume, long lists, multi-document and unbounded config files, and
// output directories shared by two runs. Each case asserts that nothing is
// written or changed where the program refuses.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../core/test_support.h"
#include "demo_data.h"
#include "run_config.h"

namespace sparsity::demo {
namespace {

namespace fs = std::filesystem;
using sparsity::testing::error_of;
using sparsity::testing::exit_status;
using sparsity::testing::read_bytes;
using sparsity::testing::run_command;
using sparsity::testing::write_bytes;

std::string demo(const std::string& arguments) {
  return fmt::format("'{}' {} 2>&1", SPARSITY_TRAINER_DEMO_PATH, arguments);
}

// A run of about a second: 48 synthetic 4x4 examples, an MLP 16-8-2, two
// epochs, one post-training callback (whose state the checkpoint carries).
const std::string kTinyConfig =
    "seed: 1\n"
    "threads: 1\n"
    "data:\n"
    "  source: synthetic\n"
    "  batch_size: 16\n"
    "  validation_split: 0.25\n"
    "  synthetic: {train_size: 64, test_size: 32, classes: 2, image_size: 4, noise: 0.1}\n"
    "model:\n"
    "  hidden: [8]\n"
    "trainer:\n"
    "  epochs: 2\n"
    "  progress: false\n"
    "callbacks:\n"
    "  - type: PostTrainingDataSparsity\n"
    "    sparsifier: {type: DataNormSparsifier, args: {sparsity_level: 0.5}}\n"
    "    include: [\"*weight\"]\n";

/// Writes kTinyConfig into `dir` and returns its path.
fs::path tiny_config(const fs::path& dir) {
  const fs::path path = dir / "tiny.yaml";
  write_bytes(path, kTinyConfig);
  return path;
}

/// Every file under `dir` with its bytes, to compare a directory before and after.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).string()] = read_bytes(entry.path());
  }
  return files;
}

// ---------------------------------------------------------------- data splits

/// An MNIST-format directory: `train` images of `train_size` x `train_size`
/// pixels and 2 test images of `test_size` x `test_size`.
void write_idx_dir(const fs::path& dir, uint8_t train, uint8_t train_size, uint8_t test_size) {
  auto images = [](uint8_t n, uint8_t size) {
    std::string bytes{'\0', '\0', '\x08', '\x03', '\0', '\0', '\0', static_cast<char>(n),
                      '\0', '\0', '\0', static_cast<char>(size), '\0', '\0', '\0', static_cast<char>(size)};
    return bytes + std::string(static_cast<size_t>(n) * size * size, '\x40');
  };
  auto labels = [](uint8_t n) {
    std::string bytes{'\0', '\0', '\x08', '\x01', '\0', '\0', '\0', static_cast<char>(n)};
    for (uint8_t i = 0; i < n; ++i) bytes += static_cast<char>(i % 10);
    return bytes;
  };
  write_bytes(dir / "train-images-idx3-ubyte", images(train, train_size));
  write_bytes(dir / "train-labels-idx1-ubyte", labels(train));
  write_bytes(dir / "t10k-images-idx3-ubyte", images(2, test_size));
  write_bytes(dir / "t10k-labels-idx1-ubyte", labels(2));
}

TEST(ReliabilityData, TestImagesOfAnotherSizeAreAnErrorNamingBothFiles) {
  const fs::path dir = testing::scratch_dir("ReliabilityDataSizes");
  write_idx_dir(dir, 6, 28, 14);
  DataConfig config;
  config.source = "idx";
  config.directory = dir.string();
  const std::string message = error_of<std::runtime_error>([&] { load_demo_data(config, 0); });
  EXPECT_CONTAINS(message, fmt::format("the test images '{}' are 14x14", (dir / "t10k-images-idx3-ubyte").string()));
  EXPECT_CONTAINS(message, fmt::format("the training images '{}' are 28x28", (dir / "train-images-idx3-ubyte").string()));

  // Same sizes: read as before.
  write_idx_dir(dir, 6, 28, 28);
  const DemoData data = load_demo_data(config, 0);
  EXPECT_EQ(data.test_inputs.sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
}

TEST(ReliabilityData, MismatchedSplitsStopTheDemoBeforeTheOutputDirectoryExists) {
  const fs::path dir = testing::scratch_dir("ReliabilityDataDemo");
  write_idx_dir(dir, 6, 28, 14);
  const fs::path out = dir / "out";
  const auto [status, output] = run_command(demo(fmt::format(
      "'{}' data.source=idx data.directory='{}' data.validation_split=0 callbacks=[] --output '{}'",
      tiny_config(dir).string(), dir.string(), out.string())));
  EXPECT_EQ(exit_status(status), 3) << output;
  EXPECT_CONTAINS(output, "are 14x14 but the training images");
  EXPECT_CONTAINS(output, "t10k-images-idx3-ubyte");
  EXPECT_EQ(output.find("== run"), std::string::npos) << output;  // no training started
  EXPECT_FALSE(fs::exists(out));
}

// ---------------------------------------------------------------- resume

TEST(ReliabilityResume, AFailedResumeLeavesTheOutputDirectoryAsItWas) {
  const fs::path dir = testing::scratch_dir("ReliabilityResume");
  const fs::path config = tiny_config(dir);
  const fs::path out = dir / "out";
  const auto [first, first_output] = run_command(demo(fmt::format("'{}' --output '{}'", config.string(), out.string())));
  ASSERT_EQ(exit_status(first), 0) << first_output;
  const auto before = snapshot(out);
  ASSERT_EQ(before.count("config.yaml"), 1u);
  ASSERT_EQ(before.count("train/dense/checkpoint.pt"), 1u);

  // Another model layout: the checkpoint's tensors do not fit.
  const auto [wider, wider_output] = run_command(demo(
      fmt::format("'{}' --output '{}' trainer.resume=true 'model.hidden=[16]'", config.string(), out.string())));
  EXPECT_EQ(exit_status(wider), 3) << wider_output;
  EXPECT_CONTAINS(wider_output, fmt::format("trainer.resume: cannot resume run 'dense' from '{}'",
                                            (out / "train" / "dense" / "checkpoint.pt").string()));
  EXPECT_CONTAINS(wider_output, "'1.weight' has shape [8, 16] in the checkpoint but [16, 16] in the model");
  EXPECT_EQ(wider_output.find("== run"), std::string::npos) << wider_output;
  EXPECT_EQ(snapshot(out), before);  // config.yaml byte-identical, nothing added

  // Another optimizer: its state does not load.
  const auto [sgd, sgd_output] = run_command(
      demo(fmt::format("'{}' --output '{}' trainer.resume=true optimizer.type=sgd", config.string(), out.string())));
  EXPECT_EQ(exit_status(sgd), 3) << sgd_output;
  EXPECT_CONTAINS(sgd_output, "the optimizer's state does not load into this optimizer");
  EXPECT_EQ(snapshot(out), before);

  // A corrupt checkpoint.
  const fs::path checkpoint = out / "train" / "dense" / "checkpoint.pt";
  std::string bytes = read_bytes(checkpoint);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5A);
  write_bytes(checkpoint, bytes);
  const auto corrupt_before = snapshot(out);
  const auto [corrupt, corrupt_output] =
      run_command(demo(fmt::format("'{}' --output '{}' trainer.resume=true", config.string(), out.string())));
  EXPECT_EQ(exit_status(corrupt), 3) << corrupt_output;
  EXPECT_CONTAINS(corrupt_output, "trainer.resume: cannot resume run 'dense'");
  EXPECT_EQ(snapshot(out), corrupt_before);
}

TEST(ReliabilityResume, AMatchingResumeStillRuns) {
  const fs::path dir = testing::scratch_dir("ReliabilityResumeOk");
  const fs::path config = tiny_config(dir);
  const fs::path out = dir / "out";
  const auto [first, first_output] = run_command(demo(fmt::format("'{}' --output '{}'", config.string(), out.string())));
  ASSERT_EQ(exit_status(first), 0) << first_output;
  const auto [again, again_output] = run_command(
      demo(fmt::format("'{}' --output '{}' trainer.resume=true trainer.epochs=3", config.string(), out.string())));
  EXPECT_EQ(exit_status(again), 0) << again_output;
  EXPECT_CONTAINS(again_output, fmt::format("resuming from {}", (out / "train" / "dense" / "checkpoint.pt").string()));
  EXPECT_CONTAINS(read_bytes(out / "config.yaml"), "epochs: 3");
}

// ---------------------------------------------------------------- output directory

TEST(ReliabilityOutput, ADirectoryWithAnotherRunsFilesNeedsResume) {
  const fs::path dir = testing::scratch_dir("ReliabilityOutputUsed");
  const fs::path config = tiny_config(dir);
  const fs::path out = dir / "out";
  const auto [first, first_output] = run_command(demo(fmt::format("'{}' --output '{}'", config.string(), out.string())));
  ASSERT_EQ(exit_status(first), 0) << first_output;
  const auto before = snapshot(out);

  const auto [second, second_output] = run_command(
      demo(fmt::format("'{}' --output '{}' 'model.hidden=[4]'", config.string(), out.string())));
  EXPECT_EQ(exit_status(second), 3) << second_output;
  EXPECT_CONTAINS(second_output, fmt::format("the output directory '{}' already holds files (config.yaml, layers.csv, metrics.csv",
                                             out.string()));
  EXPECT_CONTAINS(second_output, "add trainer.resume=true");
  EXPECT_CONTAINS(second_output, "choose another --output directory");
  EXPECT_EQ(snapshot(out), before);

  // Any file counts, not only a run's: the demo would mix its outputs in.
  const fs::path other = dir / "other";
  fs::create_directories(other);
  write_bytes(other / "notes.txt", "mine\n");
  const auto [mixed, mixed_output] =
      run_command(demo(fmt::format("'{}' --output '{}'", config.string(), other.string())));
  EXPECT_EQ(exit_status(mixed), 3) << mixed_output;
  EXPECT_CONTAINS(mixed_output, "already holds files (notes.txt)");
  EXPECT_EQ(snapshot(other).size(), 1u);
}

TEST(ReliabilityOutput, ALockedDirectoryIsRefusedAndLeftEmpty) {
  const fs::path dir = testing::scratch_dir("ReliabilityOutputLocked");
  const fs::path config = tiny_config(dir);
  const fs::path out = dir / "out";
  fs::create_directories(out);
  const int fd = ::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const auto [locked, locked_output] =
      run_command(demo(fmt::format("'{}' --output '{}'", config.string(), out.string())));
  ::close(fd);  // releases the lock
  EXPECT_EQ(exit_status(locked), 3) << locked_output;
  EXPECT_CONTAINS(locked_output,
                  fmt::format("the output directory '{}' is in use by another trainer_demo run", out.string()));
  EXPECT_TRUE(fs::is_empty(out));

  const auto [unlocked, unlocked_output] = run_command(demo(fmt::format("'{}' --output '{}'", config.string(), out.string())));
  EXPECT_EQ(exit_status(unlocked), 0) << unlocked_output;
}

TEST(ReliabilityOutput, OfTwoRunsStartedTogetherOnOneDirectoryOnlyOneWrites) {
  const fs::path dir = testing::scratch_dir("ReliabilityOutputTwo");
  const fs::path config = tiny_config(dir);
  const fs::path out = dir / "out";
  // Whichever comes second finds the lock held, or (if the first is done
  // already) the first one's files: either way it must not write.
  const std::string one = demo(fmt::format("'{}' --output '{}' > '{}/a.log'", config.string(), out.string(), dir.string()));
  const std::string two = demo(fmt::format("'{}' --output '{}' > '{}/b.log'", config.string(), out.string(), dir.string()));
  const auto [status, output] = run_command(fmt::format(
      "({0}) & a=$!; ({1}) & b=$!; wait $a; echo \"a=$?\"; wait $b; echo \"b=$?\"", one, two));
  ASSERT_EQ(exit_status(status), 0) << output;
  const bool a_ok = output.find("a=0") != std::string::npos;
  const bool b_ok = output.find("b=0") != std::string::npos;
  EXPECT_NE(a_ok, b_ok) << output << read_bytes(dir / "a.log") << read_bytes(dir / "b.log");
  const std::string refused = read_bytes(dir / (a_ok ? "b.log" : "a.log"));
  const bool locked = refused.find("is in use by another trainer_demo run") != std::string::npos;
  const bool used = refused.find("already holds files") != std::string::npos;
  EXPECT_TRUE(locked || used) << refused;
  EXPECT_TRUE(fs::exists(out / "summary.json"));
}

// ---------------------------------------------------------------- config limits

std::string int_list(size_t n) {
  std::string list = "[";
  for (size_t i = 0; i < n; ++i) list += i == 0 ? "8" : ", 8";
  return list + "]";
}

TEST(ReliabilityConfig, ListsOverTheLimitAreErrorsWithTheirLength) {
  std::string message = error_of<ConfigError>(
      [&] { parse_run_config("seed: 1\nmodel:\n  hidden: " + int_list(10000) + "\n", "long.yaml"); });
  EXPECT_EQ(message, "long.yaml:3:11: model.hidden: the list has 10000 entries; at most 1000 are allowed "
                     "(docs/configuration.md, Limits)");

  EXPECT_EQ(parse_run_config("model:\n  hidden: " + int_list(1000) + "\n", "ok.yaml").model.hidden.size(), 1000u);
  message = error_of<ConfigError>([&] {
    parse_run_config("model:\n  type: cnn\n  channels: " + int_list(1001) + "\n", "long.yaml");
  });
  EXPECT_CONTAINS(message, "long.yaml:3:13: model.channels: the list has 1001 entries; at most 1000");
  message = error_of<ConfigError>(
      [&] { parse_run_config("seed: 1\n", "long.yaml", {"model.hidden=" + int_list(1001)}); });
  EXPECT_CONTAINS(message, "model.hidden: the list has 1001 entries");
  EXPECT_CONTAINS(message, "override 'model.hidden=[8, 8");

  std::string callbacks = "callbacks:\n";
  for (int i = 0; i < 101; ++i)
    callbacks += "  - {type: PostTrainingDataSparsity, sparsifier: {type: DataNormSparsifier}}\n";
  message = error_of<ConfigError>([&] { parse_run_config(callbacks, "many.yaml"); });
  EXPECT_EQ(message, "many.yaml:2:3: callbacks: the list of callbacks has 101 entries; at most 100 are allowed "
                     "(docs/configuration.md, Limits)");

  std::string args = "callbacks:\n  - type: PostTrainingDataSparsity\n    sparsifier:\n      type: DataNormSparsifier\n"
                     "      args:\n";
  for (int i = 0; i < 1001; ++i) args += fmt::format("        a{}: 1\n", i);
  message = error_of<ConfigError>([&] { parse_run_config(args, "args.yaml"); });
  EXPECT_CONTAINS(message, "args.yaml:6:9: callbacks[0].sparsifier.args: the mapping of arguments has 1001 entries");

  message = error_of<ConfigError>([&] {
    parse_run_config("callbacks:\n  - type: PostTrainingDataSparsity\n    sparsifier:\n      type: DataNormSparsifier\n"
                     "      args: {sparse_block_shape: " + int_list(1001) + "}\n",
                     "args.yaml");
  });
  EXPECT_CONTAINS(message, "args.yaml:5:34: callbacks[0].sparsifier.args.sparse_block_shape: the list has 1001 entries");
}

TEST(ReliabilityConfig, AConfigAtEveryLimitIsRead) {
  // 100 callbacks with 1000 patterns each, 1000 hidden widths and channels:
  // about 100,000 nodes. Reading each list entry used to merge the whole
  // document's node set (minutes for this one; 0.3 s now, measured by hand:
  // speed is not asserted in a unit test).
  std::string text = "model:\n  hidden: " + int_list(1000) + "\n  channels: " + int_list(1000) + "\ncallbacks:\n";
  std::string patterns = "[";
  for (int i = 0; i < 1000; ++i) patterns += fmt::format("{}\"p{}*\"", i == 0 ? "" : ", ", i);
  patterns += "]";
  for (int i = 0; i < 100; ++i) {
    text += "  - type: PostTrainingDataSparsity\n    sparsifier: {type: DataNormSparsifier}\n    include: " + patterns +
            "\n";
  }
  const RunConfig config = parse_run_config(text, "big.yaml");
  EXPECT_EQ(config.callbacks.size(), 100u);
  EXPECT_EQ(config.callbacks.back().resolved.get<ConfigValue::StringList>("include").size(), 1000u);
  EXPECT_EQ(config.model.channels.size(), 1000u);
}

TEST(ReliabilityConfig, HugeAndHostileValuesAreQuotedShortAndEscaped) {
  // A 1 MB scalar where a number belongs, and terminal escapes in a key and
  // an override: the message quotes at most 120 bytes of each, escaped.
  const std::string blob(1 << 20, 'z');
  std::string message = error_of<ConfigError>([&] { parse_run_config("seed: " + blob + "\n", "blob.yaml"); });
  EXPECT_LT(message.size(), 600u) << message.substr(0, 600);
  EXPECT_CONTAINS(message, "... (1048576 bytes)");
  message = error_of<ConfigError>([] { parse_run_config("\"see\\e[2Jd\": 1\n", "esc.yaml"); });
  EXPECT_CONTAINS(message, "unknown key 'see\\x1b[2Jd'");
  EXPECT_EQ(message.find('\x1b'), std::string::npos);
  message = error_of<ConfigError>([] { parse_run_config("seed: 1\n", "o.yaml", {"trainer.epochs=\x1b[31mred"}); });
  EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  EXPECT_CONTAINS(message, "\\x1b[31mred");
}

TEST(ReliabilityConfig, AStreamThatYamlCppsLoadAllNeverFinishesIsAnError) {
  // Found by the run_config fuzz target: yaml-cpp 0.7's LoadAll loops for
  // ever on this stream (it took over 10 s, then was killed); the parser
  // reports a second document.
  const std::string text = read_bytes(fs::path(SPARSITY_SOURCE_DIR) / "fuzz/corpus/run_config/loadall_never_returned.yaml");
  ASSERT_FALSE(text.empty());
  const std::string message = error_of<ConfigError>([&] { parse_run_config(text, "fuzzed.yaml"); });
  EXPECT_EQ(message.rfind("fuzzed.yaml:7:2: a second YAML document starts here", 0), 0u) << message;
}

// ---------------------------------------------------------------- config files

TEST(ReliabilityConfig, ASecondYamlDocumentIsAnError) {
  std::string message =
      error_of<ConfigError>([] { parse_run_config("seed: 1\n---\nseed: 2\ntrainer: {epochs: 9}\n", "two.yaml"); });
  EXPECT_EQ(message.rfind("two.yaml:2:1: a second YAML document starts here; a run config is a single document", 0), 0u)
      << message;
  message = error_of<ConfigError>([] { parse_run_config("---\nseed: 1\n...\n---\nseed: 2\n", "two.yaml"); });
  EXPECT_EQ(message.rfind("two.yaml:4:1: a second YAML document", 0), 0u) << message;
  // One document, with its optional markers, is fine.
  EXPECT_EQ(parse_run_config("---\nseed: 3\n...\n", "one.yaml").seed, 3u);

  const fs::path dir = testing::scratch_dir("ReliabilityTwoDocs");
  write_bytes(dir / "two.yaml", "seed: 1\n---\nseed: 2\n");
  const auto [status, output] = run_command(demo(fmt::format("'{}' --check", (dir / "two.yaml").string())));
  EXPECT_EQ(exit_status(status), 1) << output;
  EXPECT_CONTAINS(output, "two.yaml:2:1: a second YAML document");
}

TEST(ReliabilityConfig, AnUnboundedOrHugeFileStopsAtTheSizeLimit) {
  // Reading /dev/zero to its end would never return: the message shows it stopped.
  std::string message = error_of<ConfigError>([] { load_run_config("/dev/zero"); });
  EXPECT_EQ(message, "/dev/zero: cannot read the run config: it is larger than 16 MiB, the limit for a run config "
                     "(is it the right file?)");

  const fs::path dir = testing::scratch_dir("ReliabilityHuge");
  const fs::path huge = dir / "huge.yaml";
  write_bytes(huge, "seed: 1\n" + std::string(kMaxConfigBytes, '#'));
  message = error_of<ConfigError>([&] { load_run_config(huge.string()); });
  EXPECT_CONTAINS(message, huge.string() + ": cannot read the run config: it is larger than 16 MiB");
  message = error_of<ConfigError>([&] { parse_run_config("seed: 1\n" + std::string(kMaxConfigBytes, '#'), "text"); });
  EXPECT_CONTAINS(message, "text: cannot read the run config: it is larger than 16 MiB");

  const auto [status, output] = run_command("timeout 60 " + demo("/dev/zero --check"));
  EXPECT_EQ(exit_status(status), 1) << output;
  EXPECT_CONTAINS(output, "/dev/zero: cannot read the run config: it is larger than 16 MiB");
}

}  // namespace
}  // namespace sparsity::demo
