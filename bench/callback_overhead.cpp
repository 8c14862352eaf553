// Cost of TrainingAwareDataSparsity per epoch (deep copy + attach + sparsifier
// and scheduler steps + state dump) against the epoch's training time, on an
// MLP of about 270k parameters (784-300-100-10) with batch 64. Target: <= 5%.
//
//   build/bench/callback_overhead [epochs=3] [examples=60000]
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sparsity/plugin.h>
#include <sparsity/sparsity.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Mlp : sparsity::TrainingModule {
  torch::nn::Sequential net{torch::nn::Linear(784, 300), torch::nn::ReLU(), torch::nn::Linear(300, 100),
                            torch::nn::ReLU(), torch::nn::Linear(100, 10)};
  std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
  at::Tensor training_step(const sparsity::Batch& batch) override {
    return torch::nn::functional::cross_entropy(net->forward(batch.data), batch.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  }
};

// Seconds per epoch of `fit` over `epochs` epochs, with or without the callback.
double epoch_seconds(const sparsity::DataSource& data, int epochs, std::shared_ptr<sparsity::Callback> callback) {
  torch::manual_seed(0);
  Mlp module;
  std::vector<std::shared_ptr<sparsity::Callback>> callbacks;
  if (callback) callbacks.push_back(callback);
  sparsity::Trainer trainer(sparsity::TrainerOptions().max_epochs(epochs).progress(false), callbacks);
  const auto start = Clock::now();
  trainer.fit(module, data);
  return seconds_since(start) / epochs;
}

std::shared_ptr<sparsity::TrainingAwareDataSparsity> make_callback(bool apply_to_model) {
  return std::make_shared<sparsity::TrainingAwareDataSparsity>(
      "DataNormSparsifier", sparsity::Config{{"sparsity_level", 0.8}, {"sparse_block_shape", {1, 4}}},
      "CubicSLScheduler", sparsity::Config{{"delta_t", 1}, {"total_t", 3}},
      sparsity::TrainingAwareDataSparsityOptions().apply_to_model(apply_to_model));
}

}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 3;
  const int64_t examples = argc > 2 ? std::atoll(argv[2]) : 60000;
  sparsity::logger()->set_level(spdlog::level::warn);
  torch::manual_seed(1);
  sparsity::DataSource data(torch::randn({examples, 784}), torch::randint(0, 10, {examples}), 64);

  Mlp probe;
  int64_t params = 0;
  for (const auto& p : probe.net->parameters()) params += p.numel();
  fmt::print("MLP 784-300-100-10: {} parameters; {} examples, batch 64 ({} batches), {} threads\n", params, examples,
             data.num_batches(), torch::get_num_threads());

  // The update alone, hook by hook, as the Trainer calls it at an epoch end.
  {
    auto callback = make_callback(false);
    sparsity::Trainer trainer;
    callback->on_train_start(trainer, probe);
    constexpr int kUpdates = 20;
    const auto start = Clock::now();
    for (int i = 0; i < kUpdates; ++i) {
      callback->on_train_epoch_start(trainer, probe);
      callback->on_train_epoch_end(trainer, probe);
    }
    fmt::print("callback update (epoch start + end hooks): {:.2f} ms\n", 1e3 * seconds_since(start) / kUpdates);
  }

  const double plain = epoch_seconds(data, epochs, nullptr);
  const double aware = epoch_seconds(data, epochs, make_callback(false));
  const double applied = epoch_seconds(data, epochs, make_callback(true));
  fmt::print("epoch, no callback:                      {:.3f} s\n", plain);
  fmt::print("epoch, TrainingAwareDataSparsity:        {:.3f} s  ({:+.1f}%)\n", aware, 100.0 * (aware / plain - 1));
  fmt::print("epoch, ... with apply_to_model:          {:.3f} s  ({:+.1f}%)\n", applied,
             100.0 * (applied / plain - 1));
  return 0;
}
