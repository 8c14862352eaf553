// One training epoch of the same MLP (784-128-64-10, batch 128, Adam 1e-3, the
// first 54,000 Fashion-MNIST training images) by our Trainer and by the loop a
// Python PyTorch user writes (bench/epoch_reference.py, Debian's python3-torch,
// the same BLAS), side by side at each thread count, with their ratio.
//
//   build/bench/epoch_bench [--threads 1,2] [--epochs 3] [--python /usr/bin/python3]
//
// Each side runs `epochs` epochs; the figure is the median epoch after the
// first (warm-up). The Python side runs in a child process, between our runs.
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

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

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

// Times each epoch between the Trainer's epoch hooks.
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

double ours(const sparsity::DataSource& data, int64_t threads, int epochs) {
  torch::manual_seed(0);
  Mlp module;
  auto timer = std::make_shared<EpochTimer>();
  sparsity::Trainer trainer(sparsity::TrainerOptions().max_epochs(epochs).progress(false).threads(threads), {timer});
  trainer.fit(module, data);
  return median_after_first(timer->seconds);
}

// The epoch times bench/epoch_reference.py prints as JSON.
double python(const std::string& interpreter, int64_t threads, int epochs, int64_t examples, std::string* blas) {
  const std::string command = fmt::format("{} {}/bench/epoch_reference.py --threads {} --epochs {} --examples {}",
                                          interpreter, SPARSITY_SOURCE_DIR, threads, epochs, examples);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run: " + command);
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  if (pclose(pipe) != 0) throw std::runtime_error(fmt::format("'{}' failed:\n{}", command, out));
  const auto list = out.find("\"epoch_seconds\": [");
  const auto blas_at = out.find("\"blas\": \"");
  if (list == std::string::npos) throw std::runtime_error("unexpected output of " + command + ": " + out);
  std::vector<double> seconds;
  std::istringstream values(out.substr(list + 18, out.find(']', list) - list - 18));
  for (std::string item; std::getline(values, item, ',');) seconds.push_back(std::stod(item));
  if (blas_at != std::string::npos) *blas = out.substr(blas_at + 9, out.find('"', blas_at + 9) - blas_at - 9);
  return median_after_first(seconds);
}

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> thread_counts = {1, 2};
  int epochs = 3;
  std::string interpreter = "/usr/bin/python3";
  const int64_t examples = 54000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") thread_counts = parse_list(argv[i + 1]);
    else if (flag == "--epochs") epochs = std::max(2, std::atoi(argv[i + 1]));
    else if (flag == "--python") interpreter = argv[i + 1];
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  sparsity::logger()->set_level(spdlog::level::warn);
  const sparsity::MnistSplit split = sparsity::read_mnist_directory("/usr/share/datasets/fashion-mnist", true);
  const at::Tensor inputs = split.images.slice(0, 0, examples).reshape({examples, 784}).contiguous();
  const sparsity::DataSource data(inputs, split.labels.slice(0, 0, examples), 128, /*shuffle=*/true, 0);

  fmt::print("MLP 784-128-64-10, Adam 1e-3, batch 128, {} Fashion-MNIST images ({} batches); median epoch of {} after "
             "the first\nours:   {}\n",
             examples, data.num_batches(), epochs - 1, sparsity::loaded_blas().describe());
  std::string python_blas;
  std::vector<std::string> rows;
  for (const int64_t threads : thread_counts) {
    const double our_seconds = ours(data, threads, epochs);
    const double their_seconds = python(interpreter, threads, epochs, examples, &python_blas);
    rows.push_back(fmt::format("| {} | {:.3f} s | {:.3f} s | {:.2f}x |", threads, our_seconds, their_seconds,
                               our_seconds / their_seconds));
  }
  fmt::print("python: {}\n\n| threads | Trainer epoch | Python epoch | ours / Python |\n|---|---|---|---|\n",
             python_blas);
  for (const auto& row : rows) fmt::print("{}\n", row);
  return 0;
}
