#include "demo_data.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <filesystem>

#include "default_paths.h"
#include "sparsity/plugin/idx_reader.h"

namespace sparsity::demo {

namespace {

// Synthetic examples as a function of (seed, split) only, so train and test
// draw different noise from the same prototypes.
std::pair<at::Tensor, at::Tensor> synthetic_split(const at::Tensor& prototypes, int64_t size, double noise,
                                                  at::Generator& generator) {
  const int64_t classes = prototypes.size(0);
  at::Tensor labels = at::arange(size, at::kLong).remainder(classes);
  at::Tensor inputs = prototypes.index_select(0, labels) +
                      at::normal(0.0, noise, {size, 1, prototypes.size(2), prototypes.size(3)}, generator);
  return {inputs, labels};
}

/// The images file read_mnist_directory reads for a split (the plain file
/// wins over the .gz one), for messages.
std::string images_file(const std::string& dir, bool train) {
  const std::string name = std::string(train ? "train" : "t10k") + "-images-idx3-ubyte";
  std::error_code ec;
  const std::filesystem::path plain = std::filesystem::path(dir) / name;
  return std::filesystem::exists(plain, ec) ? plain.string() : plain.string() + ".gz";
}

/// Throws, saying how to get the data, unless `dir` holds the four IDX files
/// (each plain or .gz) that read_mnist_directory reads.
void require_mnist_files(const std::string& dir) {
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"}) {
    std::error_code ec;
    const std::filesystem::path plain = std::filesystem::path(dir) / name;
    if (std::filesystem::exists(plain, ec) || std::filesystem::exists(plain.string() + ".gz", ec)) continue;
    const std::string where = std::filesystem::is_directory(dir, ec)
                                  ? fmt::format("no {0} or {0}.gz in '{1}'", name, dir)
                                  : fmt::format("'{0}' is not a directory (looked for {1} or {1}.gz)", dir, name);
    throw std::runtime_error(fmt::format(
        "MNIST data: {}. Fashion-MNIST is Debian's dataset-fashion-mnist package: install it with `sudo apt-get "
        "install dataset-fashion-mnist` (or scripts/setup.sh), which puts its files under {}/; or point "
        "data.directory at another MNIST-format IDX directory (data.source: idx); or switch to the synthetic data "
        "set (data.source: synthetic)",
        where, kFashionMnistDir));
  }
}

}  // namespace

DemoData make_synthetic_data(const SyntheticDataConfig& config, uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t s = config.image_size;
  at::Tensor prototypes = at::normal(0.0, 1.0, {config.classes, 1, s, s}, generator);
  DemoData data;
  std::tie(data.train_inputs, data.train_targets) =
      synthetic_split(prototypes, config.train_size, config.noise, generator);
  std::tie(data.test_inputs, data.test_targets) =
      synthetic_split(prototypes, config.test_size, config.noise, generator);
  data.classes = config.classes;
  return data;
}

DemoData load_demo_data(const DataConfig& config, uint64_t seed) {
  DemoData data;
  std::string name;
  if (config.source == "synthetic") {
    data = make_synthetic_data(config.synthetic, seed);
    name = fmt::format("synthetic ({} classes, {}x{} images)", config.synthetic.classes,
                       config.synthetic.image_size, config.synthetic.image_size);
  } else {
    const std::string dir = config.directory.empty() ? std::string(kFashionMnistDir) : config.directory;
    require_mnist_files(dir);
    MnistSplit train = read_mnist_directory(dir, /*train=*/true);
    MnistSplit test = read_mnist_directory(dir, /*train=*/false);
    // The model's input size follows the training images; test images of
    // another size would fail only in the final evaluation, after training.
    if (train.images.sizes().slice(1) != test.images.sizes().slice(1)) {
      throw std::runtime_error(fmt::format(
          "MNIST data: the test images '{}' are {}x{} but the training images '{}' are {}x{}; the model's input "
          "size follows the training images, so every split must have it",
          images_file(dir, false), test.images.size(2), test.images.size(3), images_file(dir, true),
          train.images.size(2), train.images.size(3)));
    }
    data.train_inputs = train.images;
    data.train_targets = train.labels;
    data.test_inputs = test.images;
    data.test_targets = test.labels;
    data.classes = 10;
    name = fmt::format("{} ({})", config.source == "fashion-mnist" ? "Fashion-MNIST" : "IDX data", dir);
  }

  if (config.train_limit > 0 && config.train_limit < data.train_inputs.size(0)) {
    data.train_inputs = data.train_inputs.narrow(0, 0, config.train_limit);
    data.train_targets = data.train_targets.narrow(0, 0, config.train_limit);
  }

  const int64_t n = data.train_inputs.size(0);
  const auto held_out = static_cast<int64_t>(static_cast<double>(n) * config.validation_split);
  if (held_out >= n) {
    throw std::runtime_error(fmt::format("validation_split {} leaves no training examples out of {}",
                                         config.validation_split, n));
  }
  if (held_out > 0) {
    // A seeded permutation rather than the last rows: files sorted by class
    // would otherwise leave classes out of the training split.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
    at::Tensor order = at::randperm(n, generator, at::kLong);
    at::Tensor train_rows = order.narrow(0, 0, n - held_out);
    at::Tensor validation_rows = order.narrow(0, n - held_out, held_out);
    data.validation_inputs = data.train_inputs.index_select(0, validation_rows);
    data.validation_targets = data.train_targets.index_select(0, validation_rows);
    data.train_inputs = data.train_inputs.index_select(0, train_rows);
    data.train_targets = data.train_targets.index_select(0, train_rows);
  }
  data.description = fmt::format("{}: {} train, {} validation, {} test", name, data.train_inputs.size(0),
                                 held_out, data.test_inputs.size(0));
  return data;
}

}  // namespace sparsity::demo
