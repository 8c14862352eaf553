// SparseLinear and SparseInputLinear against the dense torch::nn::Linear
// (OpenBLAS), side by side in one run, at 1 and 2 threads: time, speedup,
// what to_sparse_inference's policy picks, the sparse kernel's GB/s against a
// streaming read of the same arrays, and the dense GFLOP/s. Prints Markdown
// tables (bench/README.md, "Sparse inference").
//
//   build/bench/sparse_linear_bench [threads=1,2] [min_ms per round=4]
#include <ATen/Parallel.h>
#include <sparsity/sparse/sparse_inference.h>
#include <sparsity/sparse/sparse_linear.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double min_round_ms = 4.0;

// Microseconds per call of f and of g: the best of 7 rounds each (of at least
// min_round_ms), the rounds of the two interleaved, so that the load of a
// shared machine falls on both alike.
std::pair<double, double> time_pair_us(const std::function<void()>& f, const std::function<void()>& g) {
  auto iterations_of = [](const std::function<void()>& h) {
    h();
    const auto start = Clock::now();
    h();
    const double once = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    return std::max(1, static_cast<int>(min_round_ms * 1000.0 / std::max(once, 0.1)));
  };
  const int nf = iterations_of(f), ng = iterations_of(g);
  double best_f = 1e300, best_g = 1e300;
  for (int r = 0; r < 7; ++r) {
    auto start = Clock::now();
    for (int i = 0; i < nf; ++i) f();
    best_f = std::min(best_f, std::chrono::duration<double, std::micro>(Clock::now() - start).count() / nf);
    start = Clock::now();
    for (int i = 0; i < ng; ++i) g();
    best_g = std::min(best_g, std::chrono::duration<double, std::micro>(Clock::now() - start).count() / ng);
  }
  return {best_f, best_g};
}

double time_us(const std::function<void()>& f) { return time_pair_us(f, [] {}).first; }

int64_t bytes_of(const at::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

// GB/s of one read of `tensors` (32-bit words summed, split over threads).
volatile uint32_t sink;
double stream_gbps(const std::vector<at::Tensor>& tensors) {
  int64_t total = 0;
  for (const auto& t : tensors) total += bytes_of(t);
  const double us = time_us([&] {
    uint32_t all = 0;
    for (const auto& t : tensors) {
      const auto* words = static_cast<const uint32_t*>(t.data_ptr());
      const int64_t n = bytes_of(t) / 4;
      std::vector<uint32_t> part(static_cast<size_t>(at::get_num_threads()) + 1, 0);
      at::parallel_for(0, n, 1 << 14, [&](int64_t b, int64_t e) {
        uint32_t s = 0;
        for (int64_t i = b; i < e; ++i) s += words[i];
        part[static_cast<size_t>(at::get_thread_num())] += s;
      });
      for (uint32_t p : part) all += p;
    }
    sink = all;
  });
  return static_cast<double>(total) / us / 1e3;
}

enum class Pattern { Unstructured, Rows4, Cols4 };

struct Weight {
  const char* name;
  double sparsity;
  Pattern pattern;
};

torch::nn::Linear make_linear(int64_t in, int64_t out, const Weight& w) {
  torch::manual_seed(0);
  torch::nn::Linear linear(in, out);
  torch::NoGradGuard no_grad;
  at::Tensor keep;
  switch (w.pattern) {
    case Pattern::Unstructured: keep = torch::rand({out, in}) >= w.sparsity; break;
    case Pattern::Rows4: keep = (torch::rand({out, in / 4, 1}) >= w.sparsity).expand({out, in / 4, 4}).reshape({out, in}); break;
    case Pattern::Cols4: keep = (torch::rand({out / 4, 1, in}) >= w.sparsity).expand({out / 4, 4, in}).reshape({out, in}); break;
  }
  linear->weight.mul_(keep);
  return linear;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts = {1, 2};
  if (argc > 1) {
    thread_counts.clear();
    for (const char* p = argv[1]; *p != '\0';) {
      thread_counts.push_back(std::atoi(p));
      while (*p != '\0' && *p != ',') ++p;
      if (*p == ',') ++p;
    }
  }
  if (argc > 2) min_round_ms = std::atof(argv[2]);
  torch::NoGradGuard no_grad;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{784, 128}, {1024, 1024}, {4096, 1024}};
  std::vector<int64_t> batches = {1, 16, 64, 256};
  // SPARSITY_BENCH_BATCH=N: that batch only; SPARSITY_BENCH_NO_INPUT=1: no
  // input-sparse table (quick experiments).
  if (const char* b = std::getenv("SPARSITY_BENCH_BATCH")) batches = {std::atol(b)};
  const bool input_table = std::getenv("SPARSITY_BENCH_NO_INPUT") == nullptr;
  const std::vector<Weight> weights = {{"50% unstructured", 0.5, Pattern::Unstructured},
                                       {"90% unstructured", 0.9, Pattern::Unstructured},
                                       {"90% (1,4) blocks", 0.9, Pattern::Rows4},
                                       {"90% (4,1) blocks", 0.9, Pattern::Cols4},
                                       {"95% unstructured", 0.95, Pattern::Unstructured}};
  // SPARSITY_BENCH_ISA=0/1/2: at most portable / AVX2 / AVX-512 kernels.
  if (const char* isa = std::getenv("SPARSITY_BENCH_ISA")) {
    sparsity::set_sparse_kernel_isa(static_cast<sparsity::SparseKernelIsa>(std::atoi(isa)));
  }
  const char* isa_names[] = {"portable", "AVX2+FMA", "AVX-512F (CSR and (1,4) blocks at batch >= 8), AVX2+FMA (rest)"};
  std::printf("Kernels: %s\n\n", isa_names[static_cast<int>(sparsity::sparse_kernel_isa())]);
  std::printf("| threads | in→out | weight | format | batch | dense µs | dense GFLOP/s | sparse µs | speedup | "
              "policy | picked / dense | sparse GB/s | stream GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int threads : thread_counts) {
    at::set_num_threads(threads);
    for (const auto& [in, out] : shapes) {
      for (const auto& w : weights) {
        auto dense = make_linear(in, out, w);
        dense->eval();
        sparsity::SparseLinear sparse(dense);
        std::vector<at::Tensor> arrays;
        for (const auto& b : sparse->buffers()) arrays.push_back(b);
        int64_t weight_bytes = 0;
        for (const auto& a : arrays) weight_bytes += bytes_of(a);
        const double stream = stream_gbps(arrays);
        const auto block = sparse->block_shape();
        const std::string format = sparse->format() == sparsity::SparseFormat::CSR
                                       ? "csr"
                                       : "block " + std::to_string(block[0]) + "x" + std::to_string(block[1]);
        for (int64_t batch : batches) {
          const auto x = torch::randn({batch, in});
          const auto [dense_us, sparse_us] = time_pair_us([&] { dense->forward(x); }, [&] { sparse->forward(x); });
          const bool pick = sparsity::sparse_linear_pays_off(dense, sparsity::SparseInferenceOptions().batch_size(batch));
          const double picked = pick ? sparse_us : dense_us;
          const double gflops = 2.0 * static_cast<double>(in * out * batch) / dense_us / 1e3;
          const double gbps = static_cast<double>(weight_bytes + (in + out) * batch * 4) / sparse_us / 1e3;
          std::printf("| %d | %ld→%ld | %s | %s | %ld | %.1f | %.1f | %.1f | %.2fx | %s | %.2f | %.1f | %.1f |\n",
                      threads, static_cast<long>(in), static_cast<long>(out), w.name, format.c_str(),
                      static_cast<long>(batch), dense_us, gflops, sparse_us, dense_us / sparse_us,
                      pick ? "sparse" : "dense", picked / dense_us, gbps, stream);
          std::fflush(stdout);
        }
      }
    }
  }

  // SPARSITY_BENCH_24=1: 2:4 weights (2 of every 4 consecutive inputs zero,
  // at random) in CSR and in (1, 4) blocks (which store them whole) against
  // dense, 1 thread.
  if (std::getenv("SPARSITY_BENCH_24") != nullptr) {
    at::set_num_threads(1);
    std::printf("\n2:4 weights, 1 thread:\n\n| in→out | batch | dense µs | csr µs | csr speedup | (1,4) µs | (1,4) speedup | policy |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const auto& [in, out] : shapes) {
      torch::manual_seed(0);
      torch::nn::Linear dense(in, out);
      {
        torch::NoGradGuard guard;
        const auto keys = torch::rand({out, in / 4, 4});
        const auto order = keys.argsort(/*dim=*/static_cast<int64_t>(2));
        const auto mask = (order.argsort(static_cast<int64_t>(2)) < 2).reshape({out, in});
        dense->weight.mul_(mask.to(torch::kFloat));
      }
      sparsity::SparseLinear csr(dense, sparsity::SparseLinearOptions().format(sparsity::SparseFormat::CSR));
      sparsity::SparseLinear rows4(dense, sparsity::SparseLinearOptions().block_shape({1, 4}));
      for (int64_t batch : batches) {
        const auto x = torch::randn({batch, in});
        const auto [dense_us, csr_us] = time_pair_us([&] { dense->forward(x); }, [&] { csr->forward(x); });
        const auto [dense2_us, rows4_us] = time_pair_us([&] { dense->forward(x); }, [&] { rows4->forward(x); });
        const double d = std::min(dense_us, dense2_us);
        const bool pick = sparsity::sparse_linear_pays_off(dense, sparsity::SparseInferenceOptions().batch_size(batch));
        std::printf("| %ld→%ld | %ld | %.1f | %.1f | %.2fx | %.1f | %.2fx | %s |\n", static_cast<long>(in),
                    static_cast<long>(out), static_cast<long>(batch), d, csr_us, d / csr_us, rows4_us, d / rows4_us,
                    pick ? "sparse" : "dense");
        std::fflush(stdout);
      }
    }
  }

  if (!input_table) return 0;
  std::printf("\nInput-sparse path (SparseInputLinear, dense weight) against the dense Linear:\n\n");
  std::printf("| threads | in→out | input zeros | batch | dense µs | sparse-input µs | speedup |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int threads : thread_counts) {
    at::set_num_threads(threads);
    for (const auto& [in, out] : shapes) {
      torch::manual_seed(0);
      torch::nn::Linear dense(in, out);
      sparsity::SparseInputLinear sparse(dense);
      for (double zeros : {0.5, 0.8, 0.95}) {
        for (int64_t batch : batches) {
          const auto x = torch::randn({batch, in}) * (torch::rand({batch, in}) >= zeros);
          const auto [dense_us, sparse_us] = time_pair_us([&] { dense->forward(x); }, [&] { sparse->forward(x); });
          std::printf("| %d | %ld→%ld | %.0f%% | %ld | %.1f | %.1f | %.2fx |\n", threads, static_cast<long>(in),
                      static_cast<long>(out), zeros * 100, static_cast<long>(batch), dense_us, sparse_us,
                      dense_us / sparse_us);
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
