#include "sparsity/runtime/blas_info.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <mutex>

#include "sparsity/logging.h"

namespace sparsity {

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// A symbol of the object that defines `anchor`, looked up in that object only,
// so that another library's copy (e.g. an OpenBLAS loaded for LAPACK beside a
// reference libblas) is not mistaken for it.
void* symbol_beside(void* anchor, const char* name) {
  Dl_info info{};
  if (dladdr(anchor, &info) == 0 || info.dli_fname == nullptr) return nullptr;
  void* handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* symbol = dlsym(handle, name);
  dlclose(handle);
  return symbol;
}

}  // namespace

const char* to_string(BlasKind kind) {
  switch (kind) {
    case BlasKind::OpenBLAS: return "OpenBLAS";
    case BlasKind::MKL: return "MKL";
    case BlasKind::BLIS: return "BLIS";
    case BlasKind::Reference: return "reference BLAS";
    case BlasKind::Unknown: break;
  }
  return "unknown BLAS";
}

BlasKind blas_kind_of_path(const std::string& library_path) {
  const std::string file = std::filesystem::path(library_path).filename().string();
  if (contains(library_path, "openblas")) return BlasKind::OpenBLAS;
  if (contains(file, "mkl")) return BlasKind::MKL;
  if (contains(library_path, "blis")) return BlasKind::BLIS;
  // Debian's netlib build: /usr/lib/<triplet>/blas/libblas.so.3[.x.y]; the
  // optimized ones install their libblas.so.3 under a directory of their own.
  if (contains(library_path, "/blas/libblas.so") || contains(file, "librefblas")) return BlasKind::Reference;
  return BlasKind::Unknown;
}

BlasInfo loaded_blas() {
  BlasInfo info;
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  if (sgemm == nullptr) return info;
  Dl_info where{};
  if (dladdr(sgemm, &where) != 0 && where.dli_fname != nullptr) {
    std::error_code error;
    const auto real = std::filesystem::canonical(where.dli_fname, error);
    info.library = error ? std::string(where.dli_fname) : real.string();
  }
  info.kind = blas_kind_of_path(info.library);

  // Debian's OpenBLAS libblas.so.3 is a thin layer over libopenblas.so.0,
  // which holds the configuration functions.
  if (info.kind == BlasKind::OpenBLAS) {
    using ConfigFn = char* (*)();
    using ParallelFn = int (*)();
    auto config = reinterpret_cast<ConfigFn>(symbol_beside(sgemm, "openblas_get_config"));
    auto parallel = reinterpret_cast<ParallelFn>(symbol_beside(sgemm, "openblas_get_parallel"));
    if (config == nullptr) config = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    if (parallel == nullptr) parallel = reinterpret_cast<ParallelFn>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
    if (config != nullptr) info.version = config();
    if (parallel != nullptr) {
      switch (parallel()) {
        case 0: info.threading = "sequential"; break;
        case 1: info.threading = "pthreads"; break;
        case 2: info.threading = "openmp"; break;
        default: break;
      }
    }
  } else if (info.kind == BlasKind::Unknown) {
    if (symbol_beside(sgemm, "mkl_get_version_string") != nullptr) info.kind = BlasKind::MKL;
    if (symbol_beside(sgemm, "bli_info_get_version_str") != nullptr) info.kind = BlasKind::BLIS;
    if (symbol_beside(sgemm, "openblas_get_config") != nullptr) info.kind = BlasKind::OpenBLAS;
  }
  return info;
}

std::string BlasInfo::describe() const {
  std::string text = version.empty() ? to_string(kind) : version;
  if (!threading.empty()) text += fmt::format(" ({})", threading);
  return text + fmt::format(" from {}", library.empty() ? "an unknown library" : library);
}

void log_blas_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const BlasInfo blas = loaded_blas();
    logger()->info("BLAS: {}; LibTorch runs {} thread(s)", blas.describe(), at::get_num_threads());
    if (blas.kind == BlasKind::Reference) {
      logger()->warn(
          "the reference BLAS is loaded ({}): matrix products run 10 to 20 times slower than with an "
          "optimized BLAS. Install one: sudo apt-get install libopenblas0-openmp",
          blas.library);
    } else if (blas.kind == BlasKind::OpenBLAS && blas.threading == "pthreads") {
      logger()->warn(
          "OpenBLAS with its own pthreads pool is loaded beside LibTorch's OpenMP pool, which can "
          "oversubscribe the cores; the OpenMP build shares LibTorch's: sudo apt-get install libopenblas0-openmp");
    }
  });
}

}  // namespace sparsity
