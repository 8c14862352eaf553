#pragma once

#include <functional>
#include <string>

#include "sparsity/data_scheduler/base_data_scheduler.h"

namespace sparsity {

/// The value of each name is its base value times `factor(epoch)` (as
/// `torch.ao.pruning`'s `LambdaSL`). C++ only: a function cannot come from YAML,
/// so it is not in the scheduler registry.
///
/// Example:
/// ```
/// LambdaSLScheduler warmup(sparsifier, [](int64_t epoch) { return std::min(1.0, epoch / 10.0); });
/// ```
class LambdaSLScheduler : public BaseDataScheduler {
 public:
  LambdaSLScheduler(BaseDataSparsifier& sparsifier, std::function<double(int64_t)> factor,
                    std::string schedule_param = "sparsity_level", int64_t last_epoch = -1);

 protected:
  std::map<std::string, double> get_schedule_param() override;
  std::string type_name() const override { return "LambdaSLScheduler"; }

 private:
  std::function<double(int64_t)> factor_;
};

}  // namespace sparsity
