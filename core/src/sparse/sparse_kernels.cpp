#include "sparse_kernels.h"

#include "../runtime/portable_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace sparsity::detail {

namespace {

std::atomic<int> requested_isa{2};

// Below this many multiply-adds a call runs on one thread.
constexpr int64_t kSerialWork = 1 << 15;

// dst [cols, dst_stride] = src [rows, cols] transposed (src rows src_stride
// apart), in 16 x 16 tiles; columns rows.. of dst are left alone.
void transpose(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst, int64_t dst_stride,
               bool avx2) {
  if (avx2) {
    transpose_avx2(src, rows, cols, src_stride, dst, dst_stride);
    return;
  }
  constexpr int64_t kTile = 16;
  for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
    const int64_t j1 = std::min(cols, j0 + kTile);
    for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile);
      for (int64_t j = j0; j < j1; ++j) {
        float* d = dst + j * dst_stride;
        for (int64_t i = i0; i < i1; ++i) d[i] = src[i * src_stride + j];
      }
    }
  }
}

// split[r * (chunks + 1) + q]: block row r's first block in input chunk q
// (columns [q * chunk, (q + 1) * chunk); columns sorted within a row), and
// split[r * (chunks + 1) + chunks] its end.
void fill_row_splits(const BlockView& w, int64_t chunk, int64_t chunks, int64_t* split, int64_t grain) {
  at::parallel_for(0, w.block_rows(), grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t* s = split + r * (chunks + 1);
      const int32_t* first = w.cols + w.offsets[r];
      const int32_t* last = w.cols + w.offsets[r + 1];
      for (int64_t q = 0; q < chunks; ++q) {
        s[q] = w.offsets[r] + (std::lower_bound(first, last, static_cast<int32_t>(q * chunk)) - first);
      }
      s[chunks] = w.offsets[r + 1];
    }
  });
}

// Batches too small to give every thread its own tile: xᵀ packed whole
// once, the rows split over the threads.
void batched_by_rows(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y, int isa) {
  const bool avx2 = isa >= 1;
  const int64_t nbr = w.block_rows();
  const int64_t nnz = w.offsets[nbr] * w.br * w.bc;
  const int64_t grain = (nnz + w.out) * batch < kSerialWork ? nbr + 1 : 1;
  // x transposed into panels: tile t holds columns [t*T, t*T + width_t) of
  // xᵀ as a contiguous [in, width_t] block (so that a tile stays in cache
  // whatever the batch: rows of a wide xᵀ would fall into few cache sets),
  // batch padded to a multiple of 8 with zero columns; y likewise in panels
  // [out, width_t]. T: 64 columns (8 AVX registers) for one output row at a
  // time, 16 for the 4 rows of a 4x1 block.
  const int64_t bp = (batch + 7) / 8 * 8;
  //
  // AVX-512 runs (1, 4) blocks only, at batch >= 32 with in <= 1024, in
  // 16-column panels (one zmm a row) and chunks of 32 KB of a panel (L1):
  // there it measured up to 25 % faster than AVX2 (784->128) or about as
  // fast (1024->1024), while at batch 16 and at in = 4096 it was 5-15 %
  // slower, and for CSR and (4, 1) blocks the AVX-512 kernels (tiles of
  // 16/32/64 columns, chunks of 24 KB to 256 KB, one or two nonzeros a step)
  // were no faster than the AVX2 ones, which stay.
  const bool avx512 = isa >= 2 && w.br == 1 && w.bc == 4 && batch >= 32 && w.in <= 1024;
  const int64_t tile = w.br == 1 && !avx512 ? 64 : 16;
  const int64_t chunk_bytes = avx512 ? 32 << 10 : 256 << 10;
  const int64_t tiles = (bp + tile - 1) / tile;
  // Kept between calls (per calling thread): a fresh large allocation costs
  // page faults on every call.
  thread_local std::vector<float> x_panels, y_panels;
  if (x_panels.size() < static_cast<size_t>(w.in * bp)) x_panels.resize(static_cast<size_t>(w.in * bp));
  if (y_panels.size() < static_cast<size_t>(w.out * bp)) y_panels.resize(static_cast<size_t>(w.out * bp));
  float* const xpp = x_panels.data();
  float* const ypp = y_panels.data();
  at::parallel_for(0, tiles, batch * w.in < kSerialWork ? tiles + 1 : 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b0 = t * tile, width = std::min(tile, bp - b0), real = std::min(width, batch - b0);
      float* panel = xpp + b0 * w.in;
      transpose(x + b0 * w.in, real, w.in, w.in, panel, width, avx2);
      if (real != width) {
        for (int64_t i = 0; i < w.in; ++i) std::fill(panel + i * width + real, panel + (i + 1) * width, 0.0f);
      }
    }
  });
  // Wide inputs in chunks of `chunk` inputs, so that the part of a panel a
  // pass reads stays in about 256 KB (32 KB) of cache: split[r * (chunks + 1) + q] is
  // block row r's first block in chunk q (columns sorted within a row).
  const int64_t chunk = std::max<int64_t>(4, chunk_bytes / (tile * 4) / 4 * 4);
  const int64_t chunks = w.in <= chunk ? 1 : (w.in + chunk - 1) / chunk;
  std::vector<int64_t> split;
  RowRanges whole{w.offsets, w.offsets + 1, 1, false, 0};
  if (chunks > 1) {
    split.resize(static_cast<size_t>(nbr * (chunks + 1)));
    fill_row_splits(w, chunk, chunks, split.data(), 256);
  }
  at::parallel_for(0, nbr, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t b0 = t * tile, width = std::min(tile, bp - b0);
      const float* xt = xpp + b0 * w.in;
      float* yt = ypp + b0 * w.out;
      for (int64_t q = 0; q < chunks; ++q) {
        const RowRanges rr = chunks == 1 ? whole
                                         : RowRanges{split.data() + q, split.data() + q + 1, chunks + 1, q > 0, 0};
        if (avx512) {
          transposed_rows_avx512(w, rr, xt, width, 0, width, bias, yt, r0, r1);
        } else if (avx2) {
          transposed_rows_avx2(w, rr, xt, width, 0, width, bias, yt, r0, r1);
        } else {
          transposed_rows_portable(w, rr, xt, width, 0, width, bias, yt, r0, r1);
        }
      }
    }
  });
  at::parallel_for(0, tiles, batch * w.out < kSerialWork ? tiles + 1 : 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b0 = t * tile, width = std::min(tile, bp - b0), real = std::min(width, batch - b0);
      transpose(ypp + b0 * w.out, w.out, real, width, y + b0 * w.out, w.out, avx2);
    }
  });
}


// The tiled path (below): tiles of up to kTile batch columns, never
// narrower than kMinTile; inputs packed kChunkBytes at a time.
constexpr int64_t kTile = 64;
constexpr int64_t kMinTile = 16;
constexpr int64_t kChunkBytes = 256 << 10;
// Multiply-adds below which the tiled path runs on one thread: starting and
// joining a parallel region costs several microseconds, as much as a
// 784->128 layer at 90 % sparsity and batch 16 takes on one thread.
constexpr int64_t kTiledSerialWork = 1 << 18;

int64_t tiled_work(const BlockView& w, int64_t batch) {
  return (w.offsets[w.block_rows()] * w.br * w.bc + w.out) * batch;
}

// Whether the tiled path takes this call: when it runs on one thread, or
// when the batch gives every thread a tile of at least kMinTile columns.
bool tiled_path(const BlockView& w, int64_t batch) {
  return tiled_work(w, batch) < kTiledSerialWork || batch >= kMinTile * at::get_num_threads();
}

// Large batches: the batch in tiles of `tile` columns, a thread's tiles its
// own. For each tile the inputs are packed (transposed, [chunk, tile]) one
// chunk of input columns at a time into a buffer of the thread's own that
// stays in its cache (256 KB: L2; smaller chunks measured slower, as the
// accumulators then go through memory more often), every row's blocks in
// that chunk run over it into yᵀ [out, tile], and yᵀ is transposed into y at
// the end. Each input is packed once.
void batched_by_tiles(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y, int isa) {
  const bool avx2 = isa >= 1;
  const bool serial = tiled_work(w, batch) < kTiledSerialWork;
  const int threads = serial ? 1 : at::get_num_threads();
  int64_t tile = kTile;
  while (tile > kMinTile && (batch + tile - 1) / tile < threads) tile /= 2;
  const int64_t chunk = std::max<int64_t>(4, kChunkBytes / (tile * 4) / 4 * 4);  // whole (1, 4) blocks
  const int64_t chunks = (w.in + chunk - 1) / chunk;
  const int64_t nbr = w.block_rows();
  const int64_t tiles = (batch + tile - 1) / tile;
  thread_local std::vector<int64_t> split_buffer;  // fill_row_splits's, per calling thread
  if (chunks > 1) {
    if (split_buffer.size() < static_cast<size_t>(nbr * (chunks + 1))) {
      split_buffer.resize(static_cast<size_t>(nbr * (chunks + 1)));
    }
    fill_row_splits(w, chunk, chunks, split_buffer.data(), serial ? nbr + 1 : 256);
  }
  const int64_t* const split = split_buffer.data();
  at::parallel_for(0, tiles, serial ? tiles + 1 : 1, [&](int64_t t0, int64_t t1) {
    // Per thread, kept between calls: fresh pages would fault on every call.
    thread_local std::vector<float> packed, yt_buffer;
    const int64_t tp = (tile + 7) / 8 * 8;
    if (packed.size() < static_cast<size_t>(chunk * tp)) packed.resize(static_cast<size_t>(chunk * tp));
    if (yt_buffer.size() < static_cast<size_t>(w.out * tp)) yt_buffer.resize(static_cast<size_t>(w.out * tp));
    float* const xc = packed.data();
    float* const yt = yt_buffer.data();
    for (int64_t t = t0; t < t1; ++t) {
      // Columns [b0, b0 + real) of the batch, padded with zeros to `width`
      // (a multiple of 8, the kernels' vector width).
      const int64_t b0 = t * tile, real = std::min(tile, batch - b0), width = (real + 7) / 8 * 8;
      for (int64_t q = 0; q < chunks; ++q) {
        const int64_t k0 = q * chunk, kc = std::min(chunk, w.in - k0);
        transpose(x + b0 * w.in + k0, real, kc, w.in, xc, width, avx2);
        if (real != width) {
          for (int64_t i = 0; i < kc; ++i) std::fill(xc + i * width + real, xc + (i + 1) * width, 0.0f);
        }
        const RowRanges rr = chunks == 1 ? RowRanges{w.offsets, w.offsets + 1, 1, false, 0}
                                         : RowRanges{split + q, split + q + 1, chunks + 1, q > 0, k0};
        if (isa >= 2 && w.br == 1) {
          transposed_rows_avx512(w, rr, xc, width, 0, width, bias, yt, 0, nbr);
        } else if (avx2) {
          transposed_rows_avx2(w, rr, xc, width, 0, width, bias, yt, 0, nbr);
        } else {
          transposed_rows_portable(w, rr, xc, width, 0, width, bias, yt, 0, nbr);
        }
      }
      transpose(yt, w.out, real, width, y + b0 * w.out, w.out, avx2);
    }
  });
}

}  // namespace

int sparse_isa_supported() {
  static const int supported = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 0
                               : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 2
                                                                                                        : 1;
  return supported;
}

int sparse_isa() {
  if (portable_kernels_requested()) return 0;
  return std::min(requested_isa.load(std::memory_order_relaxed), sparse_isa_supported());
}

void set_sparse_isa(int isa) { requested_isa.store(std::clamp(isa, 0, 2), std::memory_order_relaxed); }

void sparse_linear_forward(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y) {
  if (batch == 0 || w.out == 0) return;
  const int isa = sparse_isa();
  const bool avx2 = isa >= 1;
  const int64_t nbr = w.block_rows();
  const int64_t nnz = w.offsets[nbr] * w.br * w.bc;
  const int64_t grain = (nnz + w.out) * batch < kSerialWork ? nbr + 1 : 1;
  if (batch < kTransposedBatch) {
    at::parallel_for(0, nbr, grain, [&](int64_t r0, int64_t r1) {
      if (avx2) {
        small_rows_avx2(w, x, batch, bias, y, r0, r1);
      } else {
        small_rows_portable(w, x, batch, bias, y, r0, r1);
      }
    });
    return;
  }
  if (tiled_path(w, batch)) {
    batched_by_tiles(w, x, batch, bias, y, isa);
    return;
  }
  batched_by_rows(w, x, batch, bias, y, isa);
}

void input_sparse_forward(const float* x, int64_t batch, int64_t in, const float* wt, int64_t out_padded,
                          const float* bias, float* y) {
  if (batch == 0 || out_padded == 0) return;
  const bool avx2 = sparse_avx2_enabled();
  thread_local std::vector<int32_t> nz;
  if (nz.size() < static_cast<size_t>(batch * in)) nz.resize(static_cast<size_t>(batch * in));
  // The lambdas below run on other threads: they must see this thread's buffer.
  int32_t* const nzp = nz.data();
  std::vector<int64_t> count(static_cast<size_t>(batch));
  at::parallel_for(0, batch, batch * in < kSerialWork ? batch + 1 : 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * in;
      int32_t* list = nzp + b * in;
      int64_t n = 0;
      for (int64_t i = 0; i < in; ++i) {
        list[n] = static_cast<int32_t>(i);
        n += xb[i] != 0.0f;
      }
      count[static_cast<size_t>(b)] = n;
    }
  });
  // wt in panels of kInputTile columns (see input_sparse_panel); a task is
  // one panel for one sample, panels outermost so that a thread's panel
  // stays in cache over the batch.
  const int64_t tiles = (out_padded + kInputTile - 1) / kInputTile;
  int64_t total = 0;
  for (int64_t n : count) total += n;
  const int64_t work = total * out_padded;
  at::parallel_for(0, batch * tiles, work < kSerialWork ? batch * tiles + 1 : 1, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t t = task / batch, b = task % batch;
      const int64_t c0 = t * kInputTile, width = std::min(out_padded - c0, kInputTile);
      const float* panel = wt + c0 * in;
      const int32_t* list = nzp + b * in;
      const int64_t n = count[static_cast<size_t>(b)];
      float* yb = y + b * out_padded + c0;
      if (avx2) {
        input_sparse_cols_avx2(x + b * in, list, n, panel, width, bias + c0, yb, 0, width);
      } else {
        input_sparse_cols_portable(x + b * in, list, n, panel, width, bias + c0, yb, 0, width);
      }
    }
  });
}

void small_rows_portable(const BlockView& w, const float* x, int64_t batch, const float* bias, float* y,
                         int64_t r0, int64_t r1) {
  const int br = w.br, bc = w.bc, size = br * bc;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t b = 0; b < batch; ++b) {
      const float* xb = x + b * w.in;
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int64_t k = w.offsets[r]; k < w.offsets[r + 1]; ++k) {
        const float* v = w.values + k * size;
        const float* xc = xb + w.cols[k];
        for (int i = 0; i < br; ++i) {
          for (int j = 0; j < bc; ++j) acc[i] += v[i * bc + j] * xc[j];
        }
      }
      for (int i = 0; i < br; ++i) {
        const int64_t o = r * br + i;
        y[b * w.out + o] = acc[i] + (bias != nullptr ? bias[o] : 0.0f);
      }
    }
  }
}

void transposed_rows_portable(const BlockView& w, const RowRanges& rr, const float* xt, int64_t bp, int64_t c0,
                              int64_t c1, const float* bias, float* yt, int64_t r0, int64_t r1) {
  const int br = w.br, bc = w.bc, size = br * bc;
  for (int64_t r = r0; r < r1; ++r) {
    for (int i = 0; i < br && !rr.accumulate; ++i) {
      const int64_t o = r * br + i;
      std::fill(yt + o * bp + c0, yt + o * bp + c1, bias != nullptr ? bias[o] : 0.0f);
    }
    for (int64_t k = rr.begin[r * rr.stride]; k < rr.end[r * rr.stride]; ++k) {
      const float* v = w.values + k * size;
      for (int i = 0; i < br; ++i) {
        float* yo = yt + (r * br + i) * bp;
        for (int j = 0; j < bc; ++j) {
          const float vij = v[i * bc + j];
          const float* xr = xt + (w.cols[k] - rr.col0 + j) * bp;
          for (int64_t c = c0; c < c1; ++c) yo[c] += vij * xr[c];
        }
      }
    }
  }
}

void input_sparse_cols_portable(const float* x, const int32_t* nz, int64_t n, const float* wt, int64_t out_padded,
                                const float* bias, float* y, int64_t c0, int64_t c1) {
  std::copy(bias + c0, bias + c1, y + c0);
  for (int64_t t = 0; t < n; ++t) {
    const float v = x[nz[t]];
    const float* row = wt + static_cast<int64_t>(nz[t]) * out_padded;
    for (int64_t c = c0; c < c1; ++c) y[c] += v * row[c];
  }
}

}  // namespace sparsity::detail
