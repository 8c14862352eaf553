#include "sparsity/plugin/model_state.h"

#include <fmt/format.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/nn/module.h>

#include <stdexcept>

#include "training_state.h"
#include "sparsity/file_io.h"
#include "sparsity/message_text.h"
#include "sparsity/state_file.h"

namespace sparsity {

void save_model_state(const torch::nn::Module& model, const std::string& path) {
  write_file_atomically(path, torch::jit::pickle_save(detail::model_state(model)));
}

void load_model_state(torch::nn::Module& model, const std::string& path) {
  const std::vector<char> bytes = read_file(path);
  c10::IValue state;
  try {
    state = checked_pickle_load(bytes);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("'{}' is not a model state file: {}", path, error_text(e)));
  }
  try {
    detail::load_model_state(model, state);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot load '{}': {}", path, error_text(e)));
  }
}

}  // namespace sparsity
