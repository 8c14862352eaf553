#include "default_paths.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <ctime>
#include <filesystem>

namespace sparsity::demo {

std::string default_config_path() {
  const std::string local = "configs/default.yaml";
  if (std::filesystem::exists(local)) return local;
  // Installed: bin/trainer_demo next to share/sparsity/configs, wherever the
  // prefix was chosen (configure time or `cmake --install --prefix`).
  std::error_code error;
  const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    const auto installed = executable.parent_path().parent_path() / SPARSITY_DEMO_CONFIG_SUBDIR / "default.yaml";
    if (std::filesystem::exists(installed)) return installed.string();
  }
  return local;  // the error then names the path a user would expect
}

std::string default_output_dir(const std::string& config_path) {
  const std::time_t now = std::time(nullptr);
  return fmt::format("runs/{}-{:%Y%m%d-%H%M%S}", std::filesystem::path(config_path).stem().string(),
                     fmt::localtime(now));
}

}  // namespace sparsity::demo
