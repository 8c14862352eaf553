#pragma once
// Where trainer_demo looks for things it is not told about.

#include <string>

namespace sparsity::demo {

/// Where Debian's `dataset-fashion-mnist` installs its files: the data
/// directory of `source: fashion-mnist`.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// `configs/default.yaml` when it exists under the working directory (a
/// source checkout), else the copy `cmake --install` put under
/// share/sparsity/configs of the prefix the executable runs from.
std::string default_config_path();

/// `runs/<config name>-<YYYYmmdd-HHMMSS>` for a config file path.
std::string default_output_dir(const std::string& config_path);

}  // namespace sparsity::demo
