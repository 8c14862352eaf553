// Trainer::check_resume: a checkpoint checked against a module, its optimizer
// and the Trainer's callbacks before anything runs, changing none of them; and
// Trainer::fit's resume, which makes the same checks before it loads anything.
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "../core/test_support.h"
#include "sparsity/plugin.h"

namespace sparsity {
namespace {

using testing::error_of;
namespace fs = std::filesystem;

enum class OptimizerKind { SgdMomentum, Adam };

/// Linear(2, hidden), ReLU, Linear(hidden, 2).
class SmallClassifier : public TrainingModule {
 public:
  explicit SmallClassifier(uint64_t init_seed, int64_t hidden = 16, OptimizerKind kind = OptimizerKind::SgdMomentum)
      : kind_(kind) {
    torch::manual_seed(init_seed);
    net = torch::nn::Sequential(torch::nn::Linear(2, hidden), torch::nn::ReLU(), torch::nn::Linear(hidden, 2));
  }

  std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
  at::Tensor training_step(const Batch& batch) override {
    return torch::nn::functional::cross_entropy(net->forward(batch.data), batch.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    ++optimizers_configured;
    if (kind_ == OptimizerKind::Adam)
      return std::make_unique<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(0.01));
    return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  }

  /// Clones of every parameter and buffer, by name.
  std::map<std::string, at::Tensor> snapshot() const {
    std::map<std::string, at::Tensor> tensors;
    for (const auto& item : net->named_parameters()) tensors[item.key()] = item.value().clone();
    for (const auto& item : net->named_buffers()) tensors[item.key()] = item.value().clone();
    return tensors;
  }

  torch::nn::Sequential net{nullptr};
  int optimizers_configured = 0;

 private:
  OptimizerKind kind_;
};

/// Counts batches; its state {"count": int} is checked before it is loaded.
class Tally : public Callback {
 public:
  int64_t count = 0;
  int loads = 0;
  mutable std::vector<int64_t> checked;  ///< the counts check_state_dict accepted

  void on_train_batch_end(Trainer&, TrainingModule&) override { ++count; }
  c10::IValue state_dict() const override {
    auto state = new_state_dict();
    state.insert("count", count);
    return state;
  }
  void check_state_dict(const c10::IValue& state) const override {
    if (!state.isGenericDict() || !state.toGenericDict().contains("count"))
      throw std::invalid_argument("Tally: the state has no 'count'");
    const c10::IValue value = state.toGenericDict().at("count");
    if (!value.isInt()) throw std::invalid_argument(fmt::format("Tally: 'count' is a {}, not an int", value.tagKind()));
    checked.push_back(value.toInt());
  }
  void load_state_dict(const c10::IValue& state) override {
    check_state_dict(state);
    count = state.toGenericDict().at("count").toInt();
    ++loads;
  }
};

/// Saves itself under Tally's name with a state Tally rejects.
class FakeTally : public Callback {
 public:
  std::string name() const override { return "Tally"; }
  c10::IValue state_dict() const override {
    auto state = new_state_dict();
    state.insert("count", std::string("many"));
    return state;
  }
};

// 12 examples in batches of 4: 3 batches an epoch.
DataSource small_source() {
  torch::manual_seed(5);
  const at::Tensor labels = torch::arange(12, torch::kLong).remainder(2);
  const at::Tensor points = labels.to(torch::kFloat).mul(3.0).sub(1.5).unsqueeze(1).expand({12, 2}) +
                            torch::randn({12, 2});
  return DataSource(points, labels, 4, /*shuffle=*/true, /*seed=*/1);
}

TrainerOptions quiet() { return TrainerOptions().progress(false); }

// A 2-epoch run's checkpoint (6 steps), of a 16-wide SGD model with `callback`.
std::string write_checkpoint(const std::string& test_name, std::shared_ptr<Callback> callback) {
  const fs::path dir = testing::scratch_dir(test_name);
  SmallClassifier module(/*init_seed=*/0);
  Trainer writer(quiet().max_epochs(2).output_dir(dir.string()), {std::move(callback)});
  writer.fit(module, small_source());
  return (dir / "checkpoint.pt").string();
}

// What a check must leave as it was: the module's tensors, the callback, the
// default generator, the Trainer's counters and the checkpoint's directory.
struct Unchanged {
  const SmallClassifier& module;
  const Tally& tally;
  const Trainer& trainer;
  const std::string checkpoint;
  const std::map<std::string, at::Tensor> tensors = module.snapshot();
  const int64_t count = tally.count;
  const at::Tensor rng = at::detail::getDefaultCPUGenerator().get_state();
  const std::string file = testing::read_bytes(checkpoint);
  const std::vector<fs::path> files = list(fs::path(checkpoint).parent_path());

  static std::vector<fs::path> list(const fs::path& dir) {
    std::vector<fs::path> paths;
    for (const auto& entry : fs::directory_iterator(dir)) paths.push_back(entry.path());
    std::sort(paths.begin(), paths.end());
    return paths;
  }

  void expect() const {
    const auto now = module.snapshot();
    ASSERT_EQ(now.size(), tensors.size());
    for (const auto& [name, tensor] : tensors) EXPECT_TRUE(torch::equal(now.at(name), tensor)) << name;
    EXPECT_EQ(tally.count, count);
    EXPECT_EQ(tally.loads, 0);
    EXPECT_TRUE(torch::equal(at::detail::getDefaultCPUGenerator().get_state(), rng));
    EXPECT_EQ(trainer.global_step(), 0);
    EXPECT_EQ(trainer.current_epoch(), 0);
    EXPECT_TRUE(trainer.last_metrics().empty());
    EXPECT_EQ(trainer.optimizer(), nullptr);
    EXPECT_EQ(testing::read_bytes(checkpoint), file);
    EXPECT_EQ(list(fs::path(checkpoint).parent_path()), files);
  }
};

TEST(TrainerCheckResume, AMatchingCheckpointPassesAndChangesNothing) {
  const std::string path = write_checkpoint("CheckResumeMatching", std::make_shared<Tally>());
  SmallClassifier module(/*init_seed=*/99);  // initialized unlike the checkpoint's
  auto tally = std::make_shared<Tally>();
  Trainer trainer(quiet().max_epochs(3).resume_from(path), {tally});
  const Unchanged unchanged{module, *tally, trainer, path};

  testing::LogCapture capture;
  EXPECT_NO_THROW(trainer.check_resume(module));
  unchanged.expect();
  EXPECT_EQ(tally->checked, std::vector<int64_t>{6});  // the checkpoint's state was checked, not loaded
  EXPECT_EQ(module.optimizers_configured, 1);          // a scratch optimizer took the optimizer's state
  EXPECT_EQ(capture.text(), "");

  // The run it approved resumes after epoch 1 and runs the last epoch.
  trainer.fit(module, small_source());
  EXPECT_EQ(tally->loads, 1);
  EXPECT_EQ(tally->count, 9);
  EXPECT_EQ(trainer.global_step(), 9);
  EXPECT_EQ(tally->checked, (std::vector<int64_t>{6, 6, 6}));  // fit's check, then load_state_dict's own
}

TEST(TrainerCheckResume, AnotherModelShapeIsAnErrorNamingTheFileAndTheTensors) {
  const std::string path = write_checkpoint("CheckResumeModel", std::make_shared<Tally>());
  SmallClassifier narrower(/*init_seed=*/1, /*hidden=*/8);
  auto tally = std::make_shared<Tally>();
  Trainer trainer(quiet().resume_from(path), {tally});
  const Unchanged unchanged{narrower, *tally, trainer, path};

  const std::string message = error_of<std::runtime_error>([&] { trainer.check_resume(narrower); });
  EXPECT_EQ(message.rfind(fmt::format("cannot resume from the checkpoint '{}': the model does not match", path), 0),
            0u)
      << message;
  EXPECT_CONTAINS(message, "'0.weight' has shape [16, 2] in the checkpoint but [8, 2] in the model");
  EXPECT_CONTAINS(message, "'0.bias' has shape [16] in the checkpoint but [8] in the model");
  EXPECT_CONTAINS(message, "'2.weight' has shape [2, 16] in the checkpoint but [2, 8] in the model");
  unchanged.expect();
  EXPECT_TRUE(tally->checked.empty());
}

TEST(TrainerCheckResume, AnotherOptimizerTypeIsAnError) {
  const std::string path = write_checkpoint("CheckResumeOptimizer", std::make_shared<Tally>());
  SmallClassifier adam(/*init_seed=*/1, /*hidden=*/16, OptimizerKind::Adam);
  auto tally = std::make_shared<Tally>();
  Trainer trainer(quiet().resume_from(path), {tally});
  const Unchanged unchanged{adam, *tally, trainer, path};

  const std::string message = error_of<std::runtime_error>([&] { trainer.check_resume(adam); });
  EXPECT_EQ(message.rfind(fmt::format("cannot resume from the checkpoint '{}': the optimizer's state does not load "
                                      "into this optimizer (is it another type, or over other parameters?)",
                                      path),
                          0),
            0u)
      << message;
  EXPECT_EQ(message.find("Exception raised from"), std::string::npos) << message;
  unchanged.expect();
}

TEST(TrainerCheckResume, ACallbackStateItRejectsIsAnErrorNamingTheCallback) {
  const std::string path = write_checkpoint("CheckResumeCallback", std::make_shared<FakeTally>());
  SmallClassifier module(/*init_seed=*/1);
  auto tally = std::make_shared<Tally>();
  Trainer trainer(quiet().max_epochs(3).resume_from(path), {tally});
  const DataSource source = small_source();  // before the snapshot: it seeds the generator
  const Unchanged unchanged{module, *tally, trainer, path};

  const std::string message = error_of<std::runtime_error>([&] { trainer.check_resume(module); });
  EXPECT_EQ(message, fmt::format("cannot resume from the checkpoint '{}': the state of callback 'Tally' does not load: "
                                 "Tally: 'count' is a String, not an int",
                                 path));
  unchanged.expect();

  // fit makes the same check before it loads anything: the model, which a
  // resume would overwrite, is unchanged too.
  EXPECT_EQ(error_of<std::runtime_error>([&] { trainer.fit(module, source); }), message);
  unchanged.expect();
}

TEST(TrainerCheckResume, APluginCallbackChecksItsOwnState) {
  // The checkpoint's "TrainingAwareDataSparsity" was another callback of that name.
  struct Impostor : Callback {
    std::string name() const override { return "TrainingAwareDataSparsity"; }
  };
  const std::string path = write_checkpoint("CheckResumePluginCallback", std::make_shared<Impostor>());
  SmallClassifier module(/*init_seed=*/1);
  auto aware = std::make_shared<TrainingAwareDataSparsity>("DataNormSparsifier", Config{{"sparsity_level", 0.5}},
                                                           "CubicSLScheduler", Config{{"delta_t", 1}, {"total_t", 2}});
  Trainer trainer(quiet().max_epochs(3).resume_from(path), {aware});
  EXPECT_EQ(error_of<std::runtime_error>([&] { trainer.check_resume(module); }),
            fmt::format("cannot resume from the checkpoint '{}': the state of callback 'TrainingAwareDataSparsity' "
                        "does not load: TrainingAwareDataSparsity: state has no 'sparsifier'",
                        path));
  EXPECT_EQ(aware->data_sparsifier(), nullptr);
}

TEST(TrainerCheckResume, WhatFitRejectsBeforeReadingIsAnInvalidArgument) {
  SmallClassifier module(/*init_seed=*/1);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { Trainer(quiet()).check_resume(module); }),
                  "Trainer::check_resume: TrainerOptions::resume_from is empty");

  const std::string path = write_checkpoint("CheckResumeArguments", std::make_shared<Tally>());
  Trainer twins(quiet().resume_from(path), {std::make_shared<Tally>(), std::make_shared<Tally>()});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { twins.check_resume(module); }),
                  "Trainer::check_resume: two callbacks are named 'Tally'");

  const std::string missing = (fs::path(path).parent_path() / "missing.pt").string();
  const std::string message = error_of<std::runtime_error>([&] { Trainer(quiet().resume_from(missing)).check_resume(module); });
  EXPECT_CONTAINS(message, missing);
  EXPECT_CONTAINS(message, "no checkpoint");
  EXPECT_EQ(module.optimizers_configured, 1);  // only for the missing file: the others stopped before
}

}  // namespace
}  // namespace sparsity
