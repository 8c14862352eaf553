// Lossy sparsifier layers: values and gradients against the seed's formula,
// the hard layer, penalties, SparseLoss, insertion into containers, the
// sharpness schedule, hard conversion, activation sparsity, a short training
// run, and bad inputs.
#include <cmath>
#include <limits>

#include "test_support.h"

namespace sparsity {
namespace {

// The seed's forward, under autograd.
at::Tensor formula(const at::Tensor& x, const at::Tensor& eps, double a) {
  auto e = eps.abs();
  return torch::sigmoid(a * (x - e)) * x + torch::sigmoid(a * (-e - x)) * x;
}

template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument)";
}

struct Case {
  double eps;
  double a;
  std::vector<int64_t> shape;
};

void check_against_formula(const Case& c, at::ScalarType dtype, double rtol, double atol, bool strided) {
  SCOPED_TRACE("eps=" + std::to_string(c.eps) + " a=" + std::to_string(c.a) + " dims=" +
               std::to_string(c.shape.size()) + " dtype=" + std::string(c10::toString(dtype)));
  torch::manual_seed(3);
  LossySparsifier layer(LossySparsifierOptions().eps(c.eps).a(c.a));
  layer->to(dtype);
  at::Tensor base = torch::randn(c.shape, torch::dtype(dtype)) * 2;
  if (strided && base.dim() >= 2) base = base.transpose(0, base.dim() - 1);
  at::Tensor x1 = base.clone().requires_grad_(true);
  at::Tensor x2 = base.clone().requires_grad_(true);
  if (strided && base.dim() >= 2) {
    x1 = base.transpose(0, base.dim() - 1).contiguous().transpose(0, base.dim() - 1).detach().requires_grad_(true);
  }
  at::Tensor eps2 = layer->eps.detach().clone().requires_grad_(true);

  at::Tensor y1 = layer(x1);
  at::Tensor y2 = formula(x2, eps2, c.a);
  ASSERT_EQ(y1.sizes(), y2.sizes());
  EXPECT_TRUE(torch::allclose(y1, y2, rtol, atol)) << (y1 - y2).abs().max();

  at::Tensor g = torch::randn(y1.sizes(), torch::dtype(dtype));
  y1.backward(g);
  y2.backward(g);
  EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad(), rtol, atol)) << (x1.grad() - x2.grad()).abs().max();
  ASSERT_TRUE(layer->eps.grad().defined());
  EXPECT_NEAR(layer->eps.grad().item<double>(), eps2.grad().item<double>(),
              atol * 10 + rtol * std::abs(eps2.grad().item<double>()));
}

TEST(LossySparsifier, ValuesAndGradientsMatchTheFormula) {
  const std::vector<Case> cases = {
      {0.1, 1.0, {7}},          {0.3, 4.0, {4, 5}},      {-0.3, 4.0, {4, 5}},
      {0.0, 2.0, {3, 6}},       {1.5, 0.5, {2, 3, 4, 5}}, {0.05, 50.0, {64, 33}},
      {2.0, 20.0, {40000}},  // several parallel chunks
  };
  for (const auto& c : cases) {
    check_against_formula(c, torch::kDouble, 1e-10, 1e-12, false);
    check_against_formula(c, torch::kFloat, 1e-5, 1e-6, false);
    check_against_formula(c, torch::kDouble, 1e-10, 1e-12, true);
  }
}

// Where a sharp layer's sigmoids underflow (a·|x ± ε| between 87 and 104,
// float's subnormal range) the kernel flushes them to 0, because subnormal
// arithmetic is a hundred times slower on x86 (a ResNet epoch took minutes
// instead of 18 s). Values and gradients still match the formula there.
TEST(LossySparsifier, SharpLayersMatchTheFormulaWhereTheSigmoidsUnderflow) {
  LossySparsifier layer(LossySparsifierOptions().eps(0.1).a(40.0));
  at::Tensor base = torch::cat({torch::linspace(-2.7, -2.1, 5001), torch::linspace(2.1, 2.7, 5001)});
  at::Tensor x = base.clone().requires_grad_(true);
  at::Tensor reference_x = base.clone().requires_grad_(true);
  at::Tensor y = layer(x);
  at::Tensor reference = formula(reference_x, layer->eps.detach(), 40.0);
  EXPECT_TRUE(torch::allclose(y, reference, 1e-6, 1e-7));
  const at::Tensor g = torch::randn(y.sizes());
  y.backward(g);
  reference.backward(g);
  EXPECT_TRUE(torch::allclose(x.grad(), reference_x.grad(), 1e-5, 1e-6));
  auto subnormals = [](const at::Tensor& t) {
    return (t.ne(0) & t.abs().lt(std::numeric_limits<float>::min())).sum().item<int64_t>();
  };
  EXPECT_EQ(subnormals(y), 0);
  EXPECT_EQ(subnormals(x.grad()), 0);
}

TEST(LossySparsifier, MixedDtypesUseTheFormula) {
  LossySparsifier layer(LossySparsifierOptions().eps(0.2).a(3.0));  // eps float32
  at::Tensor x = torch::randn({5, 5}, torch::kDouble).requires_grad_(true);
  at::Tensor y = layer(x);
  EXPECT_TRUE(torch::allclose(y, formula(x, layer->eps, 3.0)));
  y.sum().backward();
  EXPECT_TRUE(layer->eps.grad().defined());
}

TEST(LossySparsifier, RegistersEpsAndValidatesOptions) {
  LossySparsifier layer(LossySparsifierOptions().eps(0.2).a(4.0));
  auto params = layer->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_TRUE(params.contains("eps"));
  EXPECT_EQ(layer->eps.dim(), 0);
  EXPECT_TRUE(layer->eps.requires_grad());
  EXPECT_FLOAT_EQ(layer->eps.item<float>(), 0.2f);
  EXPECT_DOUBLE_EQ(layer->a(), 4.0);
  LossySparsifier defaults;
  EXPECT_FLOAT_EQ(defaults->eps.item<float>(), 0.1f);
  EXPECT_DOUBLE_EQ(defaults->a(), 1.0);

  EXPECT_NE(error_message([] { LossySparsifier(LossySparsifierOptions().a(0.0)); }).find("a (sharpness) must be > 0"),
            std::string::npos);
  EXPECT_NE(error_message([] { LossySparsifier(LossySparsifierOptions().a(-2.0)); }).find("-2"), std::string::npos);
  EXPECT_NE(error_message([] {
              LossySparsifier(LossySparsifierOptions().eps(std::numeric_limits<double>::quiet_NaN()));
            }).find("eps must be finite"),
            std::string::npos);
  EXPECT_THROW(LossySparsifier(LossySparsifierOptions().eps(INFINITY)), std::invalid_argument);
  EXPECT_THROW(LossyHardSparsifier(LossySparsifierOptions().eps(-INFINITY)), std::invalid_argument);
  EXPECT_THROW(layer->set_a(0.0), std::invalid_argument);
  EXPECT_THROW(layer(torch::ones({3}, torch::kLong)), std::invalid_argument);

  auto copy = std::dynamic_pointer_cast<LossySparsifierImpl>(layer->clone());
  ASSERT_TRUE(copy);
  EXPECT_DOUBLE_EQ(copy->a(), 4.0);
  EXPECT_NE(copy->eps.data_ptr(), layer->eps.data_ptr());
}

TEST(LossyHardSparsifier, ThresholdsWithoutTouchingTheInput) {
  LossyHardSparsifier hard(LossySparsifierOptions().eps(-0.3));
  at::Tensor x = torch::tensor({-1.0f, -0.3f, -0.2f, 0.0f, 0.29f, 0.3f, 0.31f, 2.0f});
  at::Tensor before = x.clone();
  at::Tensor y = hard(x);
  EXPECT_TRUE(torch::equal(x, before));
  EXPECT_TRUE(torch::equal(y, torch::tensor({-1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.31f, 2.0f})));
  EXPECT_TRUE(hard->named_parameters().is_empty());
  EXPECT_TRUE(hard->named_buffers().contains("eps"));

  // Gradients flow where x is kept.
  at::Tensor xg = x.clone().requires_grad_(true);
  hard(xg).sum().backward();
  EXPECT_TRUE(torch::equal(xg.grad(), torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f})));

  LossySparsifier soft(LossySparsifierOptions().eps(0.5));
  {
    torch::NoGradGuard g;
    soft->eps.fill_(0.7);
  }
  LossyHardSparsifier from_soft(soft);
  EXPECT_NEAR(from_soft->threshold(), 0.7, 1e-7);
  LossyHardSparsifier from_impl(*soft);
  EXPECT_NEAR(from_impl->threshold(), 0.7, 1e-7);
}

TEST(LossyPenalties, MatchHandComputedValues) {
  at::Tensor x = torch::tensor({{1.0, -2.0}, {0.0, 3.0}}, torch::kDouble);
  const double b = 0.5;
  const double l0 = 1.0 / 1.5 + 4.0 / 4.5 + 0.0 + 9.0 / 9.5;
  EXPECT_NEAR(l0_penalty(x, b).item<double>(), l0, 1e-12);
  EXPECT_NEAR(l1_penalty(x).item<double>(), 6.0, 1e-12);
  EXPECT_NEAR(l2_penalty(x).item<double>(), std::sqrt(14.0), 1e-12);
  EXPECT_NEAR(normalized_l0_penalty(x, b).item<double>(), l0 / 4, 1e-12);
  EXPECT_NEAR(normalized_l1_penalty(x).item<double>(), 1.5, 1e-12);
  EXPECT_NEAR(normalized_l2_penalty(x).item<double>(), std::sqrt(14.0) / 4, 1e-12);
  for (const auto& name : penalty_names()) {
    EXPECT_EQ(to_string(penalty_from_string(name)), name);
  }
  EXPECT_NEAR(make_penalty("normalized_L0", b)(x).item<double>(), l0 / 4, 1e-12);
  EXPECT_NEAR(penalty(Penalty::L2, x).item<double>(), std::sqrt(14.0), 1e-12);

  EXPECT_NE(error_message([] { penalty_from_string("L3"); }).find("'L3'"), std::string::npos);
  EXPECT_NE(error_message([&] { l0_penalty(x, 0.0); }).find("b must be > 0"), std::string::npos);
  EXPECT_THROW(make_penalty("L0", -1.0), std::invalid_argument);
  EXPECT_NO_THROW(make_penalty("L1", -1.0));  // b is unused
}

TEST(SparseLoss, MatchesTheSeedFormula) {
  auto task = [](const at::Tensor& out, const at::Tensor& target) { return (out - target).pow(2).mean(); };
  SparseLoss loss(task, make_penalty("L1"), /*reg=*/0.5);
  at::Tensor out = torch::tensor({1.0, 2.0}, torch::kDouble);
  at::Tensor target = torch::tensor({0.0, 0.0}, torch::kDouble);
  at::Tensor a1 = torch::tensor({1.0, -1.0, 2.0}, torch::kDouble);   // L1 4, 3 elements
  at::Tensor a2 = torch::tensor({{0.5}, {-0.5}}, torch::kDouble);    // L1 1, 2 elements
  const double expected = (1.0 + 4.0) / 2 + 0.5 * (4.0 + 1.0) / 5.0;
  EXPECT_NEAR(loss(out, target, {a1, a2}).item<double>(), expected, 1e-12);
  EXPECT_NEAR(loss.sparsity_term({a1, a2}).item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(loss(out, target, {}).item<double>(), 2.5, 1e-12);

  // Gradients reach the activations.
  at::Tensor a3 = a1.clone().requires_grad_(true);
  loss(out, target, {a3}).backward();
  EXPECT_TRUE(torch::allclose(a3.grad(), torch::tensor({1.0, -1.0, 1.0}, torch::kDouble) * (0.5 / 3)));

  EXPECT_NE(error_message([&] { SparseLoss(task, make_penalty("L1"), -0.1); }).find("reg must be >= 0"),
            std::string::npos);
  EXPECT_THROW(SparseLoss(nullptr, make_penalty("L1"), 0.1), std::invalid_argument);
  EXPECT_THROW(SparseLoss(task, nullptr, 0.1), std::invalid_argument);
}

struct Custom : torch::nn::Module {
  Custom() {
    seq = register_module("seq", torch::nn::Sequential(torch::nn::Linear(4, 6), torch::nn::ReLU(),
                                                       torch::nn::Linear(6, 6), torch::nn::Tanh()));
    list = register_module("list", torch::nn::ModuleList(torch::nn::Linear(6, 5), torch::nn::Conv1d(1, 2, 3)));
    dict = register_module(
        "dict", torch::nn::ModuleDict(std::vector<std::pair<std::string, std::shared_ptr<Module>>>{
                    {"proj", torch::nn::Linear(5, 3).ptr()},
                    {"act", torch::nn::ReLU().ptr()},
                    {"block", torch::nn::Sequential(torch::nn::Linear(3, 3), torch::nn::ReLU()).ptr()}}));
    direct = register_module("direct", torch::nn::Linear(3, 3));
  }
  torch::nn::Sequential seq{nullptr};
  torch::nn::ModuleList list{nullptr};
  torch::nn::ModuleDict dict{nullptr};
  torch::nn::Linear direct{nullptr};
};

TEST(SparsifierInsertion, WrapsContainerChildrenInNestedContainers) {
  torch::manual_seed(0);
  Custom model;
  auto old_linear0 = model.seq->ptr(0);
  auto old_linear2 = model.seq->ptr(2);
  auto old_block = model.dict["block"];
  auto old_block_linear = old_block->as<torch::nn::SequentialImpl>()->ptr(0);
  auto* seq_object = model.seq.get();
  auto old_list0 = model.list->ptr(0);
  auto old_proj = model.dict["proj"];
  at::Tensor x = torch::randn({8, 4});
  at::Tensor expected_seq = model.seq->forward(x);
  at::Tensor h = torch::randn({8, 6});
  at::Tensor expected_list0 = model.list->ptr<torch::nn::LinearImpl>(0)->forward(h);

  auto collector = std::make_shared<ActivationCollector>();
  auto inserted = add_sparsifier_layers(model, /*eps_start=*/0.0,
                                        SparsifierInsertionOptions().a(1000.0).collector(collector));
  std::vector<std::string> names;
  for (const auto& i : inserted) names.push_back(i.name);
  EXPECT_EQ(names, (std::vector<std::string>{"seq.0", "seq.2", "list.0", "list.1", "dict.proj", "dict.block.0"}));

  // The same Sequential objects, rewired in place, wrapping the same layers.
  EXPECT_EQ(model.seq.get(), seq_object);
  auto wrapper = model.seq->ptr<SparsifiedImpl>(0);
  ASSERT_TRUE(wrapper);
  EXPECT_EQ(wrapper->size(), 2u);
  EXPECT_EQ(wrapper->ptr(0), old_linear0);
  EXPECT_TRUE(wrapper->ptr<LossySparsifierImpl>(1));
  EXPECT_EQ(model.seq->named_children()[1].key(), "1");
  EXPECT_EQ(model.seq->ptr<SparsifiedImpl>(2)->ptr(0), old_linear2);
  EXPECT_EQ(model.dict["block"].get(), old_block.get());
  EXPECT_EQ(old_block->as<torch::nn::SequentialImpl>()->ptr<SparsifiedImpl>(0)->ptr(0), old_block_linear);
  EXPECT_TRUE(model.named_modules("", /*include_self=*/false).contains("seq.0.sparse"));
  EXPECT_TRUE(model.named_parameters().contains("seq.0.sparse.eps"));
  EXPECT_EQ(model.list->ptr<SparsifiedImpl>(0)->ptr(0), old_list0);
  EXPECT_EQ(model.dict["proj"]->as<SparsifiedImpl>()->ptr(0), old_proj);
  EXPECT_TRUE(model.dict["act"]->as<torch::nn::ReLUImpl>());
  EXPECT_TRUE(model.direct->as<torch::nn::LinearImpl>());  // cannot be rewired
  EXPECT_EQ(inserted[0].layer.ptr(), wrapper->ptr(1));

  // eps = 0: x·(σ(ax) + σ(−ax)) = x, so the model computes what it did.
  EXPECT_TRUE(torch::allclose(model.seq->forward(x), expected_seq, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(model.list->ptr<SparsifiedImpl>(0)->forward(h), expected_list0, 1e-6, 1e-6));
  EXPECT_EQ(collector->activations().size(), 3u);  // seq.0, seq.2, list.0
  collector->clear();
  EXPECT_TRUE(collector->activations().empty());
  model.eval();
  model.seq->forward(x);
  EXPECT_TRUE(collector->activations().empty());  // only training outputs

  // Not wrapped twice.
  EXPECT_TRUE(add_sparsifier_layers(model, 0.1).empty());
  EXPECT_EQ(sparsifier_layers(model).size(), 6u);

  // Deep copies keep the wrapper type.
  auto copy = model.seq->clone();
  EXPECT_TRUE(copy->as<torch::nn::SequentialImpl>()->ptr<SparsifiedImpl>(0));
}

TEST(SparsifierInsertion, LayerKindsAndBadArguments) {
  torch::nn::Sequential net(torch::nn::Linear(3, 3), torch::nn::Conv2d(1, 1, 1), torch::nn::Identity());
  auto inserted = add_sparsifier_layers(*net, 0.1, {LayerKind::Conv2d, LayerKind::Identity});
  ASSERT_EQ(inserted.size(), 2u);
  EXPECT_EQ(inserted[0].name, "1");
  EXPECT_TRUE(net->ptr<torch::nn::LinearImpl>(0));
  EXPECT_EQ(layer_kind_from_string("ConvTranspose3d"), LayerKind::ConvTranspose3d);
  EXPECT_NE(error_message([] { layer_kind_from_string("Lstm"); }).find("'Lstm'"), std::string::npos);
  EXPECT_THROW(add_sparsifier_layers(*net, NAN), std::invalid_argument);
  EXPECT_THROW(add_sparsifier_layers(*net, 0.1, SparsifierInsertionOptions().a(0)), std::invalid_argument);
  EXPECT_EQ(default_layer_kinds().size(), 9u);
}

TEST(SparsifierInsertion, ScheduleAndHardConversion) {
  torch::manual_seed(1);
  torch::nn::Sequential net(torch::nn::Linear(4, 8), torch::nn::ReLU(), torch::nn::Linear(8, 2));
  add_sparsifier_layers(*net, 0.2, SparsifierInsertionOptions().a(3.0));
  SharpnessSchedule schedule(SharpnessScheduleOptions().factor(2.0).period(2));
  EXPECT_FALSE(schedule.epoch_end(*net, 0));
  EXPECT_TRUE(schedule.epoch_end(*net, 1));
  EXPECT_FALSE(schedule.epoch_end(*net, 2));
  EXPECT_TRUE(schedule.epoch_end(*net, 3));
  for (auto& layer : sparsifier_layers(*net)) EXPECT_DOUBLE_EQ(layer->a(), 12.0);
  EXPECT_EQ(multiply_sharpness(*net, 0.5), 2);
  EXPECT_THROW(multiply_sharpness(*net, 0.0), std::invalid_argument);
  EXPECT_THROW(SharpnessSchedule(SharpnessScheduleOptions().period(0)), std::invalid_argument);
  EXPECT_THROW(SharpnessSchedule(SharpnessScheduleOptions().factor(-1)), std::invalid_argument);

  auto layers = sparsifier_layers(*net);
  {
    torch::NoGradGuard g;
    layers[0]->eps.fill_(-0.4);
  }
  EXPECT_EQ(convert_to_hard(*net), 2);
  EXPECT_TRUE(sparsifier_layers(*net).empty());
  auto hard = net->ptr<SparsifiedImpl>(0)->ptr<LossyHardSparsifierImpl>(1);
  ASSERT_TRUE(hard);
  EXPECT_NEAR(hard->threshold(), 0.4, 1e-7);
  at::Tensor x = torch::randn({16, 4});
  at::Tensor h = net->ptr<SparsifiedImpl>(0)->forward(x);
  EXPECT_TRUE(((h == 0) | (h.abs() > 0.4)).all().item<bool>());

  // A soft layer held by a custom module switches to hard mode.
  struct Holder : torch::nn::Module {
    LossySparsifier s{register_module("s", LossySparsifier(LossySparsifierOptions().eps(0.5)))};
  } holder;
  EXPECT_EQ(convert_to_hard(holder), 1);
  EXPECT_TRUE(holder.s->hard());
  EXPECT_TRUE(torch::equal(holder.s(torch::tensor({0.4f, -0.6f})), torch::tensor({0.0f, -0.6f})));
}

// The code of docs/lossy_sparsifier.md and insertion.h: a layer held by a
// custom module, wrapped with `sparsified(holder)`.
struct DocNet : torch::nn::Module {
  DocNet() { fc1 = register_module("fc1", sparsity::sparsified(torch::nn::Linear(784, 300))); }
  torch::Tensor forward(const torch::Tensor& x) { return fc1(x); }
  sparsity::Sparsified fc1{nullptr};
};

TEST(SparsifierInsertion, SparsifiedTakesAModuleHolder) {
  torch::manual_seed(2);
  DocNet net;
  auto linear = net.fc1->ptr<torch::nn::LinearImpl>(0);
  ASSERT_TRUE(linear);
  EXPECT_EQ(linear->options.in_features(), 784);
  EXPECT_EQ(linear->options.out_features(), 300);
  auto soft = net.fc1->ptr<LossySparsifierImpl>(1);
  ASSERT_TRUE(soft);
  EXPECT_FLOAT_EQ(soft->eps.item<float>(), 0.1f);  // LossySparsifierOptions' defaults
  EXPECT_DOUBLE_EQ(soft->a(), 1.0);
  EXPECT_EQ(soft->collector(), nullptr);
  EXPECT_TRUE(net.named_parameters().contains("fc1.0.weight"));
  EXPECT_TRUE(net.named_parameters().contains("fc1.sparse.eps"));

  at::Tensor x = torch::randn({4, 784});
  at::Tensor y = net.forward(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{4, 300}));
  EXPECT_TRUE(torch::allclose(y, formula(linear->forward(x), soft->eps, 1.0), 1e-5, 1e-6));

  auto collector = std::make_shared<ActivationCollector>();
  EXPECT_EQ(attach_collector(net, collector), 1);
  net.forward(x);
  ASSERT_EQ(collector->activations().size(), 1u);
  EXPECT_EQ(collector->activations()[0].sizes(), (std::vector<int64_t>{4, 300}));

  // The wrapper is a container, so even inside a custom module the soft
  // layer is replaced (not just switched to hard mode).
  EXPECT_EQ(convert_to_hard(net), 1);
  EXPECT_TRUE(net.fc1->ptr<LossyHardSparsifierImpl>(1));
  EXPECT_TRUE(sparsifier_layers(net).empty());

  // Options and collector reach the sparsifier; the AnyModule overload stays.
  auto conv = sparsified(torch::nn::Conv2d(1, 2, 3), LossySparsifierOptions().eps(-0.3).a(7.0), collector);
  EXPECT_TRUE(conv->ptr<torch::nn::Conv2dImpl>(0));
  EXPECT_NEAR(conv->ptr<LossySparsifierImpl>(1)->threshold(), 0.3, 1e-7);
  EXPECT_DOUBLE_EQ(conv->ptr<LossySparsifierImpl>(1)->a(), 7.0);
  EXPECT_EQ(conv->ptr<LossySparsifierImpl>(1)->collector(), collector);
  auto any = sparsified(torch::nn::AnyModule(torch::nn::Identity()), LossySparsifierOptions().eps(0.5));
  const at::Tensor v = torch::tensor({-2.0f, 0.4f, 0.6f, 3.0f});
  EXPECT_TRUE(torch::allclose(any(v), formula(v, torch::tensor(0.5f), 1.0), 1e-6, 1e-7));
}

TEST(SparsifierInsertion, LayerKindNamesAndMessages) {
  std::vector<std::string> names;
  for (LayerKind kind : default_layer_kinds()) {
    names.emplace_back(to_string(kind));
    EXPECT_EQ(layer_kind_from_string(to_string(kind)), kind);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
                                             "ConvTranspose2d", "ConvTranspose3d", "Identity", "Bilinear"}));
  EXPECT_EQ(error_message([] { layer_kind_from_string("linear"); }),
            "unknown layer kind 'linear' (accepted: Linear, Conv1d, Conv2d, Conv3d, ConvTranspose1d, "
            "ConvTranspose2d, ConvTranspose3d, Identity, Bilinear)");

  torch::nn::Sequential net(torch::nn::Linear(2, 2));
  add_sparsifier_layers(*net, 0.1);
  EXPECT_EQ(error_message([&] { add_sparsifier_layers(*net, INFINITY); }),
            "add_sparsifier_layers: eps_start must be finite, got inf");
  EXPECT_EQ(error_message([&] { multiply_sharpness(*net, -1.5); }),
            "multiply_sharpness: factor must be > 0 and finite, got -1.5");
  EXPECT_EQ(error_message([] { SharpnessSchedule(SharpnessScheduleOptions().factor(0.25).period(0)); }),
            "SharpnessSchedule: period must be >= 1, got 0");
  EXPECT_EQ(error_message([] { SharpnessSchedule(SharpnessScheduleOptions().factor(NAN)); }),
            "SharpnessSchedule: factor must be > 0 and finite, got nan");
  EXPECT_EQ(error_message([] { LossySparsifier(LossySparsifierOptions().a(-0.5)); }),
            "LossySparsifier: a (sharpness) must be > 0 and finite, got -0.5");
  EXPECT_EQ(error_message([] { l0_penalty(torch::ones({2}), 0.0); }), "L0 penalty: b must be > 0 and finite, got 0");
  EXPECT_EQ(error_message([] { penalty_from_string("L4"); }),
            "unknown penalty 'L4' (accepted: L0, L1, L2, normalized_L0, normalized_L1, normalized_L2)");
  EXPECT_EQ(error_message([] { Sparsified(torch::nn::AnyModule(torch::nn::Linear(2, 2)),
                                          torch::nn::AnyModule(torch::nn::ReLU())); }),
            "Sparsified: the second module must be a LossySparsifier or LossyHardSparsifier, got torch::nn::ReLUImpl");

  // A soft layer that is the model itself is switched, once.
  LossySparsifier alone;
  EXPECT_EQ(convert_to_hard(*alone), 1);
  EXPECT_TRUE(alone->hard());
  EXPECT_EQ(convert_to_hard(*alone), 0);
}

TEST(ActivationSparsity, CountsZerosInputToLayersAfterTheFirst) {
  torch::nn::Sequential net(torch::nn::Linear(2, 2), torch::nn::ReLU(), torch::nn::Linear(2, 2));
  {
    torch::NoGradGuard g;
    auto l0 = net->ptr<torch::nn::LinearImpl>(0);
    l0->weight.copy_(torch::eye(2));
    l0->bias.zero_();
  }
  at::Tensor inputs = torch::tensor({{1.0f, -1.0f}, {-1.0f, -1.0f}, {2.0f, 3.0f}});
  auto report = measure_activation_sparsity(*net, inputs, /*batch_size=*/2);
  ASSERT_EQ(report.layers.size(), 1u);
  EXPECT_EQ(report.layers[0].name, "2");
  EXPECT_EQ(report.layers[0].zeros, 3);
  EXPECT_EQ(report.layers[0].elements, 6);
  EXPECT_DOUBLE_EQ(report.total(), 0.5);
  EXPECT_NE(report.to_string().find("50.00%"), std::string::npos);
  EXPECT_TRUE(net->is_training());

  // Inside wrappers, soft layers evaluated as hard.
  add_sparsifier_layers(*net, 1.5);
  auto hard_report = measure_activation_sparsity(*net, inputs, 2);
  ASSERT_EQ(hard_report.layers.size(), 1u);
  EXPECT_EQ(hard_report.layers[0].name, "2.0");
  EXPECT_EQ(hard_report.layers[0].zeros, 4);  // only (2, 3) passes |x| > 1.5
  EXPECT_EQ(measure_activation_sparsity(*net, inputs, 2, /*soft_as_hard=*/false).layers[0].zeros, 3);

  Custom custom;
  EXPECT_NE(error_message([&] { measure_activation_sparsity(custom, inputs, 2); }).find("must be a torch::nn::Sequential"),
            std::string::npos);
  EXPECT_THROW(measure_activation_sparsity(*net, inputs, 0), std::invalid_argument);
}

TEST(LossySparsifierTraining, SparsityRisesWhileLossFalls) {
  torch::manual_seed(7);
  const int64_t n = 512;
  at::Tensor inputs = torch::randn({n, 16});
  at::Tensor teacher = torch::randn({16, 4});
  at::Tensor targets = inputs.matmul(teacher).argmax(1);
  torch::nn::Sequential net(torch::nn::Linear(16, 64), torch::nn::ReLU(), torch::nn::Linear(64, 64),
                            torch::nn::ReLU(), torch::nn::Linear(64, 4));
  auto collector = std::make_shared<ActivationCollector>();
  add_sparsifier_layers(*net, 0.01,
                        SparsifierInsertionOptions().layer_kinds({LayerKind::Linear}).a(5.0).collector(collector));
  const double sparsity_before = measure_activation_sparsity(*net, inputs, 128).total();

  SparseLoss loss_fn([](const at::Tensor& out, const at::Tensor& y) { return torch::nn::functional::cross_entropy(out, y); },
                     make_penalty("L0", 1e-2), /*reg=*/2.0);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  SharpnessSchedule schedule(SharpnessScheduleOptions().factor(1.5));
  std::vector<double> epoch_loss;
  for (int64_t epoch = 0; epoch < 10; ++epoch) {
    double total = 0;
    for (int64_t start = 0; start < n; start += 64) {
      collector->clear();
      at::Tensor out = net->forward(inputs.narrow(0, start, 64));
      at::Tensor task = torch::nn::functional::cross_entropy(out, targets.narrow(0, start, 64));
      at::Tensor loss = loss_fn(out, targets.narrow(0, start, 64), collector->activations());
      opt.zero_grad();
      loss.backward();
      opt.step();
      total += task.item<double>();
    }
    epoch_loss.push_back(total / (n / 64));
    schedule.epoch_end(*net, epoch);
  }
  const double sparsity_after = measure_activation_sparsity(*net, inputs, 128).total();
  convert_to_hard(*net);
  const double hard_sparsity = measure_activation_sparsity(*net, inputs, 128, false).total();
  std::printf("task loss %.4f -> %.4f, activation sparsity %.3f -> %.3f (hard model %.3f)\n", epoch_loss.front(),
              epoch_loss.back(), sparsity_before, sparsity_after, hard_sparsity);
  EXPECT_LT(epoch_loss.back(), 0.7 * epoch_loss.front());
  EXPECT_GT(sparsity_after, sparsity_before + 0.1);
  EXPECT_DOUBLE_EQ(hard_sparsity, sparsity_after);
}

}  // namespace
}  // namespace sparsity
