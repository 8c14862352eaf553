// Data-parallel throughput on one machine: the default config's MLP
// (784-128-64-10, Adam 1e-3, a step of 128 images, the first 54,000
// Fashion-MNIST training images) trained by one process with 2 threads and by
// 2 processes with 1 thread each (64 images per rank and step, gradients
// all-reduced over Gloo), in images per second; and the time of one
// all-reduce of the model's gradients (109,386 floats) between 2 processes.
//
//   build/bench/distributed_bench [--epochs 3]
//
// Each run's figure is its median epoch after the first. The 2-process runs
// are this program again (fork/exec through the shell, RANK/WORLD_SIZE/... set
// as trainer_demo --nproc sets them), once with the default gradient buckets
// (1 MiB: the whole model in one bucket, launched when the last gradient is
// there) and once with 64 KiB buckets (the later layers' all-reduce launched
// while the first layer's gradient is computed).
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sparsity/plugin.h>
#include <sparsity/sparsity.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kExamples = 54000;
constexpr int64_t kGlobalBatch = 128;

struct Mlp : sparsity::TrainingModule {
  torch::nn::Sequential net{torch::nn::Linear(784, 128), torch::nn::ReLU(), torch::nn::Linear(128, 64),
                            torch::nn::ReLU(), torch::nn::Linear(64, 10)};
  std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
  at::Tensor training_step(const sparsity::Batch& batch) override {
    return torch::nn::functional::cross_entropy(net->forward(batch.data), batch.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    return std::make_unique<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(1e-3));
  }
};

struct EpochTimer : sparsity::Callback {
  std::vector<double> seconds;
  Clock::time_point start;
  void on_train_epoch_start(sparsity::Trainer&, sparsity::TrainingModule&) override { start = Clock::now(); }
  void on_train_epoch_end(sparsity::Trainer&, sparsity::TrainingModule&) override {
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
};

double median_after_first(std::vector<double> v) {
  if (v.size() > 1) v.erase(v.begin());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

sparsity::DataSource load_data(int64_t batch_size) {
  const sparsity::MnistSplit split = sparsity::read_mnist_directory("/usr/share/datasets/fashion-mnist", true);
  const at::Tensor inputs = split.images.slice(0, 0, kExamples).reshape({kExamples, 784}).contiguous();
  return sparsity::DataSource(inputs, split.labels.slice(0, 0, kExamples), batch_size, /*shuffle=*/true, 0);
}

// One rank's run (RANK, WORLD_SIZE, ... in the environment): prints its median
// epoch, its wait for the gradient all-reduces per step, and the time of a
// lone all-reduce of the gradients' size.
int rank_main(int epochs, int64_t bucket_bytes) {
  auto options = sparsity::DistributedOptions::from_environment();
  if (!options) throw std::runtime_error("--rank needs RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT");
  options->bucket_bytes(bucket_bytes);
  // The Trainer's line "... ms per step waiting for the gradient all-reduces".
  sparsity::logger()->set_level(spdlog::level::info);
  const sparsity::DataSource data = load_data(kGlobalBatch / options->world_size());
  torch::manual_seed(0);
  Mlp module;
  auto timer = std::make_shared<EpochTimer>();
  sparsity::Trainer trainer(
      sparsity::TrainerOptions().max_epochs(epochs).progress(false).threads(1).distributed(*options), {timer});
  trainer.fit(module, data);
  const double epoch = median_after_first(timer->seconds);

  // The same all-reduce alone: as many floats as the model has parameters.
  auto group = sparsity::DistributedGroup::join(*options);
  int64_t numel = 0;
  for (const auto& p : module.net->parameters()) numel += p.numel();
  std::vector<at::Tensor> flat{at::ones({numel})};
  std::vector<double> times;
  for (int i = 0; i < 200; ++i) {
    const auto start = Clock::now();
    group->all_reduce_sum(flat);
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  fmt::print("rank {} epoch {:.4f} allreduce_ms {:.4f} floats {}\n", options->rank(), epoch, times[times.size() / 2],
             numel);
  return 0;
}

struct RankFigures {
  double epoch = 0.0;
  double allreduce_ms = 0.0;
  int64_t floats = 0;
  double wait_ms = 0.0;  // per step, in the Trainer, after the backward pass
};

RankFigures two_processes(int epochs, int64_t bucket_bytes, int port) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string out = fmt::format("/tmp/sparsity_distributed_bench_{}", getpid());
  std::string command;
  for (int rank = 0; rank < 2; ++rank) {
    command += fmt::format(
        "RANK={0} LOCAL_RANK={0} WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={1} '{2}' --rank "
        "--epochs {3} --bucket-bytes {4} > {5}.{0} 2>&1 & ",
        rank, port, self, epochs, bucket_bytes, out);
  }
  command += "wait";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("the ranks failed: " + command);
  RankFigures figures;
  std::ifstream in(out + ".0");
  std::string line, word;
  while (std::getline(in, line)) {
    if (const auto at = line.find(" ms per step waiting"); at != std::string::npos) {
      const auto begin = line.rfind(' ', at - 1) + 1;
      figures.wait_ms = std::stod(line.substr(begin, at - begin));
    }
    if (line.rfind("rank 0 ", 0) != 0) continue;
    std::istringstream fields(line);
    fields >> word >> word >> word >> figures.epoch >> word >> figures.allreduce_ms >> word >> figures.floats;
  }
  std::filesystem::remove(out + ".0");
  std::filesystem::remove(out + ".1");
  if (figures.epoch <= 0.0) throw std::runtime_error("rank 0 printed no figures");
  return figures;
}

double one_process(const sparsity::DataSource& data, int64_t threads, int epochs) {
  torch::manual_seed(0);
  Mlp module;
  auto timer = std::make_shared<EpochTimer>();
  sparsity::Trainer trainer(sparsity::TrainerOptions().max_epochs(epochs).progress(false).threads(threads), {timer});
  trainer.fit(module, data);
  return median_after_first(timer->seconds);
}

}  // namespace

int main(int argc, char** argv) {
  int epochs = 3;
  bool rank = false;
  int64_t bucket_bytes = int64_t{1} << 20;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--rank") rank = true;
    else if (flag == "--epochs" && i + 1 < argc) epochs = std::max(2, std::atoi(argv[++i]));
    else if (flag == "--bucket-bytes" && i + 1 < argc) bucket_bytes = std::atoll(argv[++i]);
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  sparsity::logger()->set_level(spdlog::level::warn);
  if (rank) return rank_main(epochs, bucket_bytes);

  const sparsity::DataSource data = load_data(kGlobalBatch);
  const double one_by_one = one_process(data, 1, epochs);
  const double one_by_two = one_process(data, 2, epochs);
  const RankFigures two = two_processes(epochs, int64_t{1} << 20, 29611);
  const RankFigures small_buckets = two_processes(epochs, int64_t{64} << 10, 29612);
  const double images = static_cast<double>(kExamples);
  const double steps = std::ceil(images / kGlobalBatch);
  fmt::print("MLP 784-128-64-10, Adam 1e-3, {} images per step, {} Fashion-MNIST images; median epoch of {} after the "
             "first; {} cores\n\n",
             kGlobalBatch, kExamples, epochs - 1, sparsity::available_cores());
  fmt::print("| run | epoch | images/s | vs 1 process x 2 threads |\n|---|---|---|---|\n");
  auto row = [&](const std::string& name, double seconds) {
    fmt::print("| {} | {:.3f} s | {:.0f} | {:.2f}x |\n", name, seconds, images / seconds, one_by_two / seconds);
  };
  row("1 process x 1 thread", one_by_one);
  row("1 process x 2 threads", one_by_two);
  row("2 processes x 1 thread, 1 MiB buckets (1 bucket)", two.epoch);
  row("2 processes x 1 thread, 64 KiB buckets", small_buckets.epoch);
  fmt::print("\nall-reduce of the gradients ({} floats, {:.0f} kB) between 2 processes, alone: {:.3f} ms (median of "
             "200); per epoch ({} steps): {:.3f} s\n",
             two.floats, two.floats * 4 / 1000.0, two.allreduce_ms, steps, two.allreduce_ms * steps / 1000.0);
  fmt::print("waited for after the backward pass, in training: {:.3f} ms per step (1 MiB buckets), {:.3f} ms per step "
             "(64 KiB buckets)\n",
             two.wait_ms, small_buckets.wait_ms);
  return 0;
}
