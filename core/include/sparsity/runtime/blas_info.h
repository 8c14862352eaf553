#pragma once

#include <string>

namespace sparsity {

/// Which BLAS implementation a process runs its matrix products on.
enum class BlasKind {
  OpenBLAS,
  MKL,
  BLIS,
  /// The netlib reference implementation (Debian's `libblas3`): correct but
  /// unoptimized, 10 to 20 times slower than an optimized BLAS.
  Reference,
  Unknown,
};

/// What `loaded_blas()` found.
struct BlasInfo {
  BlasKind kind = BlasKind::Unknown;
  /// The shared object that defines `sgemm_`, as a real path (symbolic links
  /// resolved, so Debian's alternatives show their target).
  std::string library;
  /// The implementation's own description where it has one, e.g. OpenBLAS's
  /// `openblas_get_config()`: "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64".
  std::string version;
  /// OpenBLAS's threading: "openmp", "pthreads" or "sequential"; empty otherwise.
  std::string threading;

  /// One line for a log, e.g. "OpenBLAS 0.3.21 ... (openmp) from /usr/lib/.../libopenblas.so.0".
  std::string describe() const;
};

/// The name of a kind: "OpenBLAS", "MKL", "BLIS", "reference BLAS", "unknown BLAS".
const char* to_string(BlasKind kind);

/// The kind a BLAS library is, told by its path alone: Debian installs the
/// reference BLAS as `.../blas/libblas.so.3*` and OpenBLAS as
/// `.../openblas-<variant>/libblas.so.3` or `libopenblas*.so*`.
BlasKind blas_kind_of_path(const std::string& library_path);

/// The BLAS that this process actually loaded: the one whose `sgemm_` the
/// dynamic linker resolves, i.e. the one LibTorch calls.
BlasInfo loaded_blas();

/// Logs, once per process, which BLAS is loaded and with how many threads
/// LibTorch runs (info level), and warns when it is the reference BLAS, with
/// the command that installs an optimized one. The Trainer calls it at the
/// start of `fit`.
void log_blas_once();

}  // namespace sparsity
