// Runtime settings: thread counts, which BLAS is loaded, the allocator.
#include <ATen/Parallel.h>
#include <sched.h>

#include "test_support.h"

namespace sparsity {
namespace {

using testing::error_of;

TEST(Threads, ZeroMeansEveryCoreOfTheAffinitySet) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(available_cores(), CPU_COUNT(&set));
  EXPECT_EQ(resolve_threads(0), CPU_COUNT(&set));
  EXPECT_EQ(resolve_threads(1), 1);
  EXPECT_EQ(max_threads(), 4 * available_cores());
  EXPECT_EQ(resolve_threads(max_threads()), max_threads());
}

TEST(Threads, AffinityNarrowerThanTheMachineIsWhatCounts) {
  cpu_set_t all, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const int64_t narrowed = resolve_threads(0);
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  EXPECT_EQ(narrowed, 1);
}

TEST(Threads, BadCountsNameTheValue) {
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { resolve_threads(-1); }), "got -1");
  const int64_t too_many = max_threads() + 1;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { resolve_threads(too_many); }),
                  "threads " + std::to_string(too_many) + " is more than");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { set_threads(100000); }), "100000");
}

TEST(Threads, SetThreadsSetsLibTorchsCount) {
  const int before = at::get_num_threads();
  EXPECT_EQ(set_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(set_threads(0), available_cores());
  EXPECT_EQ(at::get_num_threads(), available_cores());
  at::set_num_threads(before);
}

TEST(Blas, KindsByPath) {
  EXPECT_EQ(blas_kind_of_path("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"), BlasKind::Reference);
  EXPECT_EQ(blas_kind_of_path("/usr/lib/aarch64-linux-gnu/blas/libblas.so.3"), BlasKind::Reference);
  EXPECT_EQ(blas_kind_of_path("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"), BlasKind::OpenBLAS);
  EXPECT_EQ(blas_kind_of_path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"),
            BlasKind::OpenBLAS);
  EXPECT_EQ(blas_kind_of_path("/opt/intel/oneapi/mkl/lib/libmkl_rt.so.2"), BlasKind::MKL);
  EXPECT_EQ(blas_kind_of_path("/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3"), BlasKind::BLIS);
  EXPECT_EQ(blas_kind_of_path("/somewhere/libfoo.so"), BlasKind::Unknown);
  EXPECT_STREQ(to_string(BlasKind::Reference), "reference BLAS");
}

// scripts/setup.sh installs Debian's libopenblas0-openmp, whose libblas.so.3
// outranks the reference one: after it, LibTorch must run on OpenBLAS.
TEST(Blas, TheProcessRunsOnAnOptimizedBlasAfterSetup) {
  const BlasInfo blas = loaded_blas();
  EXPECT_FALSE(blas.library.empty()) << "no sgemm_ found in the process";
  EXPECT_NE(blas.kind, BlasKind::Reference)
      << "LibTorch runs on the reference BLAS (" << blas.library
      << "): run scripts/setup.sh, or sudo apt-get install libopenblas0-openmp";
  EXPECT_EQ(blas.kind, BlasKind::OpenBLAS) << blas.describe();
  EXPECT_EQ(blas.threading, "openmp") << blas.describe();
  EXPECT_CONTAINS(blas.describe(), blas.library);
  EXPECT_CONTAINS(blas.version, "OpenBLAS");
}

TEST(Allocator, TuningApplies) {
  if (testing::kUnderAddressSanitizer) GTEST_SKIP() << "AddressSanitizer replaces glibc's malloc: mallopt cannot apply";
  EXPECT_TRUE(tune_allocator_for_training());
  EXPECT_TRUE(tune_allocator_for_training()) << "idempotent";
}

}  // namespace
}  // namespace sparsity
