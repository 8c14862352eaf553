#include "sparsity/lossy/sharpness_schedule.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "sparsity/lossy/sparsifier_layers.h"

namespace sparsity {

int64_t multiply_sharpness(torch::nn::Module& model, double factor) {
  if (!(factor > 0.0) || !std::isfinite(factor)) {
    throw std::invalid_argument(fmt::format("multiply_sharpness: factor must be > 0 and finite, got {}", factor));
  }
  int64_t n = 0;
  for (auto& layer : sparsifier_layers(model)) {
    layer->set_a(layer->a() * factor);
    ++n;
  }
  return n;
}

SharpnessSchedule::SharpnessSchedule(SharpnessScheduleOptions options) : options_(options) {
  if (!(options_.factor() > 0.0) || !std::isfinite(options_.factor())) {
    throw std::invalid_argument(
        fmt::format("SharpnessSchedule: factor must be > 0 and finite, got {}", options_.factor()));
  }
  if (options_.period() < 1) {
    throw std::invalid_argument(fmt::format("SharpnessSchedule: period must be >= 1, got {}", options_.period()));
  }
}

bool SharpnessSchedule::epoch_end(torch::nn::Module& model, int64_t epoch) const {
  if ((epoch + 1) % options_.period() != 0) return false;
  multiply_sharpness(model, options_.factor());
  return true;
}

}  // namespace sparsity
