#pragma once

// The Trainer's live progress line on a terminal:
//   epoch 2/5 [ 120/938] loss 0.4123  1830 samples/s  ETA 0:03
// redrawn in place with '\r' on stderr.

#include <chrono>
#include <cstdint>
#include <string>

namespace sparsity::detail {

/// What one progress line shows. `epoch` is 0-based and shown 1-based.
struct ProgressState {
  int64_t epoch = 0;
  int64_t max_epochs = 1;
  int64_t batches_done = 0;
  int64_t num_batches = 0;
  double loss = 0.0;
  double samples_per_second = 0.0;
  double eta_seconds = 0.0;
};

/// "epoch 2/5 [ 120/938] loss 0.4123  1830 samples/s  ETA 0:03".
std::string format_progress_line(const ProgressState& state);

/// "0:03", "12:34", "1:02:03": minutes and seconds, hours when there are any.
std::string format_duration(double seconds);

/// Whether stderr is a terminal.
bool stderr_is_terminal();

/// The live line of one epoch. Does nothing when not `live`. Redraws at most
/// ten times a second (and always on the epoch's last batch); `clear()` and the
/// destructor erase it so that log lines start at the beginning of a line.
class ProgressLine {
 public:
  ProgressLine(bool live, int64_t epoch, int64_t max_epochs, int64_t num_batches);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// After `batches_done` batches holding `samples_done` examples, with the
  /// epoch's mean loss so far.
  void update(int64_t batches_done, int64_t samples_done, double mean_loss);
  void clear();
  /// Seconds since construction.
  double elapsed_seconds() const;

 private:
  using Clock = std::chrono::steady_clock;
  bool live_;
  bool drawn_ = false;
  ProgressState state_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
};

}  // namespace sparsity::detail
