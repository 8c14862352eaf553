#include "sparsity/config_error.h"
#include "sparsity/data_sparsifier/data_norm_sparsifier.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "block_norm_mask.h"

namespace sparsity {

namespace {

// Each block dimension is bounded so that h * w (at most (2^31 - 1)^2 < 2^62)
// and the kernel's index arithmetic stay far from int64 overflow.
constexpr int64_t kMaxBlockDim = 2147483647;

const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys{"sparsity_level", "sparse_block_shape", "zeros_per_block", "norm"};
  return keys;
}

// Throws unless `shape` is [h, w] with both within [1, kMaxBlockDim]; checked
// before anything multiplies them.
void check_block_shape(const std::string& who, const std::vector<int64_t>& shape) {
  if (shape.size() != 2) {
    throw ConfigError(fmt::format("{}: sparse_block_shape must be two integers, got [{}]", who, fmt::join(shape, ", ")),
                      "sparse_block_shape");
  }
  if (shape[0] < 1 || shape[1] < 1 || shape[0] > kMaxBlockDim || shape[1] > kMaxBlockDim) {
    throw ConfigError(fmt::format("{}: sparse_block_shape must be two integers, each between 1 and {}, got [{}]", who,
                                  kMaxBlockDim, fmt::join(shape, ", ")),
                      "sparse_block_shape");
  }
}

// Checks a data group's config and turns it into kernel parameters. `name` is
// the data's name, or empty for the sparsifier's defaults.
detail::BlockNormMaskParams resolve(const std::string& name, const Config& config) {
  const std::string who = name.empty() ? std::string("DataNormSparsifier") : fmt::format("data '{}'", name);
  // A misspelt key would otherwise be ignored and its default used in silence.
  config.check_keys(who, known_keys());
  detail::BlockNormMaskParams p;
  p.sparsity_level = config.get<double>("sparsity_level");
  if (!std::isfinite(p.sparsity_level)) {
    throw ConfigError(fmt::format("{}: sparsity_level must be a finite number, got {}", who, p.sparsity_level),
                      "sparsity_level");
  }
  const auto shape = config.get<std::vector<int64_t>>("sparse_block_shape");
  check_block_shape(who, shape);
  p.block_height = shape[0];
  p.block_width = shape[1];
  const int64_t block_size = p.block_height * p.block_width;
  p.zeros_per_block = config.get_or<int64_t>("zeros_per_block", block_size);
  if (p.zeros_per_block < 0 || p.zeros_per_block > block_size) {
    throw ConfigError(fmt::format("{}: zeros_per_block must be between 0 and the block size {} (block shape [{}, {}]), "
                                  "got {}",
                                  who, block_size, p.block_height, p.block_width, p.zeros_per_block),
                      "zeros_per_block");
  }
  try {
    p.l2 = norm_from_string(config.get_or<std::string>("norm", "L1")) == Norm::L2;
  } catch (const ConfigError&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw ConfigError(fmt::format("{}: {}", who, e.what()), "norm");
  }
  return p;
}

// The 2-D view the rule works on: 0-D and 1-D data is one row, N-D data is
// (dim 0, product of the other dims). Size-1 dims are kept, unlike the
// reference's squeeze, so an (r, 1) column stays a column.
std::pair<int64_t, int64_t> rows_and_cols(const at::Tensor& data) {
  if (data.dim() <= 1) return {1, data.numel()};
  int64_t cols = 1;
  for (int64_t d = 1; d < data.dim(); ++d) cols *= data.size(d);
  return {data.size(0), cols};
}

// A block larger than the data is clipped to it, since the kernel's scratch
// memory grows with h * w (up to 2^62 elements here). Positions past the
// data's edge count as NaN (after every number, by position), which makes the
// clipping exact in all but one case: with a block wider than the data and two
// or more rows of it in a block, the padding at the end of each row ranks
// before the NaN elements of the next row. `nan_padding_width` is then that
// padding's width, for `rerank_nans`; 0 when the clipping is exact.
struct ClippedBlock {
  detail::BlockNormMaskParams params;
  int64_t nan_padding_width = 0;
};

ClippedBlock clip_block_to_data(const detail::BlockNormMaskParams& p, int64_t rows, int64_t cols) {
  ClippedBlock c;
  c.params = p;
  c.params.block_height = std::min(p.block_height, std::max<int64_t>(rows, 1));
  c.params.block_width = std::min(p.block_width, std::max<int64_t>(cols, 1));
  // Zeros beyond the clipped block's size zero it whole, as they did the
  // padded block's real elements.
  c.params.zeros_per_block = std::min(p.zeros_per_block, c.params.block_height * c.params.block_width);
  if (c.params.block_width < p.block_width && c.params.block_height >= 2 && p.zeros_per_block > 0 &&
      p.zeros_per_block < c.params.block_height * p.block_width) {
    c.nan_padding_width = p.block_width - c.params.block_width;
  }
  return c;
}

// Rewrites the mask of the NaN elements of each selected block as the
// unclipped block orders them: the k-th NaN (row-major, from 0) of block row
// i has i * padding NaN positions before it, so it is zeroed when
// numbers + k + i * padding < zeros_per_block. The clipped block spans all
// columns, so blocks are bands of block_height rows. Numbers rank before every
// NaN either way, so the kernel's mask of them stands.
template <typename T>
void rerank_nans(const T* x, int64_t rows, int64_t cols, const detail::BlockNormMaskParams& p,
                 const ClippedBlock& clipped, uint8_t* mask) {
  const int64_t bh = clipped.params.block_height;
  for (int64_t r0 = 0; r0 < rows; r0 += bh) {
    const int64_t begin = r0 * cols, end = std::min(rows, r0 + bh) * cols;
    // Every selected block loses at least its first-ranked element; the others keep all.
    if (std::find(mask + begin, mask + end, uint8_t{0}) == mask + end) continue;
    int64_t numbers = 0;
    for (int64_t e = begin; e < end; ++e) numbers += !std::isnan(x[e]);
    if (numbers == end - begin) continue;
    int64_t k = 0;
    for (int64_t e = begin; e < end; ++e) {
      if (!std::isnan(x[e])) continue;
      const int64_t row_in_block = (e - begin) / cols;
      mask[e] = numbers + k + row_in_block * clipped.nan_padding_width >= p.zeros_per_block;
      ++k;
    }
  }
}

}  // namespace

const char* to_string(Norm norm) { return norm == Norm::L1 ? "L1" : "L2"; }

Norm norm_from_string(const std::string& text) {
  if (text == "L1") return Norm::L1;
  if (text == "L2") return Norm::L2;
  throw std::invalid_argument(fmt::format("unknown norm '{}': expected \"L1\" or \"L2\"", text));
}

Config DataNormSparsifierOptions::to_config() const {
  const auto& shape = sparse_block_shape();
  check_block_shape("DataNormSparsifier", {shape[0], shape[1]});
  Config config;
  config.set("sparsity_level", sparsity_level())
      .set("sparse_block_shape", shape)
      .set("zeros_per_block", zeros_per_block().value_or(shape[0] * shape[1]))
      .set("norm", to_string(norm()));
  resolve("", config);
  return config;
}

DataNormSparsifierOptions DataNormSparsifierOptions::from_config(const Config& config) {
  config.check_keys("DataNormSparsifier", known_keys());
  DataNormSparsifierOptions options;
  if (config.contains("sparsity_level")) {
    options.sparsity_level(config.get<double>("sparsity_level"));
    // Schedulers may take a level past 1 as the reference does; a configured
    // one outside [0, 1] is a mistake.
    if (!(options.sparsity_level() >= 0.0 && options.sparsity_level() <= 1.0)) {
      throw ConfigError(fmt::format("DataNormSparsifier: expected a sparsity level in [0, 1], got {}",
                                    config.at("sparsity_level").to_string()),
                        "sparsity_level");
    }
  }
  if (config.contains("sparse_block_shape")) {
    const auto shape = config.get<std::vector<int64_t>>("sparse_block_shape");
    check_block_shape("DataNormSparsifier", shape);
    options.sparse_block_shape({shape[0], shape[1]});
  }
  if (config.contains("zeros_per_block")) options.zeros_per_block(config.get<int64_t>("zeros_per_block"));
  if (config.contains("norm")) {
    try {
      options.norm(norm_from_string(config.get<std::string>("norm")));
    } catch (const ConfigError&) {
      throw;
    } catch (const std::invalid_argument& e) {
      throw ConfigError(fmt::format("DataNormSparsifier: {}", e.what()), "norm");
    }
  }
  (void)options.to_config();  // a bad value is reported here, not when the sparsifier is built
  return options;
}

DataNormSparsifier::DataNormSparsifier(DataNormSparsifierOptions options)
    : BaseDataSparsifier(options.to_config()) {}

void DataNormSparsifier::validate_data(const std::string& name, const at::Tensor& data,
                                       const Config& config) const {
  BaseDataSparsifier::validate_data(name, data, config);
  resolve(name, config);
}

void DataNormSparsifier::update_mask(const std::string& name, const at::Tensor& data,
                                     const Config& config) {
  detail::BlockNormMaskParams params = resolve(name, config);
  const auto [rows, cols] = rows_and_cols(data);
  const ClippedBlock clipped = clip_block_to_data(params, rows, cols);

  // The rule runs on the CPU in float or double: half-precision data is widened
  // to float, data on another device is copied over and its mask copied back.
  at::Tensor input = data.detach();
  if (input.scalar_type() != at::kDouble) input = input.to(at::kFloat);
  input = input.to(at::kCPU).contiguous();

  at::Tensor mask = get_mask(name);
  const bool in_place = mask.device().is_cpu() && mask.is_contiguous();
  at::Tensor out = in_place ? mask : at::empty(mask.sizes(), at::TensorOptions().dtype(at::kByte));
  detail::block_norm_mask(input, rows, cols, clipped.params, out, step_workspace_);
  if (clipped.nan_padding_width > 0 && data.numel() > 0) {
    if (input.scalar_type() == at::kDouble) {
      rerank_nans(input.data_ptr<double>(), rows, cols, params, clipped, out.data_ptr<uint8_t>());
    } else {
      rerank_nans(input.data_ptr<float>(), rows, cols, params, clipped, out.data_ptr<uint8_t>());
    }
  }
  if (!in_place) mask.copy_(out);
}

}  // namespace sparsity
