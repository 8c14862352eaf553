#include "progress_line.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace sparsity::detail {

namespace {

int digits(int64_t n) {
  int d = 1;
  while (n >= 10) n /= 10, ++d;
  return d;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?:??";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}

std::string format_progress_line(const ProgressState& state) {
  // One space more than the count needs: "[ 120/938]".
  const int width = digits(state.num_batches) + 1;
  return fmt::format("epoch {}/{} [{:>{}}/{}] loss {:.4f}  {:.0f} samples/s  ETA {}", state.epoch + 1,
                     state.max_epochs, state.batches_done, width, state.num_batches, state.loss,
                     state.samples_per_second, format_duration(state.eta_seconds));
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressLine::ProgressLine(bool live, int64_t epoch, int64_t max_epochs, int64_t num_batches)
    : live_(live), start_(Clock::now()), last_draw_(start_) {
  state_.epoch = epoch;
  state_.max_epochs = max_epochs;
  state_.num_batches = num_batches;
}

ProgressLine::~ProgressLine() { clear(); }

double ProgressLine::elapsed_seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void ProgressLine::update(int64_t batches_done, int64_t samples_done, double mean_loss) {
  if (!live_) return;
  const Clock::time_point now = Clock::now();
  const bool last = batches_done >= state_.num_batches;
  if (drawn_ && !last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  state_.batches_done = batches_done;
  state_.loss = mean_loss;
  state_.samples_per_second = elapsed > 0 ? static_cast<double>(samples_done) / elapsed : 0.0;
  state_.eta_seconds =
      batches_done > 0 ? elapsed / static_cast<double>(batches_done) * static_cast<double>(state_.num_batches - batches_done)
                       : 0.0;
  // "\r" back to the start, the line, then erase whatever a longer earlier line left.
  const std::string line = "\r" + format_progress_line(state_) + "\x1b[K";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  drawn_ = true;
  last_draw_ = now;
}

void ProgressLine::clear() {
  if (!live_ || !drawn_) return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace sparsity::detail
