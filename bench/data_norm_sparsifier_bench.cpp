// DataNormSparsifier::step() on large float tables: time per step, throughput,
// and the peak memory a step needs beyond the data and the mask; and
// (BM_LayerwiseStep, BM_GlobalStep) a layer-wise against a global step over
// all the weights of a model.
//
//   build/bench/data_norm_sparsifier_bench [--benchmark_filter=...]
//
// Threads: SPARSITY_BENCH_THREADS (default 2, as bench/reference_step.py).
// Counters:
//   data_MB        size of the data (float32)
//   extra_peak_MB  rise of the process's RSS high-water mark (VmHWM) during one
//                  step(), measured on the first step after add_data (data and
//                  mask already resident), after malloc_trim
//   items/s        data elements per second; bytes/s counts the data read and
//                  the mask written (5 bytes per element)
//   mem_pass_ms    the best time of one parallel pass that reads the data and
//                  writes a uint8 mask (mask = x != 0), the least any step can
//                  cost, run between the steps; x_mem_pass = best_step_ms /
//                  mem_pass_ms
// BM_AddData: add_data's extra peak (the new mask and the returned data *
// mask) as MB and as a multiple of the data (extra_peak_x_data).
// See bench/README.md for the figures and the comparison with the reference.

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sparsity/data_sparsifier/data_norm_sparsifier.h"
#include "sparsity/data_sparsifier/global_norm_sparsifier.h"

namespace {

// VmHWM of this process in KiB, or -1 when /proc is unavailable.
long read_vm_hwm_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      long kib = -1;
      fields >> kib;
      return kib;
    }
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0). False when not permitted.
bool reset_vm_hwm() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

// Runs one step and returns the memory it needed beyond what is resident
// (data, mask, LibTorch) in MB, or -1 when VmHWM cannot be reset or read.
double first_step_extra_peak_mb(sparsity::BaseDataSparsifier& sparsifier) {
  malloc_trim(0);
  if (!reset_vm_hwm()) {
    sparsifier.step();
    return -1.0;
  }
  const long before = read_vm_hwm_kib();
  sparsifier.step();
  const long after = read_vm_hwm_kib();
  return before >= 0 && after >= 0 ? static_cast<double>(after - before) / 1024.0 : -1.0;
}

// One step, its time recorded as the iteration's; returns it in ms.
double timed_step_ms(benchmark::State& state, sparsity::BaseDataSparsifier& sparsifier) {
  const auto start = std::chrono::steady_clock::now();
  sparsifier.step();
  const auto stop = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(stop - start).count();
  state.SetIterationTime(seconds);
  return 1000.0 * seconds;
}

void set_threads_once() {
  static const bool done = [] {
    int threads = 2;
    if (const char* env = std::getenv("SPARSITY_BENCH_THREADS")) threads = std::max(1, std::atoi(env));
    at::set_num_threads(threads);
    return true;
  }();
  (void)done;
}

// One read of the data and one write of a byte mask, in parallel as step(),
// in milliseconds.
// Restricted pointers, so that the loop vectorizes (a uint8_t store may alias
// anything): the baseline must be as fast as a pass can be.
void nonzero_bytes(const float* __restrict x, uint8_t* __restrict m, int64_t n) {
  for (int64_t i = 0; i < n; ++i) m[i] = x[i] != 0.0f;
}

double memory_pass_ms(const torch::Tensor& data, torch::Tensor& out) {
  const float* x = data.data_ptr<float>();
  uint8_t* m = out.data_ptr<uint8_t>();
  const auto start = std::chrono::steady_clock::now();
  at::parallel_for(0, data.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    nonzero_bytes(x + begin, m + begin, end - begin);
  });
  const auto stop = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(m);
  return std::chrono::duration<double, std::milli>(stop - start).count();
}

// Args: rows, cols, block height, block width, zeros per block, level in percent.
void BM_DataNormSparsifierStep(benchmark::State& state) {
  set_threads_once();
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const int64_t bh = state.range(2);
  const int64_t bw = state.range(3);
  const int64_t zeros = state.range(4);
  const double level = static_cast<double>(state.range(5)) / 100.0;

  torch::manual_seed(0);
  torch::Tensor data = torch::randn({rows, cols}, torch::kFloat);
  sparsity::DataNormSparsifier sparsifier(sparsity::DataNormSparsifierOptions()
                                              .sparsity_level(level)
                                              .sparse_block_shape({bh, bw})
                                              .zeros_per_block(zeros));
  sparsifier.add_data("table", data);  // the mask (all ones) now exists

  const double extra_peak_mb = first_step_extra_peak_mb(sparsifier);

  // The memory pass runs between steps, so that both see the same machine
  // (it is shared and noisy); the ratio is of the best times.
  torch::Tensor scratch = torch::ones({rows, cols}, torch::kByte);
  double best_step_ms = 1e30, best_pass_ms = 1e30;
  for (auto _ : state) {
    best_step_ms = std::min(best_step_ms, timed_step_ms(state, sparsifier));
    state.PauseTiming();
    best_pass_ms = std::min(best_pass_ms, memory_pass_ms(data, scratch));
    state.ResumeTiming();
  }

  const int64_t numel = rows * cols;
  const torch::Tensor mask = sparsifier.get_mask("table");
  state.SetItemsProcessed(state.iterations() * numel);
  state.SetBytesProcessed(state.iterations() * numel *
                          static_cast<int64_t>(sizeof(float) + sizeof(uint8_t)));
  state.counters["data_MB"] = static_cast<double>(numel * sizeof(float)) / (1024.0 * 1024.0);
  state.counters["extra_peak_MB"] = extra_peak_mb;
  state.counters["zeros_frac"] = 1.0 - mask.sum().item<double>() / static_cast<double>(numel);
  state.counters["threads"] = at::get_num_threads();
  state.counters["best_step_ms"] = best_step_ms;
  state.counters["mem_pass_ms"] = best_pass_ms;
  state.counters["x_mem_pass"] = best_step_ms / best_pass_ms;
}

// add_data on fresh data: the extra peak beyond the data (the mask it creates
// and the data * mask it returns). Args: rows, cols.
void BM_AddData(benchmark::State& state) {
  set_threads_once();
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  torch::manual_seed(0);
  torch::Tensor data = torch::randn({rows, cols}, torch::kFloat);
  double extra_peak_mb = -1.0;
  for (auto _ : state) {
    sparsity::DataNormSparsifier sparsifier(sparsity::DataNormSparsifierOptions().sparsity_level(0.5));
    malloc_trim(0);
    const bool measured = reset_vm_hwm();
    const long before = read_vm_hwm_kib();
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor masked = sparsifier.add_data("table", data);
    const auto stop = std::chrono::steady_clock::now();
    const long after = read_vm_hwm_kib();
    benchmark::DoNotOptimize(masked.data_ptr());
    if (measured && before >= 0 && after >= 0) extra_peak_mb = static_cast<double>(after - before) / 1024.0;
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  const double data_mb = static_cast<double>(rows * cols * sizeof(float)) / (1024.0 * 1024.0);
  state.counters["data_MB"] = data_mb;
  state.counters["extra_peak_MB"] = extra_peak_mb;
  state.counters["extra_peak_x_data"] = extra_peak_mb / data_mb;
}

// The weights of two models: 0, the demo's 784-128-64-10 MLP; 1, a larger
// stack of 20M weights (80 MB) in nine matrices of 10,000 to 4M elements.
std::vector<std::vector<int64_t>> model_shapes(int64_t model) {
  if (model == 0) return {{128, 784}, {64, 128}, {10, 64}};
  return {{4096, 1024}, {1024, 4096}, {2048, 2048}, {2048, 2048}, {1024, 1024},
          {1024, 1024}, {1024, 1024}, {1024, 1024}, {10, 1000}};
}

// One step of a layer-wise (DataNormSparsifier) or a global
// (GlobalNormSparsifier) sparsifier over every weight of a model, (1, 1)
// blocks, L1: the same data for both. Args: model, level in percent.
// GlobalNormSparsifier with these is torch.nn.utils.prune.global_unstructured
// (bench/global_reference.py times that on the same shapes).
template <class Sparsifier>
void BM_ModelStep(benchmark::State& state) {
  set_threads_once();
  const double level = static_cast<double>(state.range(1)) / 100.0;
  torch::manual_seed(0);
  Sparsifier sparsifier(sparsity::DataNormSparsifierOptions().sparsity_level(level).sparse_block_shape({1, 1}));
  std::vector<torch::Tensor> weights;
  int64_t numel = 0, largest = 0;
  for (const auto& shape : model_shapes(state.range(0))) {
    // Layers of different scales, as a trained model's are.
    weights.push_back(torch::randn(shape) / std::sqrt(static_cast<double>(shape[1])));
    sparsifier.add_data("w" + std::to_string(weights.size()), weights.back());
    numel += weights.back().numel();
    largest = std::max(largest, weights.back().numel());
  }
  const double extra_peak_mb = first_step_extra_peak_mb(sparsifier);
  double best_step_ms = 1e30;
  for (auto _ : state) best_step_ms = std::min(best_step_ms, timed_step_ms(state, sparsifier));
  int64_t zeros = 0;
  double largest_layer_sparsity = 0.0;
  for (const auto& name : sparsifier.names()) {
    const torch::Tensor mask = sparsifier.get_mask(name);
    const int64_t z = mask.numel() - mask.sum().template item<int64_t>();
    zeros += z;
    if (mask.numel() == largest) largest_layer_sparsity = static_cast<double>(z) / static_cast<double>(largest);
  }
  state.SetItemsProcessed(state.iterations() * numel);
  state.counters["data_MB"] = static_cast<double>(numel * sizeof(float)) / (1024.0 * 1024.0);
  state.counters["largest_MB"] = static_cast<double>(largest * sizeof(float)) / (1024.0 * 1024.0);
  state.counters["extra_peak_MB"] = extra_peak_mb;
  state.counters["zeros_frac"] = static_cast<double>(zeros) / static_cast<double>(numel);
  state.counters["largest_layer_zeros"] = largest_layer_sparsity;
  state.counters["threads"] = at::get_num_threads();
  state.counters["best_step_ms"] = best_step_ms;
}

void ModelCases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"model", "level%"})->Args({0, 90})->Args({1, 90});
  b->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
}

BENCHMARK_TEMPLATE(BM_ModelStep, sparsity::DataNormSparsifier)->Name("BM_LayerwiseStep")->Apply(ModelCases);
BENCHMARK_TEMPLATE(BM_ModelStep, sparsity::GlobalNormSparsifier)->Name("BM_GlobalStep")->Apply(ModelCases);

void Cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "cols", "bh", "bw", "zeros", "level%"});
  // (a) an embedding table: 1,000,000 x 64, block (1, 4), whole blocks.
  b->Args({1'000'000, 64, 1, 4, 4, 50});
  // (b) a square weight: 4096 x 4096, block (1, 4), 2 zeros per block.
  b->Args({4096, 4096, 1, 4, 2, 50});
  // Scaling.
  b->Args({10'000, 64, 1, 4, 4, 50});
  b->Args({100'000, 64, 1, 4, 4, 50});
  b->Args({1024, 1024, 1, 4, 2, 50});
}

BENCHMARK(BM_DataNormSparsifierStep)
    ->Apply(Cases)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

BENCHMARK(BM_AddData)->ArgNames({"rows", "cols"})->Args({1'000'000, 64})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
