// What removing pruned units buys: an MLP with half its hidden units pruned by
// UnitNormSparsifier, as trained (masked, dense Linear layers) and after
// `shrink` (a smaller dense Sequential), side by side in one run: parameters,
// torch::save bytes, and forward time per batch at 1 and 2 threads. Prints a
// Markdown table (bench/README.md, "Structured pruning: shrink").
//
//   build/bench/shrink_bench [threads=1,2] [min_ms per round=5]
#include <ATen/Parallel.h>
#include <sparsity/data_sparsifier/unit_norm_sparsifier.h>
#include <sparsity/structured/shrink.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double min_round_ms = 5.0;

double us_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Microseconds per call of `before` and `after`: the best of 9 rounds each,
// alternating, so that the load of a shared machine falls on both alike.
std::pair<double, double> best_of_alternating_rounds(const std::function<void()>& before,
                                                     const std::function<void()>& after) {
  const auto calls_per_round = [](const std::function<void()>& f) {
    f();  // warm-up: first-touch allocations, BLAS thread start
    const auto start = Clock::now();
    f();
    return std::max(1, static_cast<int>(min_round_ms * 1000.0 / std::max(us_since(start), 0.1)));
  };
  const int n_before = calls_per_round(before), n_after = calls_per_round(after);
  std::pair<double, double> best{1e300, 1e300};
  for (int round = 0; round < 9; ++round) {
    auto start = Clock::now();
    for (int i = 0; i < n_before; ++i) before();
    best.first = std::min(best.first, us_since(start) / n_before);
    start = Clock::now();
    for (int i = 0; i < n_after; ++i) after();
    best.second = std::min(best.second, us_since(start) / n_after);
  }
  return best;
}

int64_t saved_bytes(const torch::nn::Sequential& model) {
  std::ostringstream out;
  torch::save(model, out);
  return static_cast<int64_t>(out.str().size());
}

torch::nn::Sequential mlp(const std::vector<int64_t>& widths) {
  torch::nn::Sequential model;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    model->push_back(torch::nn::Linear(widths[i], widths[i + 1]));
    if (i + 2 < widths.size()) model->push_back(torch::nn::ReLU());
  }
  return model;
}

// Prunes `level` of the units of every hidden Linear (weights and biases) and squashes.
void prune_hidden_units(const torch::nn::Sequential& model, double level) {
  sparsity::UnitNormSparsifier sparsifier(sparsity::UnitNormSparsifierOptions().sparsity_level(level));
  const auto children = model->named_children();
  std::vector<std::string> linears;
  for (const auto& child : children) {
    if (child.value()->as<torch::nn::LinearImpl>()) linears.push_back(child.key());
  }
  linears.pop_back();  // the output layer keeps its classes
  for (const auto& name : linears) {
    auto* linear = children[name]->as<torch::nn::LinearImpl>();
    sparsifier.add_data(name + "_weight", linear->weight);
    sparsifier.add_data(name + "_bias", linear->bias);
  }
  sparsifier.step();
  sparsifier.squash_mask();
}

std::string widths_text(const std::vector<int64_t>& widths) {
  std::string text;
  for (int64_t w : widths) text += (text.empty() ? "" : "-") + std::to_string(w);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts{1, 2};
  if (argc > 1) {
    thread_counts.clear();
    std::stringstream list(argv[1]);
    for (std::string item; std::getline(list, item, ',');) thread_counts.push_back(std::stoi(item));
  }
  if (argc > 2) min_round_ms = std::atof(argv[2]);
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;

  std::printf("| model | params | shrunk params | torch::save bytes | shrunk bytes | threads | batch | masked us | "
              "shrunk us | speedup |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const std::vector<int64_t>& widths : {std::vector<int64_t>{784, 128, 64, 10},
                                             std::vector<int64_t>{784, 1024, 1024, 10}}) {
    torch::nn::Sequential model = mlp(widths);
    prune_hidden_units(model, 0.5);
    model->eval();
    sparsity::ShrinkResult shrunk = sparsity::shrink(model);
    const int64_t bytes = saved_bytes(model), shrunk_bytes = saved_bytes(shrunk.model);
    const at::Tensor check = torch::randn({8, widths.front()});
    if (!torch::allclose(model->forward(check), shrunk.model->forward(check), 1e-5, 1e-5)) {
      std::fprintf(stderr, "shrunk model's outputs differ\n");
      return 1;
    }
    for (int threads : thread_counts) {
      at::set_num_threads(threads);
      for (int64_t batch : {1, 64, 256}) {
        const at::Tensor x = torch::randn({batch, widths.front()});
        const auto [masked_us, shrunk_us] = best_of_alternating_rounds([&] { model->forward(x); },
                                                                       [&] { shrunk.model->forward(x); });
        std::printf("| %s | %lld | %lld | %lld | %lld | %d | %lld | %.1f | %.1f | %.2fx |\n",
                    widths_text(widths).c_str(), static_cast<long long>(shrunk.report.parameters_before),
                    static_cast<long long>(shrunk.report.parameters_after), static_cast<long long>(bytes),
                    static_cast<long long>(shrunk_bytes), threads, static_cast<long long>(batch), masked_us,
                    shrunk_us, masked_us / shrunk_us);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
