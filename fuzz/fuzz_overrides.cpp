// Command-line overrides (one per input line) applied to a small config.
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> overrides;
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  try {
    sparsity::demo::parse_run_config("seed: 1\ntrainer: {epochs: 2}\nmodel: {hidden: [8]}\n", "fuzz.yaml", overrides);
  } catch (const std::exception&) {
  }
  return 0;
}
