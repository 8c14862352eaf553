#include "default_paths.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <ctime>
#include <filesystem>

namespace sparsity::demo {

std::string default_config_path() {
  const std::string local = "configs/default.yaml";
  if (std::filesystem::exists(local)) return local;
  const std::string installed = std::string(SPARSITY_DEMO_INSTALLED_CONFIG_DIR) + "/default.yaml";
  if (std::filesystem::exists(installed)) return installed;
  return local;  // the error then names the path a user would expect
}

std::string default_output_dir(const std::string& config_path) {
  const std::time_t now = std::time(nullptr);
  return fmt::format("runs/{}-{:%Y%m%d-%H%M%S}", std::filesystem::path(config_path).stem().string(),
                     fmt::localtime(now));
}

}  // namespace sparsity::demo
