#pragma once
// Doubles as text that reads back as the same double: one spelling for every
// file sparsity writes (metrics.csv, YAML configs, JSON summaries).

#include <string>

namespace sparsity {

/// Python's `repr(float)`: the shortest text that reads back as the same
/// double, with ".0" on whole values so it still reads as a float ("2.0",
/// "0.1", "1e-07"), and "nan", "inf", "-inf" for the rest.
std::string float_repr(double value);

/// `float_repr` in YAML's spelling: ".nan", ".inf" and "-.inf" for the values
/// that are not finite, so that a YAML reader gets a float back.
std::string yaml_float(double value);

}  // namespace sparsity
