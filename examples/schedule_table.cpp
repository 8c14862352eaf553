// Prints, as a Markdown table, the sparsity level each built-in data scheduler
// gives a sparsifier whose base level is 0.8, epoch by epoch. The table in
// docs/schedulers.md is this program's output.
#include <fmt/format.h>
#include <sparsity/sparsity.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

namespace {

using SchedulerMaker = std::function<std::unique_ptr<sparsity::BaseDataScheduler>(sparsity::BaseDataSparsifier&)>;

std::vector<double> levels(const SchedulerMaker& make, int epochs) {
  sparsity::DataNormSparsifier sparsifier(sparsity::DataNormSparsifierOptions().sparsity_level(0.8));
  sparsifier.add_data("w", torch::randn({8, 8}));
  auto scheduler = make(sparsifier);
  std::vector<double> out;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    if (epoch > 0) {
      sparsifier.step();
      scheduler->step();
    }
    out.push_back(sparsifier.data_group("w").get<double>("sparsity_level"));
  }
  return out;
}

}  // namespace

int main() {
  using namespace sparsity;
  constexpr int kEpochs = 13;
  const std::vector<std::pair<std::string, SchedulerMaker>> schedules = {
      {"StepSL(step_size=3, gamma=0.5)",
       [](BaseDataSparsifier& s) {
         return std::make_unique<StepSLScheduler>(s, StepSLSchedulerOptions().step_size(3).gamma(0.5));
       }},
      {"CubicSL(init_t=2, delta_t=1, total_t=8)",
       [](BaseDataSparsifier& s) {
         return std::make_unique<CubicSLScheduler>(s, CubicSLSchedulerOptions().init_t(2).delta_t(1).total_t(8));
       }},
      {"CubicSL(delta_t=2, total_t=5, init_sl=0.2)",
       [](BaseDataSparsifier& s) {
         return std::make_unique<CubicSLScheduler>(s, CubicSLSchedulerOptions().init_sl(0.2).delta_t(2).total_t(5));
       }},
      {"PolynomialDecay(begin=1, end=9, power=3)",
       [](BaseDataSparsifier& s) {
         return std::make_unique<PolynomialDecayScheduler>(
             s, PolynomialDecaySchedulerOptions().begin_step(1).end_step(9).power(3));
       }},
      {"PolynomialDecay(begin=1, end=9, power=1, frequency=2)",
       [](BaseDataSparsifier& s) {
         return std::make_unique<PolynomialDecayScheduler>(
             s, PolynomialDecaySchedulerOptions().begin_step(1).end_step(9).power(1).frequency(2));
       }},
      {"LambdaSL(min(1, epoch / 6))",
       [](BaseDataSparsifier& s) {
         return std::make_unique<LambdaSLScheduler>(s, [](int64_t e) { return std::min(1.0, e / 6.0); });
       }},
  };
  fmt::print("| schedule |");
  for (int e = 0; e < kEpochs; ++e) fmt::print(" {} |", e);
  fmt::print("\n|---|");
  for (int e = 0; e < kEpochs; ++e) fmt::print("---|");
  fmt::print("\n");
  for (const auto& [label, make] : schedules) {
    fmt::print("| {} |", label);
    for (double level : levels(make, kEpochs)) fmt::print(" {:.3f} |", level);
    fmt::print("\n");
  }
  return 0;
}
