// Lossy layers on any module tree: insertable slots in custom (residual)
// modules, the Bilinear two-input path, printing, and activation measurement
// at sites in eval and training mode without keeping activations.
#include <sstream>

#include "test_support.h"

namespace sparsity {
namespace {

// A residual block as a user writes it: its convolutions are insertable
// slots, the shortcut a Sequential, and `head` a bare member.
struct ResidualImpl : torch::nn::Module {
  explicit ResidualImpl(bool with_bare_member) {
    conv1 = register_module("conv1", insertable(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1))));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(4));
    conv2 = register_module("conv2", insertable(torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 3).padding(1))));
    shortcut = register_module("shortcut", torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 1))));
    if (with_bare_member) head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 1)));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = conv2(torch::relu(bn1(conv1(x)))) + shortcut->forward(x);
    return head ? head(torch::relu(y)) : torch::relu(y);
  }
  Sparsified conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential shortcut{nullptr};
  torch::nn::Conv2d head{nullptr};
};
TORCH_MODULE(Residual);

struct NetImpl : torch::nn::Module {
  NetImpl() {
    block = register_module("block", Residual(false));
    pair = register_module("pair", insertable(torch::nn::Bilinear(4, 4, 3)));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = block(x).mean({2, 3});
    return pair(h, h.flip(1));
  }
  Residual block{nullptr};
  Sparsified pair{nullptr};
};
TORCH_MODULE(Net);

TEST(InsertableSlots, ReachCustomResidualModulesInPlace) {
  torch::manual_seed(0);
  Net net;
  net->eval();  // BatchNorm on running statistics: the same function before and after
  at::Tensor x = torch::randn({3, 2, 5, 5});
  at::Tensor before = net->forward(x);
  auto* conv1_slot = net->block->conv1.get();
  auto conv1_layer = conv1_slot->layer();
  EXPECT_FALSE(conv1_slot->sparsifier());

  auto inserted = add_sparsifier_layers(*net, /*eps_start=*/0.0, SparsifierInsertionOptions().a(1000.0));
  std::vector<std::string> names;
  for (const auto& i : inserted) names.push_back(i.name);
  EXPECT_EQ(names, (std::vector<std::string>{"block.conv1", "block.conv2", "block.shortcut.0", "pair"}));
  // The slots are filled in place: the members still point at them, with the same layers.
  EXPECT_EQ(net->block->conv1.get(), conv1_slot);
  EXPECT_EQ(conv1_slot->layer(), conv1_layer);
  EXPECT_EQ(conv1_slot->sparsifier(), inserted[0].layer.ptr());
  EXPECT_FALSE(inserted[0].layer->is_training());  // the layer's mode
  const auto params = net->named_parameters();
  for (const char* name : {"block.conv1.0.weight", "block.conv1.sparse.eps", "block.shortcut.0.sparse.eps",
                           "pair.0.weight", "pair.sparse.eps"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  // eps = 0: each sparsifier passes x·(σ(ax) + σ(−ax)) = x, through the Bilinear's two inputs too.
  EXPECT_TRUE(torch::allclose(net->forward(x), before, 1e-5, 1e-6));
  EXPECT_TRUE(add_sparsifier_layers(*net, 0.1).empty());  // filled slots are done

  // With a threshold, the Bilinear slot's output is hard-thresholded after conversion.
  for (auto& layer : sparsifier_layers(*net)) {
    torch::NoGradGuard g;
    layer->eps.fill_(0.05);
  }
  EXPECT_EQ(convert_to_hard(*net), 4);
  EXPECT_TRUE(std::dynamic_pointer_cast<LossyHardSparsifierImpl>(net->pair->sparsifier()));
  at::Tensor h = torch::randn({6, 4});
  at::Tensor raw = net->pair->layer()->as<torch::nn::BilinearImpl>()->forward(h, h * 2);
  at::Tensor expected = raw.masked_fill(raw.abs() <= 0.05, 0);
  EXPECT_TRUE(torch::equal(net->pair->forward(h, h * 2), expected));
}

TEST(InsertableSlots, UnreachableLayersAreNamedAndRequireAllChangesNothing) {
  Residual block(true);
  const std::string message = testing::error_of<std::invalid_argument>(
      [&] { add_sparsifier_layers(*block, 0.1, SparsifierInsertionOptions().require_all(true)); });
  EXPECT_NE(message.find("1 layer(s) held directly by a custom module"), std::string::npos) << message;
  EXPECT_NE(message.find(": head"), std::string::npos) << message;
  EXPECT_NE(message.find("insertable"), std::string::npos) << message;
  EXPECT_TRUE(sparsifier_layers(*block).empty());  // checked before anything changed
  EXPECT_FALSE(block->conv1->sparsifier());

  // Without require_all: the reachable ones are filled and `head` is left alone.
  EXPECT_EQ(add_sparsifier_layers(*block, 0.1).size(), 3u);
  EXPECT_TRUE(block->head->as<torch::nn::Conv2dImpl>());
  // Only wanted kinds: a Linear-only insertion leaves the conv slots empty.
  Residual other(false);
  EXPECT_TRUE(add_sparsifier_layers(*other, 0.1, {LayerKind::Linear}).empty());
  EXPECT_FALSE(other->conv1->sparsifier());
}

TEST(Sparsified, PrintsAsWhatItIs) {
  auto slot = insertable(torch::nn::Linear(4, 3));
  std::ostringstream empty;
  empty << *slot;
  EXPECT_EQ(empty.str(), "sparsity::Sparsified(\n  (0): torch::nn::Linear(in_features=4, out_features=3, bias=true)\n)");
  slot->set_sparsifier(torch::nn::AnyModule(LossySparsifier(LossySparsifierOptions().eps(0.25).a(4.0))));
  std::ostringstream full;
  full << *slot;
  EXPECT_EQ(full.str(),
            "sparsity::Sparsified(\n  (0): torch::nn::Linear(in_features=4, out_features=3, bias=true)\n"
            "  (sparse): sparsity::LossySparsifier(eps=0.25, a=4)\n)");
  EXPECT_THROW(slot->set_sparsifier(torch::nn::AnyModule(torch::nn::ReLU())), std::invalid_argument);
  // Replacing keeps one sparsifier.
  slot->set_sparsifier(torch::nn::AnyModule(LossyHardSparsifier(LossySparsifierOptions().eps(0.5))));
  EXPECT_EQ(slot->size(), 2u);
  EXPECT_TRUE(std::dynamic_pointer_cast<LossyHardSparsifierImpl>(slot->sparsifier()));
}

// Identity slots make the counted values exactly the inputs.
struct SitesImpl : torch::nn::Module {
  SitesImpl() {
    dense = register_module("dense", insertable(torch::nn::Identity()));
    soft = register_module("soft", sparsified(torch::nn::Identity(), LossySparsifierOptions().eps(0.5).a(1e6)));
    hard = register_module("hard", LossyHardSparsifier(LossySparsifierOptions().eps(1.5)));
  }
  at::Tensor forward(const at::Tensor& x) { return hard(soft(dense(x))); }
  Sparsified dense{nullptr}, soft{nullptr};
  LossyHardSparsifier hard{nullptr};
};
TORCH_MODULE(Sites);

TEST(ActivationMeter, CountsEverySiteInEvalAndTrainingMode) {
  Sites model;
  // 2 examples of 5 values: 0, -0, 0.0005, 0.4 / 1, -2, 3, 0.2, 0.
  at::Tensor x = torch::tensor({{0.0f, -0.0f, 0.0005f, 0.4f, 1.0f}, {-2.0f, 3.0f, 0.2f, 0.0f, 1.0f}});
  {
    ActivationMeter meter(*model, /*near_zero=*/1e-3);
    EXPECT_EQ(meter.sites(), 3u);
    model->eval();
    model->forward(x);
    model->train();
    model->forward(x);  // training mode counts too
    const auto report = meter.report();
    ASSERT_EQ(report.layers.size(), 3u);
    const auto& dense = report.layers[0];
    EXPECT_EQ(dense.name, "dense");
    EXPECT_EQ(dense.kind, "dense");
    EXPECT_EQ(dense.zeros, 2 * 3);      // 0, -0, 0 per pass
    EXPECT_EQ(dense.near_zero, 2 * 4);  // and 0.0005
    EXPECT_EQ(dense.elements, 2 * 10);
    EXPECT_EQ(dense.dense_bytes, 2 * 40);
    // Per pass: 2 examples x 1 byte of bitmask + 7 nonzeros x 4 bytes.
    EXPECT_EQ(dense.sparse_bytes, 2 * (2 + 28));
    EXPECT_EQ(report.layers[1].name, "soft");
    EXPECT_EQ(report.layers[1].kind, "soft");
    // The steep soft threshold at 0.5 leaves 1, -2, 3, 1: 6 near zero per pass, the
    // exact zeros only where the input was 0 (σ never reaches 0).
    EXPECT_EQ(report.layers[1].near_zero, 2 * 6);
    EXPECT_GE(report.layers[1].zeros, 2 * 3);
    EXPECT_EQ(report.layers[2].name, "hard");
    EXPECT_EQ(report.layers[2].kind, "hard");
    EXPECT_EQ(report.layers[2].zeros, 2 * 8);  // |x| <= 1.5 also drops the 1s
    EXPECT_EQ(report.elements, 2 * 30);
    EXPECT_EQ(report.zeros, dense.zeros + report.layers[1].zeros + report.layers[2].zeros);
    EXPECT_DOUBLE_EQ(report.near_zero_tolerance, 1e-3);
    EXPECT_NE(report.to_string().find("output of hard (hard): 80.00% zeros"), std::string::npos)
        << report.to_string();
    EXPECT_NE(testing::error_of<std::invalid_argument>([&] { ActivationMeter second(*model); }).find("'dense' already reports to another"),
              std::string::npos);
    EXPECT_EQ(model->dense->meter(), &meter);  // the failed meter detached only its own
    meter.reset();
    EXPECT_TRUE(meter.report().layers.empty());
  }
  EXPECT_EQ(model->dense->meter(), nullptr);  // detached when the meter goes
  EXPECT_EQ(model->hard->meter(), nullptr);
  EXPECT_THROW(ActivationMeter(*model, -1.0), std::invalid_argument);
}

TEST(ActivationMeter, KeepsNoActivationSoMemoryStaysFlat) {
  Sites model;
  ActivationMeter meter(*model);
  torch::NoGradGuard no_grad;  // no autograd graph holding tensors either
  for (int i = 0; i < 50; ++i) {
    at::Tensor x = torch::randn({8, 16});
    at::Tensor y = model->forward(x);
    // Nothing but this test holds the output or the input after the pass.
    EXPECT_EQ(y.use_count(), 1);
    EXPECT_EQ(x.use_count(), 1);
  }
  EXPECT_EQ(meter.report().layers[0].elements, 50 * 8 * 16);
  // Clones start detached.
  auto copy = std::dynamic_pointer_cast<SparsifiedImpl>(model->soft->clone());
  EXPECT_EQ(copy->meter(), nullptr);
}

TEST(ActivationMeter, MeasuresAnyModelAtSitesAndRestoresItsModes) {
  torch::manual_seed(3);
  Net net;
  at::Tensor x = torch::randn({10, 2, 5, 5});
  auto forward = [&](const at::Tensor& batch) { return net->forward(batch); };
  // A dense model with slots: measured at the same places, its conv outputs.
  const auto dense = measure_activation_sparsity_at_sites(*net, forward, x, SiteMeasurementOptions().batch_size(4));
  std::vector<std::string> names, kinds;
  for (const auto& l : dense.layers) {
    names.push_back(l.name);
    kinds.push_back(l.kind);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"block.conv1", "block.conv2", "pair"}));
  EXPECT_EQ(kinds, (std::vector<std::string>{"dense", "dense", "dense"}));
  EXPECT_EQ(dense.layers[0].elements, 10 * 4 * 25);
  EXPECT_EQ(dense.layers[2].elements, 10 * 3);
  EXPECT_TRUE(net->is_training());

  add_sparsifier_layers(*net, 0.3, SparsifierInsertionOptions().a(50.0));
  const auto soft = measure_activation_sparsity_at_sites(*net, forward, x);
  const auto hard = measure_activation_sparsity_at_sites(*net, forward, x, SiteMeasurementOptions().soft_as_hard(true));
  EXPECT_EQ(soft.layers[0].kind, "soft");
  EXPECT_EQ(hard.layers[0].kind, "hard");
  EXPECT_EQ(hard.layers.size(), 4u);  // the shortcut's slot too
  // The hard count equals the exact count of |conv1(x)| <= 0.3.
  at::Tensor conv1_out;
  {
    torch::NoGradGuard g;
    net->eval();
    conv1_out = net->block->conv1->layer()->as<torch::nn::Conv2dImpl>()->forward(x);
    net->train();
  }
  EXPECT_EQ(hard.layers[0].zeros, conv1_out.abs().le(0.3).sum().item<int64_t>());
  EXPECT_GT(hard.total(), dense.total() + 0.2);
  for (auto& layer : sparsifier_layers(*net)) EXPECT_FALSE(layer->hard());  // switched back
  EXPECT_TRUE(net->is_training());
  EXPECT_THROW(measure_activation_sparsity_at_sites(*net, forward, x, SiteMeasurementOptions().batch_size(0)),
               std::invalid_argument);
  EXPECT_THROW(measure_activation_sparsity_at_sites(*net, forward, x, SiteMeasurementOptions().near_zero(-1)),
               std::invalid_argument);
  // A failing forward restores the modes too.
  EXPECT_THROW(measure_activation_sparsity_at_sites(
                   *net, [](const at::Tensor&) -> at::Tensor { throw std::runtime_error("boom"); }, x,
                   SiteMeasurementOptions().soft_as_hard(true)),
               std::runtime_error);
  for (auto& layer : sparsifier_layers(*net)) EXPECT_FALSE(layer->hard());
  EXPECT_TRUE(net->is_training());
}

}  // namespace
}  // namespace sparsity
