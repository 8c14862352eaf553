#include "sparsity/plugin/sparsity_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <algorithm>

namespace sparsity {

std::vector<ParameterSparsity> measure_sparsity(const torch::nn::Module& model, const std::vector<std::string>& names) {
  std::vector<ParameterSparsity> rows;
  for (const auto& item : model.named_parameters()) {
    if (!names.empty() && std::find(names.begin(), names.end(), item.key()) == names.end()) continue;
    ParameterSparsity row;
    row.name = item.key();
    row.shape = item.value().sizes().vec();
    row.numel = item.value().numel();
    row.zeros = row.numel - item.value().count_nonzero().item<int64_t>();
    rows.push_back(std::move(row));
  }
  return rows;
}

double overall_sparsity(const std::vector<ParameterSparsity>& rows) {
  int64_t zeros = 0, numel = 0;
  for (const auto& row : rows) {
    zeros += row.zeros;
    numel += row.numel;
  }
  return numel == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(numel);
}

std::string format_sparsity_table(const std::vector<ParameterSparsity>& rows) {
  size_t name_width = 5, shape_width = 5;
  std::vector<std::string> shapes;
  for (const auto& row : rows) {
    shapes.push_back(fmt::format("[{}]", fmt::join(row.shape, ", ")));
    name_width = std::max(name_width, row.name.size());
    shape_width = std::max(shape_width, shapes.back().size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {:>10}  {:>10}  {:>8}\n", "layer", name_width, "shape", shape_width,
                                "params", "zeros", "sparsity");
  int64_t zeros = 0, numel = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    out += fmt::format("{:<{}}  {:<{}}  {:>10}  {:>10}  {:>7.1f}%\n", rows[i].name, name_width, shapes[i], shape_width,
                       rows[i].numel, rows[i].zeros, 100.0 * rows[i].sparsity());
    zeros += rows[i].zeros;
    numel += rows[i].numel;
  }
  out += fmt::format("{:<{}}  {:<{}}  {:>10}  {:>10}  {:>7.1f}%", "total", name_width, "", shape_width, numel, zeros,
                     100.0 * overall_sparsity(rows));
  return out;
}

}  // namespace sparsity
