#pragma once

// metrics.csv in the format of Lightning's CSVLogger: a header with the keys of
// all rows (here `epoch,step` first, then the others sorted), one row per
// epoch, an empty cell where a row lacks a key.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sparsity::detail {

/// One epoch's row of metrics.csv.
struct MetricsRow {
  int64_t epoch = 0;
  int64_t step = 0;
  std::map<std::string, double> values;

  bool operator==(const MetricsRow& other) const {
    return epoch == other.epoch && step == other.step && values == other.values;
  }
};

/// The whole text of metrics.csv for `rows`.
std::string metrics_csv(const std::vector<MetricsRow>& rows);
/// Writes metrics.csv for `rows` into `output_dir`, atomically: a reader (or
/// a run that dies meanwhile) never leaves half a file. An empty `output_dir`
/// (the Trainer's "write nothing") writes nothing.
void write_metrics_csv(const std::string& output_dir, const std::vector<MetricsRow>& rows);

}  // namespace sparsity::detail
