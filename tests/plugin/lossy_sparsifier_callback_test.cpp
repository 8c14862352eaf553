// LossySparsifierCallback through Trainer::fit: the sharpness schedule, the
// hard conversion, activation sparsity in the metrics, resume, the registry.
#include "data_sparsity_test_support.h"
#include "sparsity/lossy/activation_collector.h"
#include "sparsity/lossy/insertion.h"
#include "sparsity/lossy/lossy_sparsifier.h"
#include "sparsity/lossy/penalties.h"
#include "sparsity/lossy/sparse_loss.h"

namespace sparsity {
namespace {

using testing::error_of;

// An MLP with lossy layers after its Linear layers, trained with SparseLoss.
class LossyClassifier : public TrainingModule {
 public:
  LossyClassifier() {
    torch::manual_seed(5);
    net_ = testing::dummy_model(16, {32, 32, 2});
    add_sparsifier_layers(*net_, 0.01,
                          SparsifierInsertionOptions().layer_kinds({LayerKind::Linear}).a(2.0).collector(collector_));
  }
  std::shared_ptr<torch::nn::Module> model() override { return net_.ptr(); }
  at::Tensor training_step(const Batch& batch) override {
    collector_->clear();
    const at::Tensor out = net_->forward(batch.data);
    return loss_(out, batch.target, collector_->activations());
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    return std::make_unique<torch::optim::Adam>(net_->parameters(), torch::optim::AdamOptions(1e-2));
  }
  torch::nn::Sequential net_;

 private:
  std::shared_ptr<ActivationCollector> collector_ = std::make_shared<ActivationCollector>();
  SparseLoss loss_{[](const at::Tensor& out, const at::Tensor& y) { return torch::nn::functional::cross_entropy(out, y); },
                   make_penalty("L0", 1e-2), 1.0};
};

std::vector<double> sharpness(torch::nn::Module& model) {
  std::vector<double> out;
  for (const auto& layer : sparsifier_layers(model)) out.push_back(layer->a());
  return out;
}

DataSource blob_source() {
  auto [x, y] = testing::blobs(256, 16, 99);
  return DataSource(x, y, 32, true, 3);
}

TEST(LossySparsifierCallback, SchedulesSharpnessMeasuresAndConvertsToHard) {
  LossyClassifier module;
  const auto [x, y] = testing::blobs(256, 16, 99);
  auto callback = std::make_shared<LossySparsifierCallback>(
      LossySparsifierCallbackOptions().sharpness_factor(2.0).sharpness_period(2).eval_inputs(x));
  Trainer trainer(TrainerOptions().max_epochs(4).progress(false), {callback});
  trainer.fit(module, blob_source());
  // Doubled at the ends of epochs 1 and 3 (period 2): 2 * 4 = 8, but the
  // layers are hard by now; the callback's state kept the last values.
  ASSERT_TRUE(callback->report().has_value());
  EXPECT_EQ(callback->converted(), 3);
  EXPECT_TRUE(sparsifier_layers(*module.model()).empty()) << "every soft layer became a hard one";
  EXPECT_GT(trainer.last_metrics().at("activation_sparsity"), 0.0);
  const c10::IValue state = callback->state_dict();
  EXPECT_EQ(state.toGenericDict().at(c10::IValue(std::string("sharpness"))).toDoubleVector(),
            (std::vector<double>{8.0, 8.0, 8.0}));
  // The hard model's activation sparsity is what the report measured after conversion.
  EXPECT_DOUBLE_EQ(measure_activation_sparsity(*module.model(), x, 256, false).total(), callback->report()->total());
}

TEST(LossySparsifierCallback, ResumeContinuesTheSharpnessSchedule) {
  const auto dir = testing::scratch_dir("LossyResume");
  {
    LossyClassifier module;
    auto callback = std::make_shared<LossySparsifierCallback>(LossySparsifierCallbackOptions().convert_to_hard(false));
    Trainer trainer(TrainerOptions().max_epochs(2).progress(false).output_dir(dir.string()), {callback});
    trainer.fit(module, blob_source());
    EXPECT_EQ(sharpness(*module.model()), (std::vector<double>{8.0, 8.0, 8.0}));
  }
  LossyClassifier module;
  auto callback = std::make_shared<LossySparsifierCallback>(LossySparsifierCallbackOptions().convert_to_hard(false));
  Trainer trainer(TrainerOptions().max_epochs(3).progress(false).resume_from((dir / "checkpoint.pt").string()),
                  {callback});
  trainer.fit(module, blob_source());
  EXPECT_EQ(sharpness(*module.model()), (std::vector<double>{16.0, 16.0, 16.0}));
}

TEST(LossySparsifierCallback, RegistryAndBadInputs) {
  auto made = make_callback("LossySparsifierCallback", Config{{"sharpness_factor", 1.5}, {"sharpness_period", 3}});
  EXPECT_EQ(made->name(), "LossySparsifierCallback");
  EXPECT_NE(std::find(registered_callbacks().begin(), registered_callbacks().end(), "LossySparsifierCallback"),
            registered_callbacks().end());
  std::string message = error_of<std::invalid_argument>([] { make_callback("Lossy", {}); });
  EXPECT_CONTAINS(message, "'Lossy'");
  EXPECT_CONTAINS(message, "LossySparsifierCallback");
  message = error_of<std::invalid_argument>([] { make_callback("LossySparsifierCallback", Config{{"factor", 2.0}}); });
  EXPECT_CONTAINS(message, "'factor'");
  EXPECT_CONTAINS(message, "sharpness_factor");
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [] { LossySparsifierCallback(LossySparsifierCallbackOptions().sharpness_factor(0)); }),
                  "sharpness_factor must be finite and > 0, got 0");
  // A model without lossy layers.
  testing::SequentialClassifier plain(testing::dummy_model(16, {8, 2}));
  LossySparsifierCallback callback;
  Trainer trainer;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { callback.on_train_start(trainer, plain); }),
                  "no LossySparsifier layer");
}

}  // namespace
}  // namespace sparsity

namespace sparsity {
namespace {

TEST(LossySparsifierCallback, WithoutEvalInputsItMeasuresOnTheValidationData) {
  const auto [x, y] = testing::blobs(256, 16, 99);
  const DataSource validation(x.slice(0, 0, 64), y.slice(0, 0, 64), 32, false);
  for (const bool on_validation : {true, false}) {
    SCOPED_TRACE(on_validation);
    LossyClassifier module;
    auto callback = std::make_shared<LossySparsifierCallback>(
        LossySparsifierCallbackOptions().eval_on_validation(on_validation).convert_to_hard(false));
    Trainer trainer(TrainerOptions().max_epochs(2).progress(false), {callback});
    trainer.fit(module, blob_source(), &validation);
    EXPECT_EQ(callback->report().has_value(), on_validation);
    EXPECT_EQ(trainer.last_metrics().count("activation_sparsity"), on_validation ? 1u : 0u);
    if (on_validation) {
      // Measured on exactly the validation inputs.
      EXPECT_DOUBLE_EQ(measure_activation_sparsity(*module.model(), validation.inputs(), 256).total(),
                       callback->report()->total());
    }
    EXPECT_EQ(trainer.validation_data(), nullptr) << "only during fit";
    EXPECT_EQ(callback->sparsified(), module.model());
  }
}

TEST(LossySparsifierCallback, ItsConfigRoundTripsThroughTheRegistry) {
  const Config given{{"name", "lossy"}, {"sharpness_factor", 3}, {"eval_on_validation", false}};
  const auto built = std::dynamic_pointer_cast<LossySparsifierCallback>(make_callback("LossySparsifierCallback", given));
  ASSERT_NE(built, nullptr);
  EXPECT_EQ(built->name(), "lossy");
  EXPECT_EQ(built->options().sharpness_factor(), 3.0);
  const Config full{{"name", "lossy"},           {"sharpness_factor", 3.0},     {"sharpness_period", 1},
                    {"convert_to_hard", true},   {"eval_on_validation", false}, {"eval_batch_size", 256}};
  EXPECT_EQ(built->to_config(), full);
  EXPECT_EQ(make_sparsifying_callback("LossySparsifierCallback", full)->to_config(), full);
  EXPECT_TRUE(built->changes_trained_model());
  EXPECT_TRUE(built->needs_lossy_layers());
  try {
    make_callback("LossySparsifierCallback", Config{{"sharpness_period", 0}});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "sharpness_period");
    EXPECT_EQ(e.at(), ConfigError::At::kValue);
  }
}

}  // namespace
}  // namespace sparsity
