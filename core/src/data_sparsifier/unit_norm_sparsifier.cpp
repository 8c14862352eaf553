#include "sparsity/data_sparsifier/unit_norm_sparsifier.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "sparsity/config_error.h"

namespace sparsity {

namespace {

const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys{"sparsity_level", "norm"};
  return keys;
}

constexpr const char* kBiasSuffix = "bias";
constexpr const char* kWeightSuffix = "weight";

struct UnitParams {
  double sparsity_level = 0.5;
  bool l2 = false;
};

// `name` is the data's name, or empty for the sparsifier's defaults.
UnitParams resolve(const std::string& name, const Config& config) {
  const std::string who = name.empty() ? std::string("UnitNormSparsifier") : fmt::format("data '{}'", name);
  // A misspelt key would otherwise be ignored and its default used in silence.
  config.check_keys(who, known_keys());
  UnitParams p;
  p.sparsity_level = config.get_or<double>("sparsity_level", 0.5);
  if (!std::isfinite(p.sparsity_level)) {
    throw ConfigError(fmt::format("{}: sparsity_level must be a finite number, got {}", who, p.sparsity_level),
                      "sparsity_level");
  }
  const std::string norm = config.get_or<std::string>("norm", to_string(Norm::L1));
  if (norm != to_string(Norm::L1) && norm != to_string(Norm::L2)) {
    throw ConfigError(fmt::format("{}: unknown norm '{}': expected \"L1\" or \"L2\"", who, norm), "norm");
  }
  p.l2 = norm == to_string(Norm::L2);
  return p;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Writes `keep` (one flag per dim-0 unit) into `mask`, broadcast over the
// unit's other dims; `mask` may live on any device.
void write_unit_mask(at::Tensor& mask, const std::vector<uint8_t>& keep) {
  at::Tensor flags = at::empty({static_cast<int64_t>(keep.size())}, at::TensorOptions().dtype(at::kByte));
  std::copy(keep.begin(), keep.end(), flags.data_ptr<uint8_t>());
  std::vector<int64_t> shape(static_cast<size_t>(mask.dim()), 1);
  shape[0] = static_cast<int64_t>(keep.size());
  mask.copy_(flags.view(shape).to(mask.device()).expand(mask.sizes()));
}

}  // namespace

Config UnitNormSparsifierOptions::to_config() const {
  Config config;
  config.set("sparsity_level", sparsity_level()).set("norm", to_string(norm()));
  resolve("", config);
  return config;
}

UnitNormSparsifierOptions UnitNormSparsifierOptions::from_config(const Config& config) {
  const UnitParams p = resolve("", config);
  // Schedulers may take a level past 1; a configured one outside [0, 1] is a mistake.
  if (!(p.sparsity_level >= 0.0 && p.sparsity_level <= 1.0)) {
    throw ConfigError(fmt::format("UnitNormSparsifier: expected a sparsity level in [0, 1], got {}",
                                  config.at("sparsity_level").to_string()),
                      "sparsity_level");
  }
  return UnitNormSparsifierOptions().sparsity_level(p.sparsity_level).norm(p.l2 ? Norm::L2 : Norm::L1);
}

UnitNormSparsifier::UnitNormSparsifier(UnitNormSparsifierOptions options)
    : BaseDataSparsifier(options.to_config()) {}

std::string UnitNormSparsifier::weight_partner(const std::string& name) {
  if (!ends_with(name, kBiasSuffix)) return {};
  return name.substr(0, name.size() - std::char_traits<char>::length(kBiasSuffix)) + kWeightSuffix;
}

void UnitNormSparsifier::validate_data(const std::string& name, const at::Tensor& data,
                                       const Config& config) const {
  BaseDataSparsifier::validate_data(name, data, config);
  resolve(name, config);
  if (data.dim() == 0) {
    throw std::invalid_argument(
        fmt::format("data '{}' is a scalar; UnitNormSparsifier prunes dim-0 units of weights (2-D or more) "
                    "and the biases that follow them",
                    name));
  }
  if (data.dim() == 1 && weight_partner(name).empty()) {
    throw std::invalid_argument(fmt::format(
        "data '{}' is 1-D and its name does not end in 'bias'; UnitNormSparsifier prunes 1-D data only as the "
        "bias of a weight registered as '<prefix>weight' (use DataNormSparsifier for single elements)",
        name));
  }
}

void UnitNormSparsifier::update_masks(const std::vector<std::string>& names) {
  // Weights first, so that each bias copies its weight's mask of this step.
  std::vector<std::string> biases;
  for (const auto& name : names) {
    if (get_data(name).dim() == 1) {
      biases.push_back(name);
    } else {
      update_mask(name, get_data(name), data_group(name));
    }
  }
  for (const auto& name : biases) update_bias_mask(name);
}

void UnitNormSparsifier::update_bias_mask(const std::string& name) {
  const std::string partner = weight_partner(name);
  const at::Tensor bias = get_data(name);
  if (!contains(partner) || get_data(partner).dim() < 2) {
    throw std::invalid_argument(fmt::format(
        "data '{}' is 1-D but no weight '{}' (2-D or more) is registered: UnitNormSparsifier prunes a bias only "
        "with its weight's units; register both, or leave the bias out",
        name, partner));
  }
  const at::Tensor weight = get_data(partner);
  if (weight.size(0) != bias.size(0)) {
    throw std::invalid_argument(fmt::format("data '{}' has {} entries but its weight '{}' has {} units (dim 0)", name,
                                            bias.size(0), partner, weight.size(0)));
  }
  const at::Tensor weight_mask = get_mask(partner);
  // A unit is pruned when its whole slice is masked; its first element says so.
  std::vector<uint8_t> keep(static_cast<size_t>(bias.size(0)), 1);
  if (weight.numel() > 0) {
    const at::Tensor first = weight_mask.reshape({weight.size(0), -1}).select(1, 0).to(at::kCPU).contiguous();
    std::copy(first.data_ptr<uint8_t>(), first.data_ptr<uint8_t>() + bias.size(0), keep.begin());
  }
  at::Tensor mask = get_mask(name);
  write_unit_mask(mask, keep);
}

void UnitNormSparsifier::update_mask(const std::string& name, const at::Tensor& data, const Config& config) {
  if (data.dim() == 1) {
    update_bias_mask(name);
    return;
  }
  const UnitParams params = resolve(name, config);
  const int64_t units = data.size(0);
  std::vector<double> norms(static_cast<size_t>(units), 0.0);
  if (units > 0) {
    const at::Tensor flat = data.detach().to(at::kCPU, at::kDouble).reshape({units, -1});
    // Over one tensor every unit has the same size, so L1's mean ranks as its sum would.
    const at::Tensor per_unit =
        params.l2 ? flat.mul(flat).sum(1).sqrt() : flat.abs().mean(1);
    const at::Tensor contiguous = per_unit.contiguous();
    std::copy(contiguous.data_ptr<double>(), contiguous.data_ptr<double>() + units, norms.begin());
  }
  const double wanted = std::nearbyint(params.sparsity_level * static_cast<double>(units));
  const int64_t pruned = static_cast<int64_t>(std::clamp(wanted, 0.0, static_cast<double>(units)));

  std::vector<int64_t> order(static_cast<size_t>(units));
  std::iota(order.begin(), order.end(), 0);
  // Stable: equal norms keep index order, so the lowest index is pruned first.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double x = norms[static_cast<size_t>(a)], y = norms[static_cast<size_t>(b)];
    if (std::isnan(x)) return false;
    if (std::isnan(y)) return true;
    return x < y;
  });
  std::vector<uint8_t> keep(static_cast<size_t>(units), 1);
  for (int64_t i = 0; i < pruned; ++i) keep[static_cast<size_t>(order[static_cast<size_t>(i)])] = 0;
  at::Tensor mask = get_mask(name);
  write_unit_mask(mask, keep);
}

}  // namespace sparsity
