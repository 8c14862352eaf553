#include "sparsity/data_scheduler/lambda_sl_scheduler.h"

#include <stdexcept>

namespace sparsity {

LambdaSLScheduler::LambdaSLScheduler(BaseDataSparsifier& sparsifier, std::function<double(int64_t)> factor,
                                     std::string schedule_param, int64_t last_epoch)
    : BaseDataScheduler(sparsifier, std::move(schedule_param), last_epoch), factor_(std::move(factor)) {
  if (!factor_) throw std::invalid_argument("LambdaSLScheduler: the factor function is empty");
  step();
}

std::map<std::string, double> LambdaSLScheduler::get_schedule_param() {
  const double factor = factor_(last_epoch());
  std::map<std::string, double> values;
  for (const auto& [name, base] : base_param()) values[name] = base * factor;
  return values;
}

}  // namespace sparsity
