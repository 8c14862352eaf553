#include "sparsity/float_text.h"

#include <fmt/format.h>

#include <cmath>

namespace sparsity {

std::string float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // fmt's "{}" is the shortest round-trip form, as Python's repr.
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string yaml_float(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  return float_repr(value);
}

}  // namespace sparsity
