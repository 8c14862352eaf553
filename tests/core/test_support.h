#pragma once

// Shared fixtures of the core tests.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "sparsity/sparsity.h"

namespace sparsity::testing {

/// The reference test-suite's ImplementedSparsifier: zeroes row 0 of every mask
/// and counts its steps in the per-name state.
class ImplementedSparsifier : public BaseDataSparsifier {
 public:
  explicit ImplementedSparsifier(Config defaults = {}) : BaseDataSparsifier(std::move(defaults)) {}

  bool saw_grad_mode = false;

 protected:
  void update_mask(const std::string& name, const at::Tensor& data, const Config&) override {
    saw_grad_mode = saw_grad_mode || at::GradMode::is_enabled();
    EXPECT_TRUE(data.defined());
    at::Tensor mask = get_mask(name);
    mask[0] = 0;
    Config& s = state(name);
    s.set("step_count", s.get_or<int64_t>("step_count", 0) + 1);
  }
};

/// The message of the exception of type E that `fn` throws; a test failure if
/// it throws nothing or something else.
template <class E = std::exception, class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                                                  \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                         \
      << "'" << (haystack) << "' does not contain '" << (needle) << "'"

/// Captures what sparsity logs while alive.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)) {
    logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() const { return stream_.str(); }
  int count(const std::string& needle) const {
    const std::string all = text();
    int n = 0;
    for (size_t pos = all.find(needle); pos != std::string::npos; pos = all.find(needle, pos + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

/// Whether this build runs under AddressSanitizer, which replaces malloc
/// (glibc's mallopt has no effect) and keeps freed memory in quarantine
/// (resident memory is no measure of leaks).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

/// Runs `command` through the shell; returns its exit status and its output
/// (stdout; append 2>&1 to the command for stderr too).
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  return {pclose(pipe), output};
}

/// The exit code of a `run_command` status, or -1 when the command did not exit.
inline int exit_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

/// The bytes of a file ("" when it cannot be read).
inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// Writes `bytes` to `path`, replacing it.
inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

/// A fresh, empty directory for files a test writes.
inline std::filesystem::path scratch_dir(const std::string& test_name) {
  const char* root = std::getenv("SPARSITY_TEST_TMPDIR");
  std::filesystem::path dir = std::filesystem::path(root ? root : std::filesystem::temp_directory_path().string()) /
                              ("sparsity_" + test_name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The kinds of data a sparsifier accepts.
enum class DataKind { Tensor, Parameter, Embedding, EmbeddingBag };

inline std::string kind_name(const ::testing::TestParamInfo<DataKind>& info) {
  switch (info.param) {
    case DataKind::Tensor: return "Tensor";
    case DataKind::Parameter: return "Parameter";
    case DataKind::Embedding: return "Embedding";
    case DataKind::EmbeddingBag: return "EmbeddingBag";
  }
  return "?";
}

/// One piece of data of some kind, with the tensor the sparsifier should hold.
struct Datum {
  DataKind kind;
  at::Tensor weight;
  torch::nn::Embedding embedding{nullptr};
  torch::nn::EmbeddingBag bag{nullptr};

  at::Tensor add_to(BaseDataSparsifier& s, const std::string& name, const Config& config = {},
                    bool reuse_mask = true) const {
    switch (kind) {
      case DataKind::Embedding: return s.add_data(name, embedding, config, reuse_mask);
      case DataKind::EmbeddingBag: return s.add_data(name, bag, config, reuse_mask);
      default: return s.add_data(name, weight, config, reuse_mask);
    }
  }
};

inline Datum make_datum(DataKind kind, int64_t rows, int64_t cols) {
  Datum d{kind, {}};
  switch (kind) {
    case DataKind::Tensor: d.weight = torch::randn({rows, cols}); break;
    case DataKind::Parameter: d.weight = torch::randn({rows, cols}).requires_grad_(); break;
    case DataKind::Embedding:
      d.embedding = torch::nn::Embedding(rows, cols);
      d.weight = d.embedding->weight;
      break;
    case DataKind::EmbeddingBag:
      d.bag = torch::nn::EmbeddingBag(rows, cols);
      d.weight = d.bag->weight;
      break;
  }
  return d;
}

}  // namespace sparsity::testing
