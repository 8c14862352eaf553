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

// Checks a data group's config and turns it into kernel parameters. `name` is
// the data's name, or empty for the sparsifier's defaults.
detail::BlockNormMaskParams resolve(const std::string& name, const Config& config) {
  const std::string who = name.empty() ? std::string("DataNormSparsifier") : fmt::format("data '{}'", name);
  detail::BlockNormMaskParams p;
  p.sparsity_level = config.get<double>("sparsity_level");
  if (!std::isfinite(p.sparsity_level)) {
    throw std::invalid_argument(
        fmt::format("{}: sparsity_level must be a finite number, got {}", who, p.sparsity_level));
  }
  const auto shape = config.get<std::vector<int64_t>>("sparse_block_shape");
  if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1) {
    throw std::invalid_argument(fmt::format(
        "{}: sparse_block_shape must be two integers >= 1, got [{}]", who, fmt::join(shape, ", ")));
  }
  p.block_height = shape[0];
  p.block_width = shape[1];
  const int64_t block_size = p.block_height * p.block_width;
  p.zeros_per_block = config.get_or<int64_t>("zeros_per_block", block_size);
  if (p.zeros_per_block < 0 || p.zeros_per_block > block_size) {
    throw std::invalid_argument(fmt::format(
        "{}: zeros_per_block must be between 0 and the block size {} (block shape [{}, {}]), got {}",
        who, block_size, p.block_height, p.block_width, p.zeros_per_block));
  }
  p.l2 = norm_from_string(config.get_or<std::string>("norm", "L1")) == Norm::L2;
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

}  // namespace

const char* to_string(Norm norm) { return norm == Norm::L1 ? "L1" : "L2"; }

Norm norm_from_string(const std::string& text) {
  if (text == "L1") return Norm::L1;
  if (text == "L2") return Norm::L2;
  throw std::invalid_argument(fmt::format("unknown norm '{}': expected \"L1\" or \"L2\"", text));
}

Config DataNormSparsifierOptions::to_config() const {
  const auto& shape = sparse_block_shape();
  Config config;
  config.set("sparsity_level", sparsity_level())
      .set("sparse_block_shape", shape)
      .set("zeros_per_block", zeros_per_block().value_or(shape[0] * shape[1]))
      .set("norm", to_string(norm()));
  resolve("", config);
  return config;
}

DataNormSparsifierOptions DataNormSparsifierOptions::from_config(const Config& config) {
  config.check_keys("DataNormSparsifier", {"sparsity_level", "sparse_block_shape", "zeros_per_block", "norm"});
  DataNormSparsifierOptions options;
  if (config.contains("sparsity_level")) options.sparsity_level(config.get<double>("sparsity_level"));
  if (config.contains("sparse_block_shape")) {
    const auto shape = config.get<std::vector<int64_t>>("sparse_block_shape");
    if (shape.size() != 2) {
      throw std::invalid_argument(fmt::format(
          "DataNormSparsifier: sparse_block_shape must be two integers, got [{}]", fmt::join(shape, ", ")));
    }
    options.sparse_block_shape({shape[0], shape[1]});
  }
  if (config.contains("zeros_per_block")) options.zeros_per_block(config.get<int64_t>("zeros_per_block"));
  if (config.contains("norm")) options.norm(norm_from_string(config.get<std::string>("norm")));
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
  const detail::BlockNormMaskParams params = resolve(name, config);
  const auto [rows, cols] = rows_and_cols(data);

  // The rule runs on the CPU in float or double: half-precision data is widened
  // to float, data on another device is copied over and its mask copied back.
  at::Tensor input = data.detach();
  if (input.scalar_type() != at::kDouble) input = input.to(at::kFloat);
  input = input.to(at::kCPU).contiguous();

  at::Tensor mask = get_mask(name);
  const bool in_place = mask.device().is_cpu() && mask.is_contiguous();
  at::Tensor out = in_place ? mask : at::empty(mask.sizes(), at::TensorOptions().dtype(at::kByte));
  detail::block_norm_mask(input, rows, cols, params, out, step_workspace_);
  if (!in_place) mask.copy_(out);
}

}  // namespace sparsity
