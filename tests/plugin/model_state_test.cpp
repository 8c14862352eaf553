// save_model_state / load_model_state.
#include <torch/torch.h>

#include <fstream>

#include "../core/test_support.h"
#include "sparsity/plugin.h"

namespace sparsity {
namespace {

namespace fs = std::filesystem;

torch::nn::Sequential small_net() {
  return torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4), torch::nn::Linear(4, 2));
}

TEST(ModelState, RoundTripsParametersAndBuffers) {
  const fs::path dir = testing::scratch_dir("ModelStateRoundTrip");
  torch::manual_seed(0);
  auto saved = small_net();
  saved->forward(torch::randn({5, 3}));  // moves the BatchNorm running statistics
  save_model_state(*saved, (dir / "m.pt").string());

  torch::manual_seed(1);
  auto loaded = small_net();
  load_model_state(*loaded, (dir / "m.pt").string());
  for (const auto& item : saved->named_parameters())
    EXPECT_TRUE(item.value().equal(loaded->named_parameters()[item.key()])) << item.key();
  for (const auto& item : saved->named_buffers())
    EXPECT_TRUE(item.value().equal(loaded->named_buffers()[item.key()])) << item.key();
  // No temporary file is left behind by the atomic write.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(ModelState, MismatchesAndBadFilesNameThePathAndLeaveTheModelAlone) {
  const fs::path dir = testing::scratch_dir("ModelStateErrors");
  auto saved = torch::nn::Sequential(torch::nn::Linear(3, 4));
  save_model_state(*saved, (dir / "m.pt").string());

  auto other = torch::nn::Sequential(torch::nn::Linear(3, 5));
  const at::Tensor before = other->named_parameters()["0.weight"].clone();
  const std::string message =
      testing::error_of<std::runtime_error>([&] { load_model_state(*other, (dir / "m.pt").string()); });
  EXPECT_CONTAINS(message, "m.pt");
  EXPECT_CONTAINS(message, "'0.weight' has shape [4, 3] in the checkpoint but [5, 3] in the model");
  EXPECT_TRUE(other->named_parameters()["0.weight"].equal(before));

  std::ofstream(dir / "garbage.pt") << "not a zip archive";
  EXPECT_CONTAINS(testing::error_of<std::runtime_error>(
                      [&] { load_model_state(*saved, (dir / "garbage.pt").string()); }),
                  "garbage.pt' is not a model state file");
  EXPECT_CONTAINS(testing::error_of<std::runtime_error>(
                      [&] { load_model_state(*saved, (dir / "missing.pt").string()); }),
                  "missing.pt");
}

TEST(ModelState, PythonLoadsItAsAStateDict) {
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch (scripts/setup.sh installs python3-torch)";
  const fs::path dir = testing::scratch_dir("ModelStatePython");
  torch::manual_seed(0);
  auto net = torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::ReLU(), torch::nn::Linear(4, 2));
  save_model_state(*net, (dir / "m.pt").string());
  const std::string command =
      "/usr/bin/python3 -c \"import sys, torch; m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), "
      "torch.nn.Linear(4, 2)); m.load_state_dict(torch.load(sys.argv[1])); "
      "print('%.6f' % float(m(torch.ones(1, 3)).sum()))\" " +
      (dir / "m.pt").string() + " 2>&1";
  const auto [status, output] = testing::run_command(command);
  ASSERT_EQ(status, 0) << output;
  EXPECT_EQ(output, fmt::format("{:.6f}\n", net->forward(torch::ones({1, 3})).sum().item<float>()));
}

}  // namespace
}  // namespace sparsity
