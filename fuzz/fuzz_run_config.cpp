// The YAML run-config parser of trainer_demo: any text is a RunConfig or an
// exception, never a crash, a hang or undefined behaviour.
#include <cstdint>
#include <exception>
#include <string>

#include "run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    sparsity::demo::parse_run_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const std::exception&) {
  }
  return 0;
}
