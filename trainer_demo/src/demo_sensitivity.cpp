#include "demo_sensitivity.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "demo_model.h"
#include "sparsity/analysis/sensitivity.h"
#include "sparsity/file_io.h"
#include "sparsity/float_text.h"

namespace sparsity::demo {

std::string run_sensitivity(const SensitivityConfig& config, torch::nn::Module& model, const at::Tensor& inputs,
                            const at::Tensor& targets, const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t examples = std::min<int64_t>(config.examples, inputs.size(0));
  const at::Tensor x = inputs.slice(0, 0, examples), y = targets.slice(0, 0, examples);
  const SensitivityTable table = sensitivity_analysis(
      model, [&] { return classification_accuracy(model, x, y); }, SensitivityOptions().levels(config.levels));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string log = fmt::format("sensitivity: accuracy on {} images {:.2f}%; points lost with one weight pruned "
                                "(magnitude), the others dense ({} evaluations, {:.2f} s):\n",
                                examples, 100.0 * table.baseline, 1 + table.layers.size() * table.levels.size(),
                                seconds);
  log += fmt::format("  {:<16}", "layer");
  for (double level : table.levels) log += fmt::format(" {:>7}", fmt::format("{:g}%", 100.0 * level));
  log += "\n";
  for (size_t i = 0; i < table.layers.size(); ++i) {
    log += fmt::format("  {:<16}", table.layers[i]);
    for (size_t j = 0; j < table.levels.size(); ++j) log += fmt::format(" {:>7.2f}", 100.0 * table.loss(i, j));
    log += "\n";
  }
  write_file_atomically((std::filesystem::path(dir) / "sensitivity.csv").string(), table.to_csv());

  std::string levels = "layer,numel,level,predicted_loss\n";
  try {
    const LevelSuggestion plan = suggest_levels(table, config.target);
    log += fmt::format("  suggested for {:g}% overall (predicted loss {:.2f} points, {:.2f}% pruned):", 100.0 * config.target,
                       100.0 * plan.predicted_loss, 100.0 * plan.sparsity);
    for (size_t i = 0; i < table.layers.size(); ++i) {
      const auto at = std::find(table.levels.begin(), table.levels.end(), plan.levels[i]);
      const double loss = at == table.levels.end() ? 0.0 : table.loss(i, static_cast<size_t>(at - table.levels.begin()));
      levels += fmt::format("{},{},{},{}\n", table.layers[i], table.numels[i], float_repr(plan.levels[i]), float_repr(loss));
      log += fmt::format(" {} {:g}%", table.layers[i], 100.0 * plan.levels[i]);
    }
    levels += fmt::format("total,{},{},{}\n", std::accumulate(table.numels.begin(), table.numels.end(), int64_t{0}),
                          float_repr(plan.sparsity), float_repr(plan.predicted_loss));
    log += "\n";
  } catch (const std::invalid_argument& e) {
    // A target the levels cannot reach: the table stands, no suggestion.
    log += fmt::format("  no suggestion for {:g}%: {}\n", 100.0 * config.target, e.what());
  }
  write_file_atomically((std::filesystem::path(dir) / "sensitivity_levels.csv").string(), levels);
  return log;
}

}  // namespace sparsity::demo
