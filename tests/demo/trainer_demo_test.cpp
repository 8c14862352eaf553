// trainer_demo's pieces (data, models, run plan, reports) and the executable
// end to end on configs/synthetic.yaml.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../core/test_support.h"
#include "demo_data.h"
#include "demo_model.h"
#include "demo_report.h"
#include "demo_runner.h"
#include "run_config.h"
#include "sparsity/plugin.h"
#include "sparsity/sparsity.h"

namespace sparsity::demo {
namespace {

namespace fs = std::filesystem;

const std::string kSourceDir = SPARSITY_SOURCE_DIR;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool python_has_torch() { return std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0; }

// ---------------------------------------------------------------- data

TEST(DemoData, SyntheticIsDeterministicAndBalanced) {
  SyntheticDataConfig config;
  config.train_size = 100;
  config.test_size = 40;
  config.classes = 4;
  config.image_size = 6;
  const DemoData a = make_synthetic_data(config, 3);
  const DemoData b = make_synthetic_data(config, 3);
  const DemoData c = make_synthetic_data(config, 4);
  EXPECT_EQ(a.train_inputs.sizes(), (std::vector<int64_t>{100, 1, 6, 6}));
  EXPECT_EQ(a.test_inputs.sizes(), (std::vector<int64_t>{40, 1, 6, 6}));
  EXPECT_EQ(a.train_targets.scalar_type(), at::kLong);
  EXPECT_TRUE(a.train_inputs.equal(b.train_inputs));
  EXPECT_FALSE(a.train_inputs.equal(c.train_inputs));
  EXPECT_FALSE(a.train_inputs.narrow(0, 0, 40).equal(a.test_inputs));  // fresh noise for the test split
  EXPECT_TRUE(torch::bincount(a.train_targets).equal(torch::full({4}, 25, torch::kLong)));
}

TEST(DemoData, ValidationSplitIsASeededPermutationOfTheTrainingSet) {
  DataConfig config;
  config.source = "synthetic";
  config.synthetic.train_size = 200;
  config.validation_split = 0.25;
  const DemoData data = load_demo_data(config, 7);
  EXPECT_EQ(data.train_inputs.size(0), 150);
  EXPECT_EQ(data.validation_inputs.size(0), 50);
  EXPECT_TRUE(data.has_validation());
  // Together they are the whole generated set, each example once.
  const DemoData whole = make_synthetic_data(config.synthetic, 7);
  const at::Tensor joined = std::get<0>(torch::cat({data.train_inputs, data.validation_inputs}).flatten(1).sum(1).sort());
  EXPECT_TRUE(torch::allclose(joined, std::get<0>(whole.train_inputs.flatten(1).sum(1).sort())));
  EXPECT_EQ(data.description, "synthetic (4 classes, 8x8 images): 150 train, 50 validation, 512 test");

  config.validation_split = 0.0;
  config.train_limit = 60;
  const DemoData limited = load_demo_data(config, 7);
  EXPECT_EQ(limited.train_inputs.size(0), 60);
  EXPECT_FALSE(limited.has_validation());
}

TEST(DemoData, MissingIdxDirectoryExplainsWhatToDo) {
  DataConfig config;
  config.source = "idx";
  config.directory = (testing::scratch_dir("DemoDataMissing") / "nowhere").string();
  const std::string message = testing::error_of<std::runtime_error>([&] { load_demo_data(config, 0); });
  EXPECT_CONTAINS(message, config.directory);
  EXPECT_CONTAINS(message, "dataset-fashion-mnist");
  EXPECT_CONTAINS(message, "synthetic");
}

TEST(DemoData, ReadsAnIdxDirectory) {
  const fs::path dir = testing::scratch_dir("DemoDataIdx");
  // Tiny MNIST-format files: 6 train and 2 test images of 2x3 pixels.
  auto write_idx = [&](const std::string& name, std::vector<uint8_t> dims_header, const std::vector<uint8_t>& data) {
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(dims_header.data()), static_cast<std::streamsize>(dims_header.size()));
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  };
  auto images = [](int n) {
    std::vector<uint8_t> header{0, 0, 8, 3, 0, 0, 0, static_cast<uint8_t>(n), 0, 0, 0, 2, 0, 0, 0, 3};
    return header;
  };
  auto labels = [](int n) { return std::vector<uint8_t>{0, 0, 8, 1, 0, 0, 0, static_cast<uint8_t>(n)}; };
  write_idx("train-images-idx3-ubyte", images(6), std::vector<uint8_t>(36, 255));
  write_idx("train-labels-idx1-ubyte", labels(6), {0, 1, 2, 3, 4, 5});
  write_idx("t10k-images-idx3-ubyte", images(2), std::vector<uint8_t>(12, 0));
  write_idx("t10k-labels-idx1-ubyte", labels(2), {7, 9});
  DataConfig config;
  config.source = "idx";
  config.directory = dir.string();
  config.validation_split = 0.5;
  const DemoData data = load_demo_data(config, 0);
  EXPECT_EQ(data.train_inputs.sizes(), (std::vector<int64_t>{3, 1, 2, 3}));
  EXPECT_EQ(data.validation_inputs.size(0), 3);
  EXPECT_TRUE(data.test_targets.equal(torch::tensor({7, 9}, torch::kLong)));
  EXPECT_FLOAT_EQ(data.train_inputs.max().item<float>(), 1.0f);
  EXPECT_EQ(data.classes, 10);
}

// ---------------------------------------------------------------- models

TEST(DemoModel, MlpAndCnnShapes) {
  ModelConfig mlp;
  mlp.hidden = {20, 10};
  auto net = build_model(mlp, {1, 8, 8}, 4, 0);
  EXPECT_EQ(net->forward(torch::zeros({5, 1, 8, 8})).sizes(), (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(net->size(), 6u);  // Flatten, Linear, ReLU, Linear, ReLU, Linear

  ModelConfig cnn;
  cnn.type = "cnn";
  cnn.channels = {4, 6};
  cnn.hidden = {12};
  auto conv = build_model(cnn, {1, 28, 28}, 10, 0);
  EXPECT_EQ(conv->forward(torch::zeros({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(conv->named_parameters()["7.weight"].sizes(), (std::vector<int64_t>{12, 6 * 7 * 7}));

  cnn.channels = {4, 4, 4};
  const std::string message = testing::error_of<std::invalid_argument>([&] { build_model(cnn, {1, 4, 4}, 2, 0); });
  EXPECT_CONTAINS(message, "3 pooling stages are too many for 4x4 inputs");
}

TEST(DemoModel, LossyLayersKeepTheSameInitialWeights) {
  ModelConfig config;
  config.hidden = {16, 8};
  config.lossy = LossyLayersConfig{};
  config.lossy->eps = 0.0;
  auto collector = std::make_shared<ActivationCollector>();
  auto dense = build_model(config, {1, 4, 4}, 3, 11);
  auto lossy = build_model(config, {1, 4, 4}, 3, 11, /*with_lossy_layers=*/true, collector);
  EXPECT_EQ(sparsifier_layers(*lossy).size(), 2u);  // the output layer has none
  auto dense_params = dense->parameters();
  std::vector<at::Tensor> lossy_weights;
  for (const auto& item : lossy->named_parameters())
    if (item.key().find("eps") == std::string::npos) lossy_weights.push_back(item.value());
  ASSERT_EQ(dense_params.size(), lossy_weights.size());
  for (size_t i = 0; i < dense_params.size(); ++i) EXPECT_TRUE(dense_params[i].equal(lossy_weights[i])) << i;

  // ε = 0 passes everything through: same outputs; the collector sees 2 layers.
  const at::Tensor x = torch::randn({4, 1, 4, 4});
  EXPECT_TRUE(torch::allclose(dense->forward(x), lossy->forward(x), 1e-5, 1e-6));
  EXPECT_EQ(collector->activations().size(), 2u);

  config.lossy.reset();
  EXPECT_CONTAINS(testing::error_of<std::invalid_argument>([&] { build_model(config, {1, 4, 4}, 3, 0, true); }),
                  "no 'lossy' section");
}

TEST(DemoModel, ResnetFillsItsSlotsWithTheSameInitialWeights) {
  ModelConfig config;
  config.type = "resnet";
  config.channels = {4, 8};
  config.blocks = 2;
  config.lossy = LossyLayersConfig{};
  auto dense = build_model(config, {1, 8, 8}, 3, 5);
  EXPECT_EQ(dense->forward(torch::randn({2, 1, 8, 8})).sizes(), (std::vector<int64_t>{2, 3}));
  // stem, 2 blocks of 4 -> 4, then 4 -> 8 (stride 2, a shortcut) and 8 -> 8, the classifier.
  // 0-4 the stem (8x8 -> 4x4), 5-8 the blocks (-> 2x2 from 7 on), 9 Flatten, 10 the classifier.
  EXPECT_TRUE(dense->named_parameters().contains("7.shortcut.0.weight"));
  EXPECT_FALSE(dense->named_parameters().contains("8.shortcut.0.weight"));
  EXPECT_FALSE(dense->named_parameters().contains("5.shortcut.0.weight"));
  EXPECT_EQ(dense->named_parameters()["10.weight"].sizes(), (std::vector<int64_t>{3, 8 * 2 * 2}));
  // 28x28: 14x14, then 7x7 and 4x4 (rounding up).
  ModelConfig wide = config;
  wide.channels = {2, 3, 5};
  wide.blocks = 1;
  auto three = build_model(wide, {1, 28, 28}, 10, 0);
  EXPECT_EQ(three->named_parameters()["9.weight"].sizes(), (std::vector<int64_t>{10, 5 * 4 * 4}));
  EXPECT_EQ(three->forward(torch::zeros({1, 1, 28, 28})).sizes(), (std::vector<int64_t>{1, 10}));
  EXPECT_CONTAINS(testing::error_of<std::invalid_argument>([&] { build_model(wide, {1, 1, 3}, 2, 0); }),
                  "a resnet needs images of at least 2x2, got 1x3");
  EXPECT_TRUE(sparsifier_layers(*dense).empty());

  auto collector = std::make_shared<ActivationCollector>();
  auto lossy = build_model(config, {1, 8, 8}, 3, 5, /*with_lossy_layers=*/true, collector);
  EXPECT_EQ(sparsifier_layers(*lossy).size(), 1u + 4 * 2);  // the stem's slot, two per block
  EXPECT_TRUE(lossy->named_parameters().contains("7.act1.sparse.eps"));
  for (const auto& item : dense->named_parameters()) {
    EXPECT_TRUE(item.value().equal(lossy->named_parameters()[item.key()])) << item.key();
  }
  // ε = 0 passes everything: the same outputs; every slot records in training mode.
  const at::Tensor x = torch::randn({4, 1, 8, 8});
  EXPECT_TRUE(torch::allclose(dense->forward(x), lossy->forward(x), 1e-4, 1e-5));
  EXPECT_EQ(collector->activations().size(), 9u);
  // The copy the callbacks evaluate keeps the filled slots and the weights.
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(lossy->clone());
  ASSERT_TRUE(copy);
  EXPECT_EQ(sparsifier_layers(*copy).size(), 9u);
  lossy->eval();
  copy->eval();
  EXPECT_TRUE(torch::equal(copy->forward(x), lossy->forward(x)));
  std::ostringstream printed;
  printed << *lossy;
  EXPECT_CONTAINS(printed.str(), "(5): BasicBlock(4, 4, stride=1)");
  EXPECT_CONTAINS(printed.str(), "(act1): sparsity::Sparsified(");

  config.channels.clear();
  EXPECT_THROW(build_model(config, {1, 8, 8}, 3, 5), std::out_of_range);
}

TEST(DemoModel, ClassifierModuleLossesAndAccuracy) {
  ModelConfig config;
  config.hidden = {};
  auto net = build_model(config, {1, 1, 2}, 2, 0);
  {
    torch::NoGradGuard no_grad;
    auto linear = net[1]->as<torch::nn::Linear>();
    linear->weight.copy_(torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}}));
    linear->bias.zero_();
  }
  const at::Tensor x = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 3.0f, 2.0f}).view({3, 1, 1, 2});
  const at::Tensor y = torch::tensor({0, 1, 1}, torch::kLong);
  EXPECT_DOUBLE_EQ(classification_accuracy(*net, x, y, 2), 2.0 / 3.0);

  ClassifierModule module(net, OptimizerConfig{});
  auto out = module.validation_step({x, y});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->correct.value(), 2);
  EXPECT_NEAR(out->loss.item<double>(), torch::nn::functional::cross_entropy(net->forward(x), y).item<double>(), 1e-7);

  OptimizerConfig sgd;
  sgd.type = "sgd";
  sgd.lr = 0.5;
  sgd.momentum = 0.9;
  auto optimizer = ClassifierModule(net, sgd).configure_optimizers();
  auto* as_sgd = dynamic_cast<torch::optim::SGD*>(optimizer.get());
  ASSERT_NE(as_sgd, nullptr);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::SGDOptions&>(as_sgd->param_groups()[0].options()).momentum(), 0.9);
  EXPECT_NE(dynamic_cast<torch::optim::Adam*>(module.configure_optimizers().get()), nullptr);
}

TEST(DemoModel, LossyRunLossAddsThePenalty) {
  ModelConfig config;
  config.hidden = {6};
  config.lossy = LossyLayersConfig{};
  config.lossy->penalty = "L1";
  config.lossy->penalty_weight = 0.5;
  auto collector = std::make_shared<ActivationCollector>();
  auto net = build_model(config, {1, 2, 2}, 3, 5, true, collector);
  ClassifierModule module(net, OptimizerConfig{}, collector, make_sparse_loss(*config.lossy));
  const at::Tensor x = torch::randn({8, 1, 2, 2});
  const at::Tensor y = torch::randint(0, 3, {8}, torch::kLong);
  const double loss = module.training_step({x, y}).item<double>();
  ASSERT_EQ(collector->activations().size(), 1u);
  const at::Tensor a = collector->activations()[0];
  const double expected = torch::nn::functional::cross_entropy(net->forward(x), y).item<double>() +
                          0.5 * a.abs().sum().item<double>() / static_cast<double>(a.numel());
  EXPECT_NEAR(loss, expected, 1e-5);
}

// ---------------------------------------------------------------- plan and reports

TEST(DemoRunner, PlanTrainsTheBaselineAndOneRunPerModelChangingCallback) {
  RunConfig config;
  auto add = [&](const std::string& name, bool changes_model, bool lossy) {
    CallbackConfig c;
    c.name = name;
    c.changes_trained_model = changes_model;
    c.needs_lossy_layers = lossy;
    config.callbacks.push_back(c);
  };
  add("post", false, false);
  add("aware_live", true, false);
  add("aware_copy", false, false);
  add("lossy", true, true);
  const auto runs = plan_runs(config);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].name, "dense");
  ASSERT_EQ(runs[0].callbacks.size(), 2u);
  EXPECT_EQ(runs[0].callbacks[0]->name, "post");
  EXPECT_EQ(runs[0].callbacks[1]->name, "aware_copy");
  EXPECT_FALSE(runs[0].lossy_layers);
  EXPECT_EQ(runs[1].name, "aware_live");
  EXPECT_FALSE(runs[1].lossy_layers);
  EXPECT_EQ(runs[2].name, "lossy");
  EXPECT_TRUE(runs[2].lossy_layers);
}

TEST(DemoReport, SummaryJsonHasExactlyTheDocumentedKeys) {
  DemoResult result;
  result.wall_seconds = 12.5;
  ModelResult dense;
  dense.name = "dense";
  dense.test_accuracy = 0.875;
  ModelResult post;
  post.name = "post";
  post.callback_type = "PostTrainingDataSparsity";
  post.test_accuracy = 0.86;
  post.weight_sparsity = 0.8;
  ModelResult lossy;
  lossy.name = "lossy";
  lossy.callback_type = "LossySparsifierCallback";
  lossy.test_accuracy = 0.5;
  lossy.activation_sparsity = 0.75;
  lossy.activation_dense_bytes = 4000;
  lossy.activation_sparse_bytes = 1500;
  dense.compact_bytes = 4000;
  post.compact_bytes = 1500;
  post.dense_inference_ms = 0.5;
  post.sparse_inference_ms = 0.25;
  result.models = {dense, post, lossy};
  EXPECT_EQ(summary_json(result),
            "{\n"
            "  \"dense_test_accuracy\": 0.875,\n"
            "  \"dense_compact_bytes\": 4000,\n"
            "  \"sparsified\": [\n"
            "    {\"callback\": \"post\", \"test_accuracy\": 0.86, \"weight_sparsity\": 0.8, \"compact_bytes\": 1500, "
            "\"inference_speedup\": 2.0},\n"
            "    {\"callback\": \"lossy\", \"test_accuracy\": 0.5, \"weight_sparsity\": 0.0, "
            "\"activation_sparsity\": 0.75, \"activation_dense_bytes\": 4000, \"activation_sparse_bytes\": 1500, "
            "\"compact_bytes\": 0, \"inference_speedup\": 0.0}\n"
            "  ],\n"
            "  \"world_size\": 1,\n"
            "  \"wall_seconds\": 12.5\n"
            "}\n");
  result.models = {dense};
  result.models[0].test_accuracy = std::nan("");
  EXPECT_EQ(summary_json(result), "{\n  \"dense_test_accuracy\": null,\n  \"dense_compact_bytes\": 4000,\n"
                                  "  \"sparsified\": [],\n  \"world_size\": 1,\n  \"wall_seconds\": 12.5\n}\n");

  // With activations measured, the dense model's sparsity at the same places.
  ModelResult measured_dense = dense;
  measured_dense.test_accuracy = 0.875;
  measured_dense.activation_sparsity = 0.25;
  result.models = {measured_dense, lossy};
  EXPECT_CONTAINS(summary_json(result), "  \"dense_compact_bytes\": 4000,\n  \"dense_activation_sparsity\": 0.25,\n");

  const std::string table = format_result_table(DemoResult{{dense, post, lossy}, 1.0, ""});
  EXPECT_CONTAINS(table, "act. bytes/sparse");
  EXPECT_CONTAINS(table, "4.0 kB/1.5 kB");
  EXPECT_CONTAINS(table, "act. sparsity");
  EXPECT_CONTAINS(table, "-1.50 pt");
  EXPECT_CONTAINS(table, "80.00%");
  EXPECT_CONTAINS(table, "compact");
  EXPECT_CONTAINS(table, "1.5 kB");
  EXPECT_CONTAINS(table, "0.500      0.250    2.00x");
}

TEST(DemoReport, ActivationTableListsEachPlaceForEachMeasuredModel) {
  ModelResult dense;
  dense.name = "dense";
  dense.activation_sparsity = 0.1;
  dense.activation_layers = {{"stem", 1, 10, 2, 40, 38}, {"stage1_0.conv1", 0, 10, 0, 40, 42}};
  dense.activation_dense_bytes = 80;
  dense.activation_sparse_bytes = 80;
  ModelResult post;
  post.name = "post";
  post.callback_type = "PostTrainingDataSparsity";
  ModelResult lossy;
  lossy.name = "lossy";
  lossy.callback_type = "LossySparsifierCallback";
  lossy.activation_sparsity = 0.65;
  lossy.activation_layers = {{"stem", 5, 10, 6, 40, 22}, {"stage1_0.conv1", 8, 10, 8, 40, 10}};
  lossy.activation_dense_bytes = 80;
  lossy.activation_sparse_bytes = 32;
  EXPECT_EQ(format_activation_table(DemoResult{{post}, 1.0, ""}), "");
  const std::string table = format_activation_table(DemoResult{{dense, post, lossy}, 1.0, ""});
  EXPECT_EQ(table,
            "place               dense zeros (near 0)      lossy zeros (near 0)\n"
            "stem                     10.00% (20.00%)           50.00% (60.00%)\n"
            "stage1_0.conv1             0.00% (0.00%)           80.00% (80.00%)\n"
            "total                    10.00% (10.00%)           65.00% (70.00%)\n"
            "bytes                       80 B -> 80 B              80 B -> 32 B\n");
}

TEST(DemoReport, MergesMetricsFilesWithARunColumn) {
  const fs::path dir = testing::scratch_dir("DemoReportMerge");
  std::ofstream(dir / "a.csv") << "epoch,step,train_loss\n0,10,0.5\n1,20,0.25\n";
  std::ofstream(dir / "b.csv") << "epoch,step,data_sparsity,train_loss\n0,10,0.3,0.6\n";
  const std::string merged = merge_metrics_csv(
      {{"dense", (dir / "a.csv").string()}, {"gradual", (dir / "b.csv").string()}, {"none", (dir / "c.csv").string()}});
  EXPECT_EQ(merged,
            "run,epoch,step,data_sparsity,train_loss\n"
            "dense,0,10,,0.5\n"
            "dense,1,20,,0.25\n"
            "gradual,0,10,0.3,0.6\n");
  std::ofstream(dir / "bad.csv") << "epoch,step\n0\n";
  EXPECT_CONTAINS(testing::error_of<std::runtime_error>([&] { merge_metrics_csv({{"x", (dir / "bad.csv").string()}}); }),
                  "bad.csv:2: 1 cells where the header has 2");
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(310400), "310.4 kB");
  EXPECT_EQ(human_bytes(1020000), "1.02 MB");
}

TEST(DemoReport, CompressedSizeShrinksZeros) {
  const fs::path dir = testing::scratch_dir("DemoReportCompress");
  std::ofstream(dir / "zeros", std::ios::binary) << std::string(100000, '\0');
  EXPECT_LT(compressed_size((dir / "zeros").string()), 1000);
  EXPECT_CONTAINS(testing::error_of<std::runtime_error>([&] { compressed_size((dir / "missing").string()); }),
                  "missing");
}

// ---------------------------------------------------------------- the executable

std::string demo_command(const std::string& arguments) {
  return fmt::format("cd '{}' && '{}' {} 2>&1", kSourceDir, SPARSITY_TRAINER_DEMO_PATH, arguments);
}

TEST(TrainerDemo, SyntheticRunEndToEnd) {
  const fs::path out = testing::scratch_dir("TrainerDemoSynthetic");
  const auto [status, output] = testing::run_command(demo_command(fmt::format("configs/synthetic.yaml --output '{}'", out.string())));
  ASSERT_EQ(status, 0) << output;
  EXPECT_CONTAINS(output, "== run 1/3: dense, callbacks: PostTrainingDataSparsity");
  EXPECT_CONTAINS(output, "== run 2/3: TrainingAwareDataSparsity");
  EXPECT_CONTAINS(output, "== run 3/3: LossySparsifierCallback (with lossy sparsifier layers)");
  EXPECT_CONTAINS(output, "weight sparsity");

  for (const char* file : {"config.yaml", "metrics.csv", "summary.json", "models/dense.pt",
                           "models/PostTrainingDataSparsity.pt", "models/TrainingAwareDataSparsity.pt",
                           "models/LossySparsifierCallback.pt", "models/dense.sparse.pt",
                           "models/PostTrainingDataSparsity.sparse.pt", "models/TrainingAwareDataSparsity.sparse.pt",
                           "models/LossySparsifierCallback.sparse.pt", "sparsifiers/PostTrainingDataSparsity.pt",
                           "sparsifiers/TrainingAwareDataSparsity.pt", "train/dense/metrics.csv",
                           "train/dense/checkpoint.pt", "models.csv", "layers.csv", "report.html", "sensitivity.csv",
                           "sensitivity_levels.csv"})
    EXPECT_TRUE(fs::exists(out / file)) << file;

  // The resolved config reads back to the same run.
  EXPECT_EQ(to_yaml_text(load_run_config((out / "config.yaml").string())),
            to_yaml_text(load_run_config(kSourceDir + "/configs/synthetic.yaml")));

  // models.csv: the final table, a row per model; layers.csv: each model's
  // parameters' zeros, and the activations of the dense and lossy models.
  const std::string models = read_text(out / "models.csv");
  EXPECT_EQ(models.rfind("model,callback_type,run,test_accuracy,weight_sparsity,activation_sparsity,", 0), 0u);
  EXPECT_EQ(std::count(models.begin(), models.end(), '\n'), 5) << models;
  EXPECT_NE(models.find("\nTrainingAwareDataSparsity,TrainingAwareDataSparsity,TrainingAwareDataSparsity,"),
            std::string::npos)
      << models;
  const std::string layers = read_text(out / "layers.csv");
  EXPECT_EQ(layers.rfind("model,kind,layer,zeros,elements,near_zero,dense_bytes,sparse_bytes\n", 0), 0u);
  EXPECT_NE(layers.find("\ndense,weight,1.weight,0,4096,,,\n"), std::string::npos) << layers;
  EXPECT_NE(layers.find("\nPostTrainingDataSparsity,weight,1.weight,"), std::string::npos) << layers;
  EXPECT_NE(layers.find("\ndense,activation,"), std::string::npos) << layers;
  EXPECT_NE(layers.find("\nLossySparsifierCallback,activation,"), std::string::npos) << layers;
  EXPECT_EQ(layers.find("\nTrainingAwareDataSparsity,activation,"), std::string::npos) << layers;

  // The sensitivity analysis of the dense model: 3 weights x 3 levels, and a
  // suggestion for 80% overall.
  EXPECT_CONTAINS(output, "sensitivity: accuracy on 200 images");
  const std::string sensitivity = read_text(out / "sensitivity.csv");
  EXPECT_EQ(sensitivity.rfind("layer,numel,level,metric,loss\n", 0), 0u) << sensitivity;
  EXPECT_EQ(std::count(sensitivity.begin(), sensitivity.end(), '\n'), 1 + 3 * 3) << sensitivity;
  EXPECT_NE(sensitivity.find("\n5.weight,"), std::string::npos) << sensitivity;
  const std::string suggested = read_text(out / "sensitivity_levels.csv");
  EXPECT_EQ(suggested.rfind("layer,numel,level,predicted_loss\n", 0), 0u) << suggested;
  EXPECT_NE(suggested.find("\ntotal,"), std::string::npos) << suggested;

  // metrics.csv: 6 epochs of each of the 3 runs.
  const std::string metrics = read_text(out / "metrics.csv");
  EXPECT_EQ(metrics.rfind("run,epoch,step,", 0), 0u) << metrics;
  for (const char* run : {"\ndense,", "\nTrainingAwareDataSparsity,", "\nLossySparsifierCallback,"}) {
    int rows = 0;
    for (size_t pos = metrics.find(run); pos != std::string::npos; pos = metrics.find(run, pos + 1)) ++rows;
    EXPECT_EQ(rows, 6) << run;
  }

  if (!python_has_torch()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch: summary.json and models not checked";
  // summary.json through Python's json, and the models through torch.load.
  const std::string check = fmt::format(
      "/usr/bin/python3 -c \"\n"
      "import json, torch\n"
      "s = json.load(open('{0}/summary.json'))\n"
      "print(sorted(s))\n"
      "print([sorted(e) for e in s['sparsified']])\n"
      "print([e['callback'] for e in s['sparsified']])\n"
      "print('dense %.4f' % s['dense_test_accuracy'])\n"
      "print('dense activations %.4f' % s['dense_activation_sparsity'])\n"
      "for e in s['sparsified']: print('%s %.4f %.4f %.4f' % (e['callback'], e['test_accuracy'], e['weight_sparsity'], e.get('activation_sparsity', -1)))\n"
      "print('wall', s['wall_seconds'] > 0)\n"
      "for e in s['sparsified']: print('compact %s %.4f %s' % (e['callback'], e['compact_bytes'] / s['dense_compact_bytes'], e['inference_speedup'] > 0))\n"
      "for name in ['dense', 'PostTrainingDataSparsity', 'TrainingAwareDataSparsity']:\n"
      "    d = torch.load('{0}/models/%s.pt' % name)\n"
      "    zeros = sum(int((t == 0).sum()) for t in d.values()); total = sum(t.numel() for t in d.values())\n"
      "    print(name, sorted(d), '%.4f' % (zeros / total))\n"
      "\"",
      out.string());
  const auto [py_status, py] = testing::run_command(check + " 2>&1");
  ASSERT_EQ(py_status, 0) << py;
  EXPECT_CONTAINS(py, "['dense_activation_sparsity', 'dense_compact_bytes', 'dense_test_accuracy', 'sparsified', "
                      "'wall_seconds', 'world_size']\n");
  EXPECT_CONTAINS(py, "[['callback', 'compact_bytes', 'inference_speedup', 'test_accuracy', 'weight_sparsity'], "
                      "['callback', 'compact_bytes', 'inference_speedup', 'test_accuracy', 'weight_sparsity'], "
                      "['activation_dense_bytes', 'activation_sparse_bytes', 'activation_sparsity', 'callback', "
                      "'compact_bytes', 'inference_speedup', 'test_accuracy', 'weight_sparsity']]\n");
  EXPECT_CONTAINS(py, "['PostTrainingDataSparsity', 'TrainingAwareDataSparsity', 'LossySparsifierCallback']\n");
  EXPECT_CONTAINS(py, "wall True\n");
  EXPECT_CONTAINS(py, "dense ['1.bias', '1.weight', '3.bias', '3.weight', '5.bias', '5.weight'] 0.0000\n");

  // Values: the synthetic task is learnable, the sparsities are those asked for
  // (weights only: 50% and 80% of 4096 + 2048 + 128 weights out of 6372 parameters).
  double dense = 0;
  ASSERT_EQ(std::sscanf(py.substr(py.find("dense ")).c_str(), "dense %lf", &dense), 1);
  EXPECT_GT(dense, 0.9);
  const std::string post_line = py.substr(py.find("PostTrainingDataSparsity 0"));
  double post_acc = 0, post_sparsity = 0, post_act = 0;
  ASSERT_EQ(std::sscanf(post_line.c_str(), "PostTrainingDataSparsity %lf %lf %lf", &post_acc, &post_sparsity, &post_act), 3);
  EXPECT_NEAR(post_sparsity, 0.5 * 6272 / 6372, 5e-3);
  EXPECT_DOUBLE_EQ(post_act, -1);
  const std::string aware_line = py.substr(py.find("TrainingAwareDataSparsity 0"));
  double aware_acc = 0, aware_sparsity = 0;
  ASSERT_EQ(std::sscanf(aware_line.c_str(), "TrainingAwareDataSparsity %lf %lf", &aware_acc, &aware_sparsity), 2);
  EXPECT_NEAR(aware_sparsity, 0.8 * 6272 / 6372, 5e-3);
  EXPECT_GT(aware_acc, 0.8);
  // The compact file of the 80%-sparse model: its nonzeros and a bit per weight,
  // under half the dense model's.
  double aware_compact = 0;
  ASSERT_EQ(std::sscanf(py.substr(py.find("compact TrainingAwareDataSparsity")).c_str(),
                        "compact TrainingAwareDataSparsity %lf", &aware_compact), 1);
  EXPECT_LT(aware_compact, 0.5);
  EXPECT_GT(aware_compact, 0.1);
  EXPECT_CONTAINS(py, "compact PostTrainingDataSparsity");
  EXPECT_EQ(py.find(" False\n"), std::string::npos) << py;
  const std::string lossy_line = py.substr(py.find("LossySparsifierCallback "));
  double lossy_acc = 0, lossy_sparsity = 0, lossy_act = 0;
  ASSERT_EQ(std::sscanf(lossy_line.c_str(), "LossySparsifierCallback %lf %lf %lf", &lossy_acc, &lossy_sparsity, &lossy_act), 3);
  EXPECT_GT(lossy_act, 0.5);
  EXPECT_GT(lossy_acc, 0.8);
  // The dense model at the same places: ReLU's zeros only, fewer than the lossy model's.
  double dense_act = 0;
  ASSERT_EQ(std::sscanf(py.substr(py.find("dense activations ")).c_str(), "dense activations %lf", &dense_act), 1);
  EXPECT_GT(dense_act, 0.0);
  EXPECT_LT(dense_act, lossy_act);
  EXPECT_CONTAINS(output, "activation sparsity per place on the test set (near 0: |x| <= 0.001):");
}

TEST(TrainerDemo, OverridesAndCheck) {
  const auto [status, output] = testing::run_command(
      demo_command("configs/synthetic.yaml --check trainer.epochs=2 'model.hidden=[8]'"));
  ASSERT_EQ(status, 0) << output;
  EXPECT_CONTAINS(output, "epochs: 2");
  const RunConfig resolved = parse_run_config(output, "--check output");
  EXPECT_EQ(resolved.trainer.epochs, 2);
  EXPECT_EQ(resolved.model.hidden, std::vector<int64_t>{8});
}

TEST(TrainerDemo, ConfigMistakesExitWithTheLocation) {
  const fs::path dir = testing::scratch_dir("TrainerDemoMistake");
  std::ofstream(dir / "bad.yaml") << "seed: 1\ntrainer:\n  epoch: 3\n";
  const auto [status, output] = testing::run_command(demo_command((dir / "bad.yaml").string()));
  EXPECT_EQ(WEXITSTATUS(status), 1) << output;
  EXPECT_CONTAINS(output, "bad.yaml:3:3:");
  EXPECT_CONTAINS(output, "did you mean 'epochs'?");

  const auto [o_status, o_output] = testing::run_command(demo_command("configs/synthetic.yaml trainer.epochs=0"));
  EXPECT_EQ(WEXITSTATUS(o_status), 1) << o_output;
  EXPECT_CONTAINS(o_output, "override 'trainer.epochs=0'");

  const auto [m_status, m_output] = testing::run_command(demo_command((dir / "missing.yaml").string()));
  EXPECT_EQ(WEXITSTATUS(m_status), 1) << m_output;
  EXPECT_CONTAINS(m_output, "missing.yaml");
}

TEST(TrainerDemo, MissingDataIsAClearError) {
  const fs::path out = testing::scratch_dir("TrainerDemoNoData");
  const auto [status, output] = testing::run_command(demo_command(fmt::format(
      "configs/synthetic.yaml data.source=idx data.directory='{}/none' --output '{}'", out.string(), out.string())));
  EXPECT_EQ(WEXITSTATUS(status), 3) << output;
  EXPECT_CONTAINS(output, "trainer_demo: error:");
  EXPECT_CONTAINS(output, "/none");
}

TEST(TrainerDemo, ChecksBeforeTrainingStopEarlyAndWriteNothing) {
  const fs::path out = testing::scratch_dir("TrainerDemoPreflight") / "run";
  const auto [status, output] = testing::run_command(
      demo_command(fmt::format("configs/synthetic.yaml 'callbacks.0.include=[\"encoder*\"]' --output '{}'", out.string())));
  EXPECT_EQ(WEXITSTATUS(status), 3) << output;
  EXPECT_CONTAINS(output, "callback 'PostTrainingDataSparsity' selects no parameter of the model");
  EXPECT_CONTAINS(output, "synthetic.yaml:");
  EXPECT_CONTAINS(output, "1.weight, 1.bias");
  EXPECT_FALSE(fs::exists(out));

  // Patterns are checked against the model the data-sparsity callbacks see,
  // without lossy layers (whose extra modules shift the indices).
  const fs::path ok_out = testing::scratch_dir("TrainerDemoPreflightOk");
  const auto [ok_status, ok_output] = testing::run_command(demo_command(fmt::format(
      "configs/synthetic.yaml 'callbacks.0.include=[\"5.weight\"]' trainer.epochs=1 --output '{}'", ok_out.string())));
  EXPECT_EQ(ok_status, 0) << ok_output;
  EXPECT_CONTAINS(ok_output, "PostTrainingDataSparsity: DataNormSparsifier sparsified 1 parameters");

  const auto [l_status, l_output] = testing::run_command(
      demo_command(fmt::format("configs/synthetic.yaml 'model.hidden=[]' --output '{}'", out.string())));
  EXPECT_EQ(WEXITSTATUS(l_status), 3) << l_output;
  EXPECT_CONTAINS(l_output, "model.lossy: the model has no hidden layer");
  EXPECT_FALSE(fs::exists(out));
}

TEST(DemoReport, ShrunkModelsAddTheirKeysAndColumns) {
  ModelResult dense;
  dense.name = "dense";
  dense.parameters = 2676;
  ModelResult units;
  units.name = "units";
  units.callback_type = "PostTrainingDataSparsity";
  units.parameters = 2676;
  units.shrunk_parameters = 1212;
  units.shrunk_bytes = 7000;
  units.shrink_dense_ms = 0.9;
  units.shrunk_inference_ms = 0.3;
  const DemoResult result{{dense, units}, 1.0, ""};
  EXPECT_CONTAINS(summary_json(result), "\"parameters\": 2676, \"shrunk_parameters\": 1212, \"shrunk_bytes\": 7000, "
                                        "\"shrink_speedup\": 3.0}");
  const std::string table = format_result_table(result);
  EXPECT_CONTAINS(table, "shrunk params");
  EXPECT_CONTAINS(table, "2676           1212       7.0 kB      0.300       3.00x");
  // Without a shrunk model the table has its usual columns only.
  EXPECT_EQ(format_result_table(DemoResult{{dense}, 1.0, ""}).find("shrunk"), std::string::npos);
}

// A UnitNormSparsifier after training: the demo shrinks the model, saves it,
// and reports it; its accuracy is checked against the masked model's.
TEST(TrainerDemo, StructuredPruningIsShrunk) {
  const fs::path out = testing::scratch_dir("TrainerDemoStructured");
  const fs::path config = out.parent_path() / "TrainerDemoStructured.yaml";
  std::ofstream(config) << "seed: 1\nthreads: 1\n"
                           "data:\n  source: synthetic\n  batch_size: 64\n  validation_split: 0.2\n"
                           "  synthetic: {train_size: 500, test_size: 200, classes: 4, image_size: 8, noise: 2.0}\n"
                           "model: {type: mlp, hidden: [32, 16]}\n"
                           "trainer: {epochs: 2, progress: false}\n"
                           "callbacks:\n"
                           "  - type: PostTrainingDataSparsity\n"
                           "    name: units\n"
                           "    sparsifier: {type: UnitNormSparsifier, args: {sparsity_level: 0.5}}\n"
                           "    include: [\"1.*\", \"3.*\"]\n";
  const auto [status, output] =
      testing::run_command(demo_command(fmt::format("'{}' --output '{}'", config.string(), out.string())));
  ASSERT_EQ(status, 0) << output;
  EXPECT_CONTAINS(output, "units: shrunk");
  EXPECT_CONTAINS(output, "1 torch::nn::Linear: 32 -> 16 units");
  EXPECT_CONTAINS(output, "3 torch::nn::Linear: 16 -> 8 units");
  EXPECT_CONTAINS(output, "shrunk params");
  EXPECT_TRUE(fs::exists(out / "models/units.shrunk.pt"));
  EXPECT_FALSE(fs::exists(out / "models/dense.shrunk.pt"));
  // 64-32-16-4 (2676 parameters) without half its hidden units: 64-16-8-4.
  const std::string summary = read_text(out / "summary.json");
  EXPECT_CONTAINS(summary, "\"parameters\": 2676, \"shrunk_parameters\": 1212, \"shrunk_bytes\": " +
                               std::to_string(fs::file_size(out / "models/units.shrunk.pt")));
}

TEST(TrainerDemo, ResnetLearnsAndItsLossyVersionIsSparserAtTheSamePlaces) {
  const fs::path dir = testing::scratch_dir("TrainerDemoResnet");
  testing::write_bytes(dir / "resnet.yaml", R"(seed: 2
threads: 1
data:
  source: synthetic
  batch_size: 64
  validation_split: 0.2
  synthetic: {train_size: 1200, test_size: 300, classes: 4, image_size: 8, noise: 1.0}
model:
  type: resnet
  channels: [4, 8]
  lossy: {eps: 0.0, a: 10.0, penalty: L1, penalty_weight: 0.5}
optimizer: {type: adam, lr: 0.01}
trainer: {epochs: 4, progress: false, checkpoint: false}
callbacks:
  - type: LossySparsifierCallback
    name: lossy
    convert_to_hard: true
)");
  const fs::path out = dir / "out";
  const auto [status, output] = testing::run_command(
      demo_command(fmt::format("'{}' --output '{}'", (dir / "resnet.yaml").string(), out.string())));
  ASSERT_EQ(status, 0) << output;
  EXPECT_CONTAINS(output, "model: ResNet 2 stages of 1 BasicBlock(s), widths 4-8, 4 classes");
  EXPECT_CONTAINS(output, "activation sparsity per place on the test set");
  EXPECT_CONTAINS(output, "6.act2");
  // The callback's own measurement sees the slots inside the blocks too.
  EXPECT_CONTAINS(output, "LossySparsifierCallback: activation sparsity (after hard conversion)");
  EXPECT_CONTAINS(output, "output of 5.act1 (hard)");
  const std::string summary = read_text(out / "summary.json");
  double dense_accuracy = 0, dense_activations = 0, lossy_accuracy = 0, lossy_activations = 0;
  ASSERT_EQ(std::sscanf(summary.c_str(), "{\n  \"dense_test_accuracy\": %lf,", &dense_accuracy), 1) << summary;
  ASSERT_EQ(std::sscanf(summary.substr(summary.find("\"dense_activation_sparsity\"")).c_str(),
                        "\"dense_activation_sparsity\": %lf", &dense_activations), 1) << summary;
  const std::string lossy = summary.substr(summary.find("\"callback\": \"lossy\""));
  ASSERT_EQ(std::sscanf(lossy.c_str(), "\"callback\": \"lossy\", \"test_accuracy\": %lf", &lossy_accuracy), 1);
  ASSERT_EQ(std::sscanf(lossy.substr(lossy.find("\"activation_sparsity\"")).c_str(), "\"activation_sparsity\": %lf",
                        &lossy_activations), 1);
  EXPECT_GT(dense_accuracy, 0.8) << summary;
  EXPECT_GT(lossy_accuracy, 0.7) << summary;
  // The dense maps' zeros are ReLU's; the hard thresholds add many.
  EXPECT_GT(dense_activations, 0.2) << summary;
  EXPECT_GT(lossy_activations, dense_activations + 0.2) << summary;
  const std::string layers = read_text(out / "layers.csv");
  EXPECT_NE(layers.find("\nlossy,activation,5.act1,"), std::string::npos) << layers;
  EXPECT_NE(layers.find("\ndense,activation,4,"), std::string::npos) << layers;
}

}  // namespace
}  // namespace sparsity::demo
