#include "sparsity/analysis/sensitivity.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include "sparsity/float_text.h"
#include "sparsity/message_text.h"

namespace sparsity {

namespace {

// The values pruned at `level` out of `numel`: round half to even, as
// Python's round() in torch.nn.utils.prune (the default rounding mode).
int64_t pruned_count(int64_t numel, double level) {
  const auto k = static_cast<int64_t>(std::nearbyint(level * static_cast<double>(numel)));
  return std::clamp<int64_t>(k, 0, numel);
}

void check_levels(const std::vector<double>& levels, const char* who) {
  if (levels.empty()) throw std::invalid_argument(fmt::format("{}: no levels given: need at least one in (0, 1]", who));
  for (size_t j = 0; j < levels.size(); ++j) {
    const double level = levels[j];
    if (!(level > 0 && level <= 1)) {
      throw std::invalid_argument(
          fmt::format("{}: level {} (index {}) is outside (0, 1]", who, float_repr(level), j));
    }
    if (j > 0 && !(level > levels[j - 1])) {
      throw std::invalid_argument(fmt::format("{}: levels must be strictly increasing: {} (index {}) follows {}", who,
                                              float_repr(level), j, float_repr(levels[j - 1])));
    }
  }
}

// A parameter's values by flat (row-major) index, read and written in place:
// through a flat view when the parameter is contiguous, through per-dimension
// indices otherwise.
class FlatValues {
 public:
  explicit FlatValues(const at::Tensor& parameter) : parameter_(parameter) {
    if (parameter_.is_contiguous()) flat_ = parameter_.view({-1});
  }

  at::Tensor read(const at::Tensor& index) const {
    return flat_.defined() ? flat_.index_select(0, index) : at::index(parameter_, unravel(index));
  }
  void zero(const at::Tensor& index) {
    if (flat_.defined()) {
      flat_.index_fill_(0, index, 0);
    } else {
      parameter_.index_put_(unravel(index), at::zeros({}, parameter_.options()));
    }
  }
  void write(const at::Tensor& index, const at::Tensor& values) {
    if (flat_.defined()) {
      flat_.index_copy_(0, index, values);
    } else {
      parameter_.index_put_(unravel(index), values);
    }
  }

 private:
  c10::List<c10::optional<at::Tensor>> unravel(at::Tensor index) const {
    std::vector<at::Tensor> per_dim(static_cast<size_t>(parameter_.dim()));
    for (int64_t d = parameter_.dim() - 1; d >= 0; --d) {
      const int64_t size = parameter_.size(d);
      per_dim[static_cast<size_t>(d)] = index.remainder(size);
      index = index.div(size, "floor");
    }
    c10::List<c10::optional<at::Tensor>> list;
    for (auto& t : per_dim) list.push_back(std::move(t));
    return list;
  }

  at::Tensor parameter_;
  at::Tensor flat_;
};

// The flat indices of `parameter`'s values by increasing |value|: ties by
// index, NaN after every number; the first `count` of them.
at::Tensor smallest_first(const at::Tensor& parameter, int64_t count) {
  at::Tensor key = parameter.detach().reshape({-1});
  if (key.scalar_type() == at::kHalf || key.scalar_type() == at::kBFloat16) key = key.to(at::kFloat);  // exact
  key = key.abs();
  at::Tensor order = std::get<1>(at::sort(key, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  return order.narrow(0, 0, count).clone();
}

bool needs_quotes(const std::string& text) { return text.find_first_of(",\"\r\n") != std::string::npos; }

std::string csv_field(const std::string& text) {
  if (!needs_quotes(text)) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

void check_table_sizes(const SensitivityTable& table, const char* who) {
  if (table.numels.size() != table.layers.size() || table.metric.size() != table.layers.size()) {
    throw std::invalid_argument(fmt::format("{}: the table's sizes disagree: {} layers, {} numels, {} metric rows", who,
                                            table.layers.size(), table.numels.size(), table.metric.size()));
  }
  for (size_t i = 0; i < table.metric.size(); ++i) {
    if (table.metric[i].size() != table.levels.size()) {
      throw std::invalid_argument(fmt::format("{}: the table's sizes disagree: metric row {} ('{}') has {} values for {} levels",
                                              who, i, message_text(table.layers[i]), table.metric[i].size(),
                                              table.levels.size()));
    }
  }
}

void check_table(const SensitivityTable& table, const char* who) {
  check_table_sizes(table, who);
  if (table.layers.empty()) throw std::invalid_argument(fmt::format("{}: the table has no layers", who));
  check_levels(table.levels, who);
  if (table.levels.size() > 254) {
    throw std::invalid_argument(fmt::format("{}: the table has {} levels; at most 254 are supported", who, table.levels.size()));
  }
  if (!std::isfinite(table.baseline)) {
    throw std::invalid_argument(fmt::format("{}: the table's baseline {} is not finite", who, float_repr(table.baseline)));
  }
  for (size_t i = 0; i < table.layers.size(); ++i) {
    if (table.numels[i] < 0) {
      throw std::invalid_argument(fmt::format("{}: layer '{}' has numel {}, below 0", who, message_text(table.layers[i]),
                                              table.numels[i]));
    }
    for (size_t j = 0; j < table.levels.size(); ++j) {
      if (!std::isfinite(table.metric[i][j])) {
        throw std::invalid_argument(fmt::format("{}: the metric of layer '{}' at level {} is {}, not finite", who,
                                                message_text(table.layers[i]), float_repr(table.levels[j]),
                                                float_repr(table.metric[i][j])));
      }
    }
  }
}

}  // namespace

double SensitivityTable::loss(size_t layer, size_t level) const {
  if (layer >= metric.size()) {
    throw std::invalid_argument(
        fmt::format("SensitivityTable::loss: layer index {} is out of range (the table has {})", layer, metric.size()));
  }
  if (level >= metric[layer].size()) {
    throw std::invalid_argument(fmt::format("SensitivityTable::loss: level index {} is out of range (layer {} has {})",
                                            level, layer, metric[layer].size()));
  }
  return baseline - metric[layer][level];
}

std::string SensitivityTable::to_csv() const {
  check_table_sizes(*this, "SensitivityTable::to_csv");
  std::string csv = "layer,numel,level,metric,loss\n";
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string name = csv_field(layers[i]);
    for (size_t j = 0; j < levels.size(); ++j) {
      csv += fmt::format("{},{},{},{},{}\n", name, numels[i], float_repr(levels[j]), float_repr(metric[i][j]),
                         float_repr(loss(i, j)));
    }
  }
  return csv;
}

SensitivityTable sensitivity_analysis(torch::nn::Module& model, const std::function<double()>& evaluate,
                                      const SensitivityOptions& options) {
  constexpr const char* who = "sensitivity_analysis";
  check_levels(options.levels(), who);
  if (!evaluate) throw std::invalid_argument("sensitivity_analysis: evaluate is an empty function");

  SensitivityTable table;
  table.levels = options.levels();
  std::vector<at::Tensor> parameters;
  for (const auto& item : model.named_parameters()) {
    if (!options.parameters().selects(item.key())) continue;
    const at::Tensor& parameter = item.value();
    if (!parameter.defined() || parameter.layout() != at::kStrided || !parameter.is_floating_point()) {
      throw std::invalid_argument(fmt::format(
          "{}: parameter '{}' is {}; only dense floating-point parameters can be pruned (exclude it from the selection)",
          who, message_text(item.key()),
          !parameter.defined() ? std::string("undefined")
                               : fmt::format("{} ({})", c10::toString(parameter.scalar_type()),
                                             c10::toString(parameter.layout()))));
    }
    table.layers.push_back(item.key());
    table.numels.push_back(parameter.numel());
    parameters.push_back(parameter);
  }
  if (parameters.empty()) {
    throw std::invalid_argument(fmt::format("{}: no parameter of the model is selected (include: [{}], exclude: [{}])",
                                            who, fmt::join(options.parameters().include, ", "),
                                            fmt::join(options.parameters().exclude, ", ")));
  }

  table.baseline = evaluate();
  if (!std::isfinite(table.baseline)) {
    throw std::invalid_argument(
        fmt::format("{}: evaluate() returned {} for the baseline (the model as it is): the metric must be finite", who,
                    float_repr(table.baseline)));
  }

  const std::vector<double>& levels = table.levels;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const int64_t numel = table.numels[i];
    std::vector<int64_t> counts;
    for (double level : levels) counts.push_back(pruned_count(numel, level));

    at::Tensor index;  // the values pruned at the highest level, smallest first
    at::Tensor saved;  // their values, as they were
    FlatValues values(parameters[i]);
    {
      torch::NoGradGuard no_grad;
      index = smallest_first(parameters[i], counts.back());
      saved = values.read(index);
    }
    int64_t zeroed = 0;  // index[0, zeroed) is zero in the model now
    const auto restore = [&] {
      torch::NoGradGuard no_grad;
      if (zeroed > 0) values.write(index.narrow(0, 0, zeroed), saved.narrow(0, 0, zeroed));
      zeroed = 0;
    };

    std::vector<double> row;
    row.reserve(levels.size());
    try {
      for (size_t j = 0; j < levels.size(); ++j) {
        if (counts[j] > zeroed) {
          torch::NoGradGuard no_grad;
          values.zero(index.narrow(0, zeroed, counts[j] - zeroed));
          zeroed = counts[j];
        }
        const double metric = evaluate();
        if (!std::isfinite(metric)) {
          throw std::invalid_argument(fmt::format(
              "{}: evaluate() returned {} with layer '{}' pruned at level {}: the metric must be finite", who,
              float_repr(metric), message_text(table.layers[i]), float_repr(levels[j])));
        }
        row.push_back(metric);
      }
    } catch (...) {
      restore();
      throw;
    }
    restore();
    table.metric.push_back(std::move(row));
  }
  return table;
}

LevelSuggestion suggest_levels(const SensitivityTable& table, double target_sparsity) {
  constexpr const char* who = "suggest_levels";
  if (!(target_sparsity >= 0 && target_sparsity <= 1)) {
    throw std::invalid_argument(
        fmt::format("{}: target sparsity {} is outside [0, 1]", who, float_repr(target_sparsity)));
  }
  check_table(table, who);

  const size_t layers = table.layers.size();
  const size_t options = table.levels.size() + 1;  // dense, then each level
  int64_t total = 0;
  for (int64_t numel : table.numels) total += numel;
  if (total == 0) throw std::invalid_argument(fmt::format("{}: the table's layers hold no values", who));

  // count[i][o], loss[i][o]: option 0 is dense.
  std::vector<std::vector<int64_t>> count(layers, std::vector<int64_t>(options, 0));
  std::vector<std::vector<double>> loss(layers, std::vector<double>(options, 0.0));
  int64_t reachable = 0;
  for (size_t i = 0; i < layers; ++i) {
    for (size_t o = 1; o < options; ++o) {
      count[i][o] = pruned_count(table.numels[i], table.levels[o - 1]);
      loss[i][o] = table.loss(i, o - 1);
    }
    reachable += count[i][options - 1];
  }

  // The values to prune: target · total, where a product within rounding of
  // a whole number is that number (0.7 · 10 is 7.000000000000001).
  const double wanted = target_sparsity * static_cast<double>(total);
  const double nearest = std::nearbyint(wanted);
  const auto target_count = static_cast<int64_t>(
      std::fabs(wanted - nearest) <= 4 * DBL_EPSILON * wanted ? nearest : std::ceil(wanted));
  if (target_count > reachable) {
    throw std::invalid_argument(fmt::format(
        "{}: target sparsity {} cannot be reached: every layer pruned at the highest level ({}) prunes {} of the "
        "values ({} of {})",
        who, float_repr(target_sparsity), float_repr(table.levels.back()),
        float_repr(static_cast<double>(reachable) / static_cast<double>(total)), reachable, total));
  }

  // Counts in units of `unit` values, so that the tables stay bounded.
  constexpr int64_t kMaxCapacity = int64_t{1} << 22;
  constexpr int64_t kMaxCells = int64_t{1} << 26;
  const int64_t allowed = std::max<int64_t>(1, std::min<int64_t>(kMaxCapacity, kMaxCells / static_cast<int64_t>(layers) - 1));
  const int64_t unit = target_count <= allowed ? 1 : (target_count + allowed - 1) / allowed;
  const int64_t capacity = (target_count + unit - 1) / unit;  // target rounded up
  const auto cells = static_cast<size_t>(capacity + 1);

  std::vector<std::vector<int64_t>> weight(layers, std::vector<int64_t>(options, 0));
  for (size_t i = 0; i < layers; ++i)
    for (size_t o = 0; o < options; ++o) weight[i][o] = count[i][o] / unit;  // rounded down

  // best[c]: the least loss of the layers so far pruning at least c units.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> best(cells, kInf);
  best[0] = 0;
  std::vector<uint8_t> choice(layers * cells, 0);
  for (size_t i = 0; i < layers; ++i) {
    uint8_t* layer_choice = choice.data() + i * cells;
    // Descending c: best[c - w] (w >= 0) still holds the previous layers' value.
    for (int64_t c = capacity; c >= 0; --c) {
      double least = kInf;
      uint8_t least_option = 0;
      for (size_t o = 0; o < options; ++o) {
        const double value = best[static_cast<size_t>(std::max<int64_t>(0, c - weight[i][o]))] + loss[i][o];
        if (value < least) {
          least = value;
          least_option = static_cast<uint8_t>(o);
        }
      }
      best[static_cast<size_t>(c)] = least;
      layer_choice[c] = least_option;
    }
  }

  std::vector<size_t> chosen(layers, options - 1);  // unreachable in units: every layer at the highest level
  if (best[static_cast<size_t>(capacity)] < kInf) {
    int64_t c = capacity;
    for (size_t i = layers; i-- > 0;) {
      chosen[i] = choice[i * cells + static_cast<size_t>(c)];
      c = std::max<int64_t>(0, c - weight[i][chosen[i]]);
    }
  }

  LevelSuggestion suggestion;
  suggestion.unit = unit;
  int64_t pruned = 0;
  for (size_t i = 0; i < layers; ++i) {
    suggestion.levels.push_back(chosen[i] == 0 ? 0.0 : table.levels[chosen[i] - 1]);
    suggestion.predicted_loss += loss[i][chosen[i]];
    pruned += count[i][chosen[i]];
  }
  suggestion.sparsity = static_cast<double>(pruned) / static_cast<double>(total);
  return suggestion;
}

}  // namespace sparsity
