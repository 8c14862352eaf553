// Data-parallel training: the launcher's variables, DistributedSampler's
// sharding, joining and its failures, and 2-process runs (this binary started
// twice, as ranks, through the DISABLED_ child tests below) compared with one
// process.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../core/test_support.h"
#include "sparsity/plugin.h"

extern char** environ;

namespace sparsity {
namespace {

using testing::error_of;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// The launcher's variables.

/// Sets the variables it is given and unsets the other launcher variables,
/// restoring them all when it goes.
class Environment {
 public:
  explicit Environment(const std::map<std::string, std::string>& values) {
    for (const char* name :
         {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SPARSITY_DIST_TIMEOUT"}) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      unsetenv(name);
    }
    for (const auto& [name, value] : values) setenv(name.c_str(), value.c_str(), 1);
  }
  ~Environment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string environment_error(const std::map<std::string, std::string>& values) {
  const Environment environment(values);
  return error_of<std::invalid_argument>([] { DistributedOptions::from_environment(); });
}

TEST(DistributedEnvironment, NoneSetIsOneProcess) {
  const Environment environment({});
  EXPECT_FALSE(DistributedOptions::from_environment().has_value());
}

TEST(DistributedEnvironment, ReadsTorchrunsVariables) {
  const Environment environment({{"RANK", "3"},
                                 {"WORLD_SIZE", "4"},
                                 {"LOCAL_RANK", "1"},
                                 {"LOCAL_WORLD_SIZE", "2"},
                                 {"MASTER_ADDR", "10.1.2.3"},
                                 {"MASTER_PORT", "29511"},
                                 {"SPARSITY_DIST_TIMEOUT", "12.5"}});
  const std::optional<DistributedOptions> options = DistributedOptions::from_environment();
  ASSERT_TRUE(options.has_value());
  EXPECT_EQ(options->rank(), 3);
  EXPECT_EQ(options->world_size(), 4);
  EXPECT_EQ(options->local_rank(), 1);
  EXPECT_EQ(options->local_world_size(), 2);
  EXPECT_EQ(options->master_addr(), "10.1.2.3");
  EXPECT_EQ(options->master_port(), 29511);
  EXPECT_EQ(options->timeout_seconds(), 12.5);
}

TEST(DistributedEnvironment, MalformedValuesAreErrorsNamingThem) {
  const std::map<std::string, std::string> good{
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& name, const std::string& value) {
    auto values = good;
    values[name] = value;
    return environment_error(values);
  };
  EXPECT_CONTAINS(with("WORLD_SIZE", "abc"), "WORLD_SIZE=\"abc\" is not an integer");
  EXPECT_CONTAINS(with("WORLD_SIZE", "2x"), "WORLD_SIZE=\"2x\" is not an integer");
  EXPECT_CONTAINS(with("WORLD_SIZE", "99999999999999999999999"), "is not an integer");
  EXPECT_CONTAINS(with("WORLD_SIZE", "0"), "WORLD_SIZE=0 is out of range [1, 65536]");
  EXPECT_CONTAINS(with("RANK", "2"), "RANK=2 is out of range [0, 1]");
  EXPECT_CONTAINS(with("RANK", "-1"), "RANK=-1 is out of range [0, 1]");
  EXPECT_CONTAINS(with("MASTER_PORT", "70000"), "MASTER_PORT=70000 is out of range [1, 65535]");
  EXPECT_CONTAINS(with("MASTER_PORT", "http"), "MASTER_PORT=\"http\" is not an integer");
  EXPECT_CONTAINS(with("MASTER_ADDR", ""), "MASTER_ADDR is set but empty");
  EXPECT_CONTAINS(with("LOCAL_RANK", "5"), "LOCAL_RANK=5 is out of range [0, 1]");
  EXPECT_CONTAINS(with("SPARSITY_DIST_TIMEOUT", "-3"), "SPARSITY_DIST_TIMEOUT=\"-3\" is not a number of seconds");
  EXPECT_CONTAINS(environment_error({{"RANK", "0"}}), "RANK is set but WORLD_SIZE is not");
  EXPECT_CONTAINS(environment_error({{"WORLD_SIZE", "2"}}), "WORLD_SIZE is set but RANK is not");
  EXPECT_CONTAINS(environment_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}),
                  "MASTER_ADDR is not set");
  EXPECT_CONTAINS(environment_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}),
                  "MASTER_PORT is not set");
}

TEST(DistributedEnvironment, TrainerFitRejectsThemBeforeTraining) {
  const Environment environment({{"RANK", "0"}, {"WORLD_SIZE", "abc"}});
  torch::manual_seed(0);
  struct Tiny : TrainingModule {
    torch::nn::Linear net{2, 2};
    std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
    at::Tensor training_step(const Batch& b) override {
      return torch::nn::functional::cross_entropy(net->forward(b.data), b.target);
    }
    std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
      return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.1));
    }
  } module;
  const DataSource data(torch::zeros({4, 2}), torch::zeros({4}, torch::kLong), 2);
  Trainer trainer(TrainerOptions().progress(false));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { trainer.fit(module, data); }),
                  "Trainer::fit: distributed: WORLD_SIZE=\"abc\" is not an integer");
}

TEST(DistributedOptionsCheck, OutOfRangeValuesAreNamed) {
  auto error = [](const DistributedOptions& options) { return error_of<std::invalid_argument>([&] { options.check(); }); };
  EXPECT_CONTAINS(error(DistributedOptions().world_size(2).rank(2)), "rank 2 is out of range [0, 2)");
  EXPECT_CONTAINS(error(DistributedOptions().master_port(65536)), "master_port 65536 is out of range");
  EXPECT_CONTAINS(error(DistributedOptions().world_size(2).master_port(0)), "master_port 0");
  EXPECT_CONTAINS(error(DistributedOptions().timeout_seconds(0)), "timeout_seconds 0 is out of range");
  EXPECT_CONTAINS(error(DistributedOptions().backend("mpi")), "backend \"mpi\"");
  EXPECT_CONTAINS(error(DistributedOptions().bucket_bytes(10)), "bucket_bytes 10 is out of range");
}

// ---------------------------------------------------------------------------
// Sharding: torch.utils.data.DistributedSampler's, computed by hand.

std::vector<int64_t> shard_order(int64_t n, int64_t rank, int64_t world, bool pad = true) {
  const DataSource data(torch::arange(n).unsqueeze(1), torch::arange(n), 2, /*shuffle=*/false);
  return data.shard(rank, world, pad).order(0);
}

TEST(DataSourceShard, IsDistributedSamplersShare) {
  using V = std::vector<int64_t>;
  // DistributedSampler(range(5), num_replicas=2, shuffle=False): [0, 2, 4] and [1, 3, 0].
  EXPECT_EQ(shard_order(5, 0, 2), (V{0, 2, 4}));
  EXPECT_EQ(shard_order(5, 1, 2), (V{1, 3, 0}));
  // 5 over 3: padded to [0, 1, 2, 3, 4, 0].
  EXPECT_EQ(shard_order(5, 0, 3), (V{0, 3}));
  EXPECT_EQ(shard_order(5, 1, 3), (V{1, 4}));
  EXPECT_EQ(shard_order(5, 2, 3), (V{2, 0}));
  // Fewer examples than ranks: the start repeated, [0, 1, 0, 1, 0].
  EXPECT_EQ(shard_order(2, 2, 5), (V{0}));
  EXPECT_EQ(shard_order(2, 3, 5), (V{1}));
  // Without padding (evaluation): 3 and 2 examples.
  EXPECT_EQ(shard_order(5, 0, 2, false), (V{0, 2, 4}));
  EXPECT_EQ(shard_order(5, 1, 2, false), (V{1, 3}));
}

TEST(DataSourceShard, ShuffledSharesSplitOnePermutationPerEpoch) {
  const int64_t n = 11;
  const DataSource data(torch::arange(n).unsqueeze(1), torch::arange(n), 2, /*shuffle=*/true, /*seed=*/7);
  for (int64_t epoch : {0, 1, 5}) {
    std::vector<int64_t> full = data.order(epoch);
    full.push_back(full[0]);  // padded to 12
    for (int64_t rank = 0; rank < 3; ++rank) {
      const DataSource shard = data.shard(rank, 3);
      EXPECT_EQ(shard.shard_size(), 4);
      EXPECT_EQ(shard.num_batches(), 2);
      std::vector<int64_t> expected;
      for (size_t i = static_cast<size_t>(rank); i < full.size(); i += 3) expected.push_back(full[i]);
      const std::vector<int64_t> order = shard.order(epoch);
      EXPECT_EQ(order, expected) << "epoch " << epoch << ", rank " << rank;
      // The batches are the rows of that order.
      const Batch second = shard.batch(order, 1);
      EXPECT_EQ(second.target[0].item<int64_t>(), order[2]);
      EXPECT_EQ(second.data[1][0].item<int64_t>(), order[3]);
    }
  }
  EXPECT_NE(data.order(0), data.order(1));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { data.shard(3, 3); }), "rank 3 is out of range [0, 3)");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { data.shard(0, 2).shard(0, 2); }), "already a shard");
}

// ---------------------------------------------------------------------------
// Joining, and what fails it.

std::string fresh_store_path(const std::string& name) { return (testing::scratch_dir(name) / "store").string(); }

TEST(DistributedGroupJoin, OneRankCollectives) {
  auto group = DistributedGroup::join(
      DistributedOptions().store_path(fresh_store_path("dist_one_rank")).timeout_seconds(10));
  EXPECT_EQ(group->rank(), 0);
  EXPECT_EQ(group->world_size(), 1);
  EXPECT_EQ(group->all_reduce_sum({1.5, -2.0}), (std::vector<double>{1.5, -2.0}));
  std::vector<at::Tensor> tensors{torch::arange(4, torch::kFloat)};
  group->broadcast(tensors);
  EXPECT_TRUE(tensors[0].equal(torch::arange(4, torch::kFloat)));
  group->check_identical("the mask", {"a"}, {torch::ones({2, 2})});
  EXPECT_NE(tensor_checksum(torch::ones({2, 2})), tensor_checksum(torch::ones({4})));
  EXPECT_NE(tensor_checksum(torch::ones({4})), tensor_checksum(torch::tensor({1.f, 1.f, 0.f, 1.f})));
}

TEST(DistributedGroupJoin, ARankThatNeverJoinsIsAnErrorWithinTheTimeout) {
  const auto started = std::chrono::steady_clock::now();
  const std::string error = error_of<std::runtime_error>([] {
    DistributedGroup::join(
        DistributedOptions().world_size(2).store_path(fresh_store_path("dist_never_joins")).timeout_seconds(1));
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_CONTAINS(error, "rank 0 of 2: rank 1 did not join within 1 s");
  EXPECT_LT(seconds, 10.0);
}

TEST(DistributedGroupJoin, NoRankZeroAtThePortIsAnErrorNamingIt) {
  // Port 1: nothing listens there.
  const auto started = std::chrono::steady_clock::now();
  const std::string error = error_of<std::runtime_error>([] {
    DistributedGroup::join(DistributedOptions().rank(1).world_size(2).master_port(1).timeout_seconds(1));
  });
  EXPECT_CONTAINS(error, "rank 1 could not reach rank 0's store at MASTER_ADDR=127.0.0.1 MASTER_PORT=1 within 1 s");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 15.0);
}

// ---------------------------------------------------------------------------
// Two processes: this binary again, as ranks, running the DISABLED_ child
// tests below.

/// Two blobs in 2-D, from their own generator.
std::pair<at::Tensor, at::Tensor> blobs(int64_t n) {
  at::Generator generator = at::detail::createCPUGenerator(11);
  const at::Tensor labels = torch::arange(n, torch::kLong).remainder(2);
  const at::Tensor centers = labels.to(torch::kFloat).mul(3.0).sub(1.5).unsqueeze(1).expand({n, 2});
  return {centers + at::randn({n, 2}, generator, torch::kFloat), labels};
}

class Mlp : public TrainingModule {
 public:
  Mlp() : net(torch::nn::Linear(2, 16), torch::nn::ReLU(), torch::nn::Linear(16, 2)) {}
  std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
  at::Tensor training_step(const Batch& b) override {
    return torch::nn::functional::cross_entropy(net->forward(b.data), b.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  }
  std::optional<ValidationOutput> validation_step(const Batch& b) override {
    const at::Tensor logits = net->forward(b.data);
    return ValidationOutput{torch::nn::functional::cross_entropy(logits, b.target),
                            logits.argmax(1).eq(b.target).sum().item<int64_t>()};
  }
  torch::nn::Sequential net;
};

/// Exits the process at a global step, as a crashed rank would.
class ExitAtStep : public Callback {
 public:
  explicit ExitAtStep(int64_t step) : step_(step) {}
  void on_train_batch_end(Trainer& trainer, TrainingModule&) override {
    if (trainer.global_step() == step_) std::_Exit(7);
  }

 private:
  int64_t step_;
};

constexpr int64_t kExamples = 256;
constexpr int64_t kGlobalBatch = 32;
constexpr int64_t kEpochs = 3;

/// Trains the test's MLP with a training-aware pruning callback, on
/// `world_size` ranks (a batch of kGlobalBatch / world_size each); returns the
/// final parameters then the masks, and the last validation accuracy.
std::pair<std::vector<at::Tensor>, double> train_mlp(std::optional<DistributedOptions> distributed,
                                                     std::shared_ptr<Callback> extra = nullptr,
                                                     const std::string& output_dir = "",
                                                     const std::string& resume_from = "", int64_t epochs = kEpochs) {
  const int64_t world = distributed ? distributed->world_size() : 1;
  torch::manual_seed(3);
  Mlp module;
  const auto [inputs, targets] = blobs(kExamples);
  const DataSource train(inputs, targets, kGlobalBatch / world, /*shuffle=*/true, /*seed=*/5);
  const auto [val_inputs, val_targets] = blobs(101);
  const DataSource validation(val_inputs, val_targets, 16, /*shuffle=*/false);
  auto pruning = std::make_shared<TrainingAwareDataSparsity>(
      "DataNormSparsifier", Config{{"sparsity_level", 0.5}, {"sparse_block_shape", std::vector<int64_t>{1, 1}}, {"zeros_per_block", int64_t{1}}},
      "CubicSLScheduler", Config{{"init_sl", 0.0}, {"init_t", int64_t{0}}, {"delta_t", int64_t{1}}, {"total_t", int64_t{2}}},
      TrainingAwareDataSparsityOptions().apply_to_model(true));
  TrainerOptions options;
  options.max_epochs(epochs).progress(false).threads(1).seed(9).output_dir(output_dir).resume_from(resume_from);
  if (distributed) options.distributed(distributed);
  Trainer trainer(options);
  trainer.add_callback(pruning);
  if (extra) trainer.add_callback(extra);
  trainer.fit(module, train, &validation);
  std::vector<at::Tensor> result;
  for (const auto& p : module.net->parameters()) result.push_back(p.detach().clone());
  BaseDataSparsifier* sparsifier = pruning->data_sparsifier();
  for (const auto& name : sparsifier->names()) result.push_back(sparsifier->get_mask(name).clone());
  return {result, trainer.last_metrics().at("val_acc")};
}

/// The child's options, from the variables the parent sets.
std::optional<DistributedOptions> child_options() {
  const char* rank = std::getenv("SPARSITY_TEST_RANK");
  const char* store = std::getenv("SPARSITY_TEST_STORE");
  if (rank == nullptr || store == nullptr) return std::nullopt;
  return DistributedOptions().rank(std::atoi(rank)).world_size(2).store_path(store).timeout_seconds(20);
}

TEST(DistributedChild, DISABLED_Train) {
  const auto options = child_options();
  if (!options) GTEST_SKIP() << "run by DistributedTraining tests only";
  const std::string store = std::getenv("SPARSITY_TEST_STORE");
  const auto [tensors, accuracy] = train_mlp(options, nullptr, fmt::format("{}.out{}", store, options->rank()));
  torch::save(tensors, fmt::format("{}.rank{}.pt", store, options->rank()));
  std::cout << fmt::format("val_acc {}\n", accuracy);
  // Every rank resumes from rank 0's checkpoint (written once all are here) for one more epoch.
  DistributedGroup::join(*options)->barrier();
  const auto resumed = train_mlp(options, nullptr, "", store + ".out0/checkpoint.pt", kEpochs + 1).first;
  torch::save(resumed, fmt::format("{}.resumed{}.pt", store, options->rank()));
  // Masks that differ between the ranks: an error naming the parameter, on every rank.
  auto group = DistributedGroup::join(*options);
  const at::Tensor mine = options->rank() == 0 ? torch::ones({4, 4}) : torch::eye(4);
  const std::string error = error_of<std::runtime_error>(
      [&] { group->check_identical("the mask", {"0.bias", "0.weight"}, {torch::ones({2}), mine}); });
  std::cout << "check_identical: " << error << "\n";
}

TEST(DistributedChild, DISABLED_RankOneHasAnotherWorldSize) {
  auto options = child_options();
  if (!options) GTEST_SKIP() << "run by DistributedTraining tests only";
  if (options->rank() == 1) options->world_size(3);
  DistributedGroup::join(options->timeout_seconds(10));
}

TEST(DistributedChild, DISABLED_RankOneDies) {
  const auto options = child_options();
  if (!options) GTEST_SKIP() << "run by DistributedTraining tests only";
  // Rank 1 exits at step 3; rank 0 must fail at its next all-reduce.
  train_mlp(options, options->rank() == 1 ? std::make_shared<ExitAtStep>(3) : nullptr);
}

struct Child {
  pid_t pid = -1;
  fs::path log;
};

/// Starts this test binary as rank `rank`, running the child test `test`.
Child start_rank(const std::string& test, int rank, const std::string& store, const fs::path& dir) {
  Child child;
  child.log = dir / fmt::format("rank{}.log", rank);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(fmt::format("SPARSITY_TEST_RANK={}", rank));
  env_strings.push_back("SPARSITY_TEST_STORE=" + store);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args{"/proc/self/exe", "--gtest_also_run_disabled_tests", "--gtest_filter=DistributedChild." + test};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, child.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int error = posix_spawn(&child.pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) ADD_FAILURE() << "posix_spawn: " << std::strerror(error);
  return child;
}

/// Waits for the children, at most `seconds`; kills those still running then
/// (a test failure). Returns their exit codes (-1: killed by a signal).
std::vector<int> wait_children(std::vector<Child>& children, double seconds) {
  std::vector<int> codes(children.size(), -2);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  size_t left = children.size();
  while (left > 0) {
    for (size_t i = 0; i < children.size(); ++i) {
      if (codes[i] != -2 || children[i].pid <= 0) continue;
      int status = 0;
      if (waitpid(children[i].pid, &status, WNOHANG) == children[i].pid) {
        codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        --left;
      }
    }
    if (left > 0 && std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < children.size(); ++i) {
        if (codes[i] != -2 || children[i].pid <= 0) continue;
        kill(children[i].pid, SIGKILL);
        waitpid(children[i].pid, nullptr, 0);
        ADD_FAILURE() << "rank " << i << " still ran after " << seconds << " s: killed\n" << testing::read_bytes(children[i].log);
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return codes;
}

TEST(DistributedTraining, TwoProcessesEqualOneWithTheSameGlobalBatch) {
  const fs::path dir = testing::scratch_dir("dist_two_processes");
  const std::string store = (dir / "store").string();
  std::vector<Child> children{start_rank("DISABLED_Train", 0, store, dir), start_rank("DISABLED_Train", 1, store, dir)};
  const std::vector<int> codes = wait_children(children, 120);
  for (size_t i = 0; i < children.size(); ++i)
    ASSERT_EQ(codes[i], 0) << "rank " << i << ":\n" << testing::read_bytes(children[i].log);

  std::vector<at::Tensor> rank0, rank1;
  torch::load(rank0, store + ".rank0.pt");
  torch::load(rank1, store + ".rank1.pt");
  const auto [single, single_accuracy] = train_mlp(std::nullopt);
  ASSERT_EQ(rank0.size(), single.size());
  ASSERT_EQ(rank1.size(), single.size());
  const size_t parameters = 4;  // two weights, two biases; then the masks
  for (size_t i = 0; i < single.size(); ++i) {
    // The ranks hold the same weights and masks, bit for bit.
    EXPECT_TRUE(rank0[i].equal(rank1[i])) << "tensor " << i << " differs between the ranks";
    if (i < parameters) {
      EXPECT_TRUE(torch::allclose(rank0[i], single[i], /*rtol=*/1e-4, /*atol=*/1e-5))
          << "parameter " << i << ": max difference " << (rank0[i] - single[i]).abs().max().item<double>();
    } else {
      EXPECT_TRUE(rank0[i].equal(single[i])) << "mask " << i - parameters << " differs from one process's";
      EXPECT_GT(rank0[i].numel() - rank0[i].count_nonzero().item<int64_t>(), 0) << "mask " << i << " prunes nothing";
    }
  }
  // Rank 0 alone writes; every rank resumed from its checkpoint, to the same weights.
  EXPECT_TRUE(fs::exists(store + ".out0/metrics.csv"));
  EXPECT_TRUE(fs::exists(store + ".out0/checkpoint.pt"));
  EXPECT_FALSE(fs::exists(store + ".out1")) << "rank 1 wrote files";
  std::vector<at::Tensor> resumed0, resumed1;
  torch::load(resumed0, store + ".resumed0.pt");
  torch::load(resumed1, store + ".resumed1.pt");
  ASSERT_EQ(resumed0.size(), rank0.size());
  for (size_t i = 0; i < resumed0.size(); ++i) EXPECT_TRUE(resumed0[i].equal(resumed1[i])) << "resumed tensor " << i;
  EXPECT_FALSE(resumed0[0].equal(rank0[0])) << "the resumed epoch did not train";
  EXPECT_CONTAINS(testing::read_bytes(children[1].log), "resuming from");
  for (const auto& child : children)
    EXPECT_CONTAINS(testing::read_bytes(child.log), "check_identical: distributed: the mask of '0.weight' differs between ranks");
  // Validation is reduced over the ranks: the same accuracy as one process.
  EXPECT_CONTAINS(testing::read_bytes(children[0].log), fmt::format("val_acc {}", single_accuracy));
  EXPECT_CONTAINS(testing::read_bytes(children[1].log), fmt::format("val_acc {}", single_accuracy));
}

TEST(DistributedTraining, AnotherWorldSizeIsAnErrorOnEveryRank) {
  const fs::path dir = testing::scratch_dir("dist_world_sizes");
  const std::string store = (dir / "store").string();
  const auto started = std::chrono::steady_clock::now();
  std::vector<Child> children{start_rank("DISABLED_RankOneHasAnotherWorldSize", 0, store, dir),
                              start_rank("DISABLED_RankOneHasAnotherWorldSize", 1, store, dir)};
  const std::vector<int> codes = wait_children(children, 60);
  EXPECT_NE(codes[0], 0);
  EXPECT_NE(codes[1], 0);
  EXPECT_CONTAINS(testing::read_bytes(children[0].log),
                  "distributed: WORLD_SIZE differs between ranks: 2 on rank 0, 3 on rank 1");
  EXPECT_CONTAINS(testing::read_bytes(children[1].log),
                  "distributed: WORLD_SIZE differs between ranks: 3 on rank 1, 2 on rank 0");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 30.0);
}

TEST(DistributedTraining, ARankThatDiesFailsTheOthersWithAClearMessage) {
  const fs::path dir = testing::scratch_dir("dist_rank_dies");
  const std::string store = (dir / "store").string();
  const auto started = std::chrono::steady_clock::now();
  std::vector<Child> children{start_rank("DISABLED_RankOneDies", 0, store, dir),
                              start_rank("DISABLED_RankOneDies", 1, store, dir)};
  const std::vector<int> codes = wait_children(children, 60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(codes[1], 7);
  EXPECT_NE(codes[0], 0);
  const std::string log = testing::read_bytes(children[0].log);
  EXPECT_CONTAINS(log, "distributed: rank 0 of 2:");
  EXPECT_CONTAINS(log, "another rank died or did not answer within the timeout (20 s)");
  EXPECT_LT(seconds, 40.0);
}

}  // namespace
}  // namespace sparsity
