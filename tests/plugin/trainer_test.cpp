// The Trainer, DataSource and the Callback defaults: hook order, errors,
// learning, metrics.csv, checkpoints (also read from Python) and resuming.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>

#include "../../plugin/src/metrics_csv.h"
#include "../../plugin/src/progress_line.h"
#include "../core/test_support.h"
#include "sparsity/float_text.h"
#include "sparsity/plugin.h"

namespace sparsity {
namespace {

using testing::error_of;
namespace fs = std::filesystem;
namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------
// Data, modules and callbacks of the tests.

/// Two Gaussian blobs in 2-D, around (-1.5, -1.5) (class 0) and (1.5, 1.5)
/// (class 1), unit variance (about 98% separable), alternating classes; from
/// their own generator.
std::pair<at::Tensor, at::Tensor> two_blobs(int64_t n, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const at::Tensor labels = torch::arange(n, torch::kLong).remainder(2);
  const at::Tensor centers = labels.to(torch::kFloat).mul(3.0).sub(1.5).unsqueeze(1).expand({n, 2});
  const at::Tensor points = centers + at::randn({n, 2}, generator, torch::kFloat);
  return {points, labels};
}

enum class OptimizerKind { SgdMomentum, Adam };

/// An MLP classifier: Linear(2, hidden), ReLU, Dropout(dropout), Linear(hidden, 2).
class BlobClassifier : public TrainingModule {
 public:
  explicit BlobClassifier(OptimizerKind kind = OptimizerKind::SgdMomentum, double dropout = 0.0, int64_t hidden = 16)
      : net(torch::nn::Linear(2, hidden), torch::nn::ReLU(), torch::nn::Dropout(dropout),
            torch::nn::Linear(hidden, 2)),
        kind_(kind) {}

  std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
  at::Tensor training_step(const Batch& batch) override {
    ++training_steps;
    saw_training_mode = saw_training_mode && net->is_training();
    return F::cross_entropy(net->forward(batch.data), batch.target);
  }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
    ++optimizers_configured;
    if (kind_ == OptimizerKind::Adam)
      return std::make_unique<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(0.02));
    return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  }
  std::optional<ValidationOutput> validation_step(const Batch& batch) override {
    saw_eval_without_grad = saw_eval_without_grad && !net->is_training() && !at::GradMode::is_enabled();
    const at::Tensor logits = net->forward(batch.data);
    return ValidationOutput{F::cross_entropy(logits, batch.target), logits.argmax(1).eq(batch.target).sum().item<int64_t>()};
  }

  torch::nn::Sequential net;
  int training_steps = 0;
  int optimizers_configured = 0;
  bool saw_training_mode = true;
  bool saw_eval_without_grad = true;

 private:
  OptimizerKind kind_;
};

/// A module seeded before its parameters are created.
std::unique_ptr<BlobClassifier> seeded_classifier(uint64_t init_seed, OptimizerKind kind = OptimizerKind::SgdMomentum,
                                                  double dropout = 0.0, int64_t hidden = 16) {
  torch::manual_seed(init_seed);
  return std::make_unique<BlobClassifier>(kind, dropout, hidden);
}

/// Records every hook, with where the Trainer stands in batch hooks.
class Recorder : public Callback {
 public:
  std::vector<std::string> events;
  bool optimizer_seen_in_every_hook = true;

  void on_fit_start(Trainer& t, TrainingModule&) override { record(t, "on_fit_start"); }
  void on_train_start(Trainer& t, TrainingModule&) override { record(t, "on_train_start"); }
  void on_train_epoch_start(Trainer& t, TrainingModule&) override {
    record(t, fmt::format("on_train_epoch_start e{}", t.current_epoch()));
  }
  void on_train_batch_start(Trainer& t, TrainingModule&) override {
    record(t, fmt::format("on_train_batch_start e{} b{} s{}", t.current_epoch(), t.batch_index(), t.global_step()));
  }
  void on_train_batch_end(Trainer& t, TrainingModule&) override {
    record(t, fmt::format("on_train_batch_end e{} b{} s{}", t.current_epoch(), t.batch_index(), t.global_step()));
  }
  void on_train_epoch_end(Trainer& t, TrainingModule&) override {
    record(t, fmt::format("on_train_epoch_end e{}", t.current_epoch()));
  }
  void on_validation_epoch_end(Trainer& t, TrainingModule&) override {
    record(t, fmt::format("on_validation_epoch_end e{}", t.current_epoch()));
  }
  void on_train_end(Trainer& t, TrainingModule&) override { record(t, "on_train_end"); }
  void on_fit_end(Trainer& t, TrainingModule&) override { record(t, "on_fit_end"); }

 private:
  void record(Trainer& t, std::string event) {
    optimizer_seen_in_every_hook = optimizer_seen_in_every_hook && t.optimizer() != nullptr;
    events.push_back(std::move(event));
  }
};

/// Counts batches and epochs, checkpoints the counts, logs them.
class Counter : public Callback {
 public:
  int64_t batches = 0;
  int64_t epochs = 0;
  bool loaded = false;

  void on_train_batch_end(Trainer&, TrainingModule&) override { ++batches; }
  void on_train_epoch_end(Trainer& t, TrainingModule&) override {
    ++epochs;
    t.log("batches_seen", static_cast<double>(batches));
  }
  c10::IValue state_dict() const override {
    c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
    state.insert("batches", batches);
    state.insert("epochs", epochs);
    return state;
  }
  void load_state_dict(const c10::IValue& state) override {
    const auto dict = state.toGenericDict();
    batches = dict.at("batches").toInt();
    epochs = dict.at("epochs").toInt();
    loaded = true;
  }
};

/// Halves the learning rate at each epoch end: state that lives in the optimizer's options.
class HalveLearningRate : public Callback {
 public:
  void on_train_epoch_end(Trainer& t, TrainingModule&) override {
    for (auto& group : t.optimizer()->param_groups()) group.options().set_lr(group.options().get_lr() * 0.5);
    t.log("lr", t.optimizer()->param_groups()[0].options().get_lr());
  }
};

/// Throws from one hook.
class Thrower : public Callback {
 public:
  explicit Thrower(std::string hook, bool c10_error = false) : hook_(std::move(hook)), c10_error_(c10_error) {}
  void on_fit_start(Trainer&, TrainingModule&) override { maybe_throw("on_fit_start"); }
  void on_train_batch_end(Trainer&, TrainingModule&) override { maybe_throw("on_train_batch_end"); }
  void on_train_epoch_end(Trainer&, TrainingModule&) override { maybe_throw("on_train_epoch_end"); }
  void on_fit_end(Trainer&, TrainingModule&) override { maybe_throw("on_fit_end"); }

 private:
  void maybe_throw(const std::string& hook) {
    if (hook != hook_) return;
    if (c10_error_) TORCH_CHECK(false, "tensor trouble");
    throw std::runtime_error("boom");
  }
  std::string hook_;
  bool c10_error_;
};

class Named : public Callback {
 public:
  explicit Named(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }

 private:
  std::string name_;
};

TrainerOptions quiet() { return TrainerOptions().progress(false); }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(read_text(path));
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    size_t start = 0;
    for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
      cells.push_back(line.substr(start, comma - start));
    cells.push_back(line.substr(start));
    rows.push_back(cells);
  }
  return rows;
}

c10::impl::GenericDict load_pickled_dict(const fs::path& path) {
  const std::vector<char> bytes = read_file(path.string());
  return torch::jit::pickle_load(bytes).toGenericDict();
}

std::vector<std::pair<std::string, at::Tensor>> tensors_of(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters()) tensors.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers()) tensors.emplace_back(item.key(), item.value());
  return tensors;
}

// 12 examples in batches of 4: 3 batches an epoch.
DataSource tiny_source(bool shuffle = true) {
  auto [x, y] = two_blobs(12, 5);
  return DataSource(x, y, 4, shuffle, /*seed=*/1);
}

// ---------------------------------------------------------------------------
// Hooks

TEST(TrainerHooks, OrderWithValidation) {
  auto module = seeded_classifier(0);
  const DataSource train = tiny_source();
  const DataSource validation = tiny_source(false);
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer(quiet().max_epochs(2), {recorder});
  trainer.fit(*module, train, &validation);

  const std::vector<std::string> expected = {
      "on_fit_start",
      "on_train_start",
      "on_train_epoch_start e0",
      "on_train_batch_start e0 b0 s0",
      "on_train_batch_end e0 b0 s1",
      "on_train_batch_start e0 b1 s1",
      "on_train_batch_end e0 b1 s2",
      "on_train_batch_start e0 b2 s2",
      "on_train_batch_end e0 b2 s3",
      "on_train_epoch_end e0",
      "on_validation_epoch_end e0",
      "on_train_epoch_start e1",
      "on_train_batch_start e1 b0 s3",
      "on_train_batch_end e1 b0 s4",
      "on_train_batch_start e1 b1 s4",
      "on_train_batch_end e1 b1 s5",
      "on_train_batch_start e1 b2 s5",
      "on_train_batch_end e1 b2 s6",
      "on_train_epoch_end e1",
      "on_validation_epoch_end e1",
      "on_train_end",
      "on_fit_end",
  };
  EXPECT_EQ(recorder->events, expected);
  EXPECT_TRUE(recorder->optimizer_seen_in_every_hook);
  EXPECT_EQ(trainer.optimizer(), nullptr);  // only during fit
  EXPECT_EQ(trainer.global_step(), 6);
  EXPECT_EQ(module->training_steps, 6);
  EXPECT_EQ(module->optimizers_configured, 1);
  EXPECT_TRUE(module->saw_training_mode);
  EXPECT_TRUE(module->saw_eval_without_grad);
  EXPECT_TRUE(module->net->is_training());
}

TEST(TrainerHooks, OrderWithoutValidation) {
  auto module = seeded_classifier(0);
  const DataSource train = tiny_source();
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer(quiet().max_epochs(2));
  trainer.add_callback(recorder);
  trainer.fit(*module, train);

  const std::vector<std::string> expected = {
      "on_fit_start",
      "on_train_start",
      "on_train_epoch_start e0",
      "on_train_batch_start e0 b0 s0",
      "on_train_batch_end e0 b0 s1",
      "on_train_batch_start e0 b1 s1",
      "on_train_batch_end e0 b1 s2",
      "on_train_batch_start e0 b2 s2",
      "on_train_batch_end e0 b2 s3",
      "on_train_epoch_end e0",
      "on_train_epoch_start e1",
      "on_train_batch_start e1 b0 s3",
      "on_train_batch_end e1 b0 s4",
      "on_train_batch_start e1 b1 s4",
      "on_train_batch_end e1 b1 s5",
      "on_train_batch_start e1 b2 s5",
      "on_train_batch_end e1 b2 s6",
      "on_train_epoch_end e1",
      "on_train_end",
      "on_fit_end",
  };
  EXPECT_EQ(recorder->events, expected);
  EXPECT_FALSE(trainer.last_metrics().count("val_loss"));
  EXPECT_TRUE(trainer.last_metrics().count("train_loss"));
}

TEST(TrainerHooks, CallbacksRunInTheOrderTheyWereAdded) {
  struct Tagger : Callback {
    Tagger(std::vector<std::string>& log, std::string tag) : log_(log), tag_(std::move(tag)) {}
    std::string name() const override { return tag_; }
    void on_train_epoch_end(Trainer&, TrainingModule&) override { log_.push_back(tag_); }
    std::vector<std::string>& log_;
    std::string tag_;
  };
  std::vector<std::string> log;
  auto module = seeded_classifier(0);
  Trainer trainer(quiet().max_epochs(2), {std::make_shared<Tagger>(log, "a"), std::make_shared<Tagger>(log, "b")});
  trainer.fit(*module, tiny_source());
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "a", "b"}));
}

TEST(TrainerHooks, AnExceptionNamesTheCallbackAndTheHook) {
  auto module = seeded_classifier(0);
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer(quiet().max_epochs(3), {recorder, std::make_shared<Thrower>("on_train_epoch_end")});
  const std::string message = error_of<std::runtime_error>([&] { trainer.fit(*module, tiny_source()); });
  EXPECT_EQ(message, "callback 'Thrower' failed in on_train_epoch_end: boom");
  // Training stopped there: the recorder (first) saw epoch 0 end, nothing after.
  EXPECT_EQ(recorder->events.back(), "on_train_epoch_end e0");
  EXPECT_EQ(trainer.optimizer(), nullptr);

  // LibTorch's errors come without their C++ backtrace.
  Trainer c10_trainer(quiet(), {std::make_shared<Thrower>("on_train_batch_end", /*c10_error=*/true)});
  const std::string c10_message = error_of<std::runtime_error>([&] { c10_trainer.fit(*module, tiny_source()); });
  EXPECT_EQ(c10_message.rfind("callback 'Thrower' failed in on_train_batch_end: tensor trouble", 0), 0u) << c10_message;
  EXPECT_EQ(c10_message.find("Exception raised from"), std::string::npos) << c10_message;

  Trainer named(quiet(), {std::make_shared<Named>("my-callback"), std::make_shared<Thrower>("on_fit_end")});
  EXPECT_EQ(error_of<std::runtime_error>([&] { named.fit(*module, tiny_source()); }),
            "callback 'Thrower' failed in on_fit_end: boom");

  // The trainer is usable again after a failed fit.
  Trainer again(quiet());
  again.add_callback(std::make_shared<Recorder>());
  EXPECT_NO_THROW(again.fit(*module, tiny_source()));
}

// ---------------------------------------------------------------------------
// Learning and metrics

TEST(TrainerLearning, LossFallsAndValidationAccuracyIsHigh) {
  auto [x, y] = two_blobs(400, 11);
  auto [vx, vy] = two_blobs(200, 12);
  const DataSource train(x, y, 32, true, 3);
  const DataSource validation(vx, vy, 64, false);

  struct History : Callback {
    std::vector<double> train_loss, val_acc, val_loss;
    void on_train_epoch_end(Trainer& t, TrainingModule&) override {
      train_loss.push_back(t.epoch_metrics().at("train_loss"));
      EXPECT_EQ(t.epoch_metrics().count("val_loss"), 0u);  // validation runs after this hook
    }
    void on_validation_epoch_end(Trainer& t, TrainingModule&) override {
      val_acc.push_back(t.epoch_metrics().at("val_acc"));
      val_loss.push_back(t.epoch_metrics().at("val_loss"));
    }
  };
  auto history = std::make_shared<History>();
  auto module = seeded_classifier(3);
  Trainer trainer(quiet().max_epochs(8).seed(5), {history});
  trainer.fit(*module, train, &validation);

  ASSERT_EQ(history->train_loss.size(), 8u);
  EXPECT_LT(history->train_loss.back(), 0.5 * history->train_loss.front());
  EXPECT_LT(history->val_loss.back(), history->val_loss.front());
  EXPECT_GT(history->val_acc.back(), 0.9);
  EXPECT_EQ(trainer.last_metrics().at("val_acc"), history->val_acc.back());
  EXPECT_EQ(trainer.last_metrics().at("train_loss"), history->train_loss.back());
  EXPECT_TRUE(std::isfinite(trainer.last_loss()));
  EXPECT_EQ(trainer.global_step(), 8 * 13);  // 400 / 32 -> 13 batches

  // The validation metrics are what validation_step reports, weighted by batch size.
  torch::NoGradGuard no_grad;
  module->net->eval();
  const at::Tensor logits = module->net->forward(vx);
  EXPECT_NEAR(trainer.last_metrics().at("val_acc"), logits.argmax(1).eq(vy).to(torch::kDouble).mean().item<double>(),
              0.011);
  EXPECT_NEAR(trainer.last_metrics().at("val_loss"), F::cross_entropy(logits, vy).item<double>(), 1e-6);
}

TEST(TrainerMetrics, CsvHasLightningsLayout) {
  const fs::path dir = testing::scratch_dir("TrainerMetricsCsv") / "nested" / "run";  // created by fit
  struct Logger : Callback {
    void on_train_start(Trainer& t, TrainingModule&) override { t.log("early", 1.0); }  // joins epoch 0's row
    void on_train_epoch_end(Trainer& t, TrainingModule&) override {
      if (t.current_epoch() == 1) t.log("sparsity", 0.5);
    }
    void on_validation_epoch_end(Trainer& t, TrainingModule&) override {
      t.log("lr", 0.1 * static_cast<double>(t.current_epoch() + 1));
    }
    void on_fit_end(Trainer& t, TrainingModule&) override { t.log("final_sparsity", 0.75); }  // joins the last row
  };
  auto module = seeded_classifier(0);
  const DataSource train = tiny_source();
  const DataSource validation = tiny_source(false);
  Trainer trainer(quiet().max_epochs(3).output_dir(dir.string()).checkpoint(false), {std::make_shared<Logger>()});
  trainer.fit(*module, train, &validation);

  EXPECT_FALSE(fs::exists(dir / "checkpoint.pt"));
  const auto rows = read_csv(dir / "metrics.csv");
  ASSERT_EQ(rows.size(), 4u);
  const std::vector<std::string> header = {"epoch", "step",       "early",    "final_sparsity", "lr",
                                           "sparsity", "train_loss", "val_acc", "val_loss"};
  EXPECT_EQ(rows[0], header);
  for (size_t r = 1; r < rows.size(); ++r) {
    ASSERT_EQ(rows[r].size(), header.size()) << r;
    EXPECT_EQ(rows[r][0], std::to_string(r - 1));
    EXPECT_EQ(rows[r][1], std::to_string(3 * r));
    EXPECT_EQ(rows[r][2], r == 1 ? "1.0" : "");
    EXPECT_EQ(rows[r][3], r == 3 ? "0.75" : "");
    EXPECT_DOUBLE_EQ(std::stod(rows[r][4]), 0.1 * static_cast<double>(r));
    EXPECT_EQ(rows[r][5], r == 2 ? "0.5" : "");
    for (size_t c = 6; c < header.size(); ++c) EXPECT_FALSE(rows[r][c].empty()) << r << " " << header[c];
  }
  // The last row holds exactly the last metrics (the shortest text of each double reads back exactly).
  for (size_t c = 2; c < header.size(); ++c) {
    if (rows[3][c].empty()) continue;
    EXPECT_EQ(std::stod(rows[3][c]), trainer.last_metrics().at(header[c])) << header[c];
  }
  EXPECT_EQ(trainer.last_metrics().at("final_sparsity"), 0.75);
}

TEST(TrainerMetrics, FormatsAndQuotesLikePythonsCsv) {
  const auto format_metric = [](double value) { return float_repr(value); };  // as metrics.csv writes them
  EXPECT_EQ(format_metric(2.0), "2.0");
  EXPECT_EQ(format_metric(0.1), "0.1");
  EXPECT_EQ(format_metric(-3.25), "-3.25");
  EXPECT_EQ(format_metric(1e-7), "1e-07");
  EXPECT_EQ(format_metric(std::nan("")), "nan");
  EXPECT_EQ(format_metric(-INFINITY), "-inf");
  EXPECT_EQ(std::stod(format_metric(0.41234567890123456)), 0.41234567890123456);

  std::vector<detail::MetricsRow> rows(2);
  rows[0] = {0, 10, {{"b", 1.5}, {"a,\"x\"", 2.0}}};
  rows[1] = {1, 20, {{"b", 0.25}}};
  EXPECT_EQ(detail::metrics_csv(rows), "epoch,step,\"a,\"\"x\"\"\",b\n0,10,2.0,1.5\n1,20,,0.25\n");
}

TEST(TrainerMetrics, LogRejectsTheTrainersOwnKeys) {
  Trainer trainer(quiet());
  for (const std::string key : {"epoch", "step", "train_loss", "val_loss", "val_acc", ""})
    EXPECT_THROW(trainer.log(key, 1.0), std::invalid_argument) << key;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { trainer.log("step", 1.0); }), "'step'");
}

TEST(TrainerMetrics, EpochEndLogLine) {
  testing::LogCapture capture;
  auto module = seeded_classifier(0);
  const DataSource validation = tiny_source(false);
  Trainer trainer(quiet().max_epochs(2));
  trainer.fit(*module, tiny_source(), &validation);
  EXPECT_EQ(capture.count("epoch 1/2: train_loss "), 1) << capture.text();
  EXPECT_EQ(capture.count("epoch 2/2: train_loss "), 1) << capture.text();
  EXPECT_CONTAINS(capture.text(), ", val_acc ");
  EXPECT_CONTAINS(capture.text(), "(step 6, ");
}

TEST(TrainerProgress, LineFormat) {
  detail::ProgressState state;
  state.epoch = 1;
  state.max_epochs = 5;
  state.batches_done = 120;
  state.num_batches = 938;
  state.loss = 0.41234;
  state.samples_per_second = 1830.2;
  state.eta_seconds = 3.2;
  EXPECT_EQ(detail::format_progress_line(state), "epoch 2/5 [ 120/938] loss 0.4123  1830 samples/s  ETA 0:03");
  EXPECT_EQ(detail::format_duration(0), "0:00");
  EXPECT_EQ(detail::format_duration(59.6), "1:00");
  EXPECT_EQ(detail::format_duration(754), "12:34");
  EXPECT_EQ(detail::format_duration(3725), "1:02:05");
}

// ---------------------------------------------------------------------------
// Checkpoints

TEST(TrainerCheckpoint, HoldsEverythingToResume) {
  const fs::path dir = testing::scratch_dir("TrainerCheckpointContent");
  auto module = seeded_classifier(0);
  auto counter = std::make_shared<Counter>();
  Trainer trainer(quiet().max_epochs(2).output_dir(dir.string()), {counter});
  trainer.fit(*module, tiny_source());

  const auto checkpoint = load_pickled_dict(dir / "checkpoint.pt");
  EXPECT_EQ(checkpoint.at("format").toStringRef(), "sparsity.Checkpoint");
  EXPECT_EQ(checkpoint.at("version").toInt(), 1);
  EXPECT_EQ(checkpoint.at("epoch").toInt(), 1);
  EXPECT_EQ(checkpoint.at("global_step").toInt(), 6);
  const auto model = checkpoint.at("model").toGenericDict();
  const auto tensors = tensors_of(*module->net);
  ASSERT_EQ(model.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) EXPECT_TRUE(torch::equal(model.at(name).toTensor(), tensor)) << name;
  const at::Tensor optimizer = checkpoint.at("optimizer").toTensor();
  EXPECT_EQ(optimizer.scalar_type(), at::kByte);
  EXPECT_GT(optimizer.numel(), 100);
  // Nothing drew random numbers since the last epoch ended.
  EXPECT_TRUE(torch::equal(checkpoint.at("rng").toTensor(), at::detail::getDefaultCPUGenerator().get_state()));
  const auto callbacks = checkpoint.at("callbacks").toGenericDict();
  ASSERT_EQ(callbacks.size(), 1u);
  EXPECT_EQ(callbacks.at("Counter").toGenericDict().at("batches").toInt(), 6);
  const auto history = checkpoint.at("metrics_history").toList();
  ASSERT_EQ(history.size(), 2u);
  const auto last = history.get(1).toGenericDict();
  EXPECT_EQ(last.at("epoch").toInt(), 1);
  EXPECT_EQ(last.at("step").toInt(), 6);
  EXPECT_EQ(last.at("train_loss").toDouble(), trainer.last_metrics().at("train_loss"));
  EXPECT_EQ(last.at("batches_seen").toDouble(), 6.0);
  // Written atomically: no temporary left behind.
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST(TrainerCheckpoint, PythonTorchLoadReadsIt) {
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch (scripts/setup.sh installs python3-torch)";
  const fs::path dir = testing::scratch_dir("TrainerCheckpointPython");
  auto module = seeded_classifier(0, OptimizerKind::Adam);
  Trainer trainer(quiet().max_epochs(2).output_dir(dir.string()), {std::make_shared<Counter>()});
  trainer.fit(*module, tiny_source());

  const std::string path = (dir / "checkpoint.pt").string();
  const std::string command =
      "/usr/bin/python3 -c \"import sys, torch; d = torch.load(sys.argv[1]); print(sorted(d.keys()), d['epoch']); "
      "print(d['format'], d['version'], d['global_step'], sorted(d['model'].keys()), d['optimizer'].dtype, "
      "d['callbacks']['Counter']['batches'], [r['epoch'] for r in d['metrics_history']], "
      "'%.6f' % float(d['model']['0.weight'].sum()))\" " +
      path + " 2>&1";
  const auto [status, output] = testing::run_command(command);
  ASSERT_EQ(status, 0) << output;

  EXPECT_CONTAINS(output, "['callbacks', 'checksum', 'epoch', 'format', 'global_step', 'metrics_history', 'model', "
                          "'optimizer', 'rng', 'version'] 1\n");
  EXPECT_CONTAINS(output, "sparsity.Checkpoint 1 6 ['0.bias', '0.weight', '3.bias', '3.weight'] torch.uint8 6 [0, 1] ");
  const double weight_sum = module->net->named_parameters()["0.weight"].sum().item<float>();
  EXPECT_CONTAINS(output, fmt::format("{:.6f}\n", weight_sum));
}

TEST(TrainerCheckpoint, SaveCheckpointFromACallbackAndOnlyDuringFit) {
  const fs::path dir = testing::scratch_dir("TrainerCheckpointFromCallback");
  struct SaveAtBatch : Callback {
    explicit SaveAtBatch(std::string p) : path(std::move(p)) {}
    void on_train_batch_end(Trainer& t, TrainingModule& m) override {
      if (t.current_epoch() == 1 && t.batch_index() == 0) t.save_checkpoint(path, m);
    }
    std::string path;
  };
  const std::string path = (dir / "mid.pt").string();
  auto module = seeded_classifier(0);
  Trainer trainer(quiet().max_epochs(2), {std::make_shared<SaveAtBatch>(path)});
  trainer.fit(*module, tiny_source());
  const auto checkpoint = load_pickled_dict(path);
  EXPECT_EQ(checkpoint.at("epoch").toInt(), 0);  // the last finished epoch
  EXPECT_EQ(checkpoint.at("global_step").toInt(), 4);
  EXPECT_EQ(checkpoint.at("metrics_history").toList().size(), 1u);

  EXPECT_THROW(trainer.save_checkpoint((dir / "after.pt").string(), *module), std::logic_error);
  EXPECT_FALSE(fs::exists(dir / "after.pt"));
}

TEST(TrainerCheckpoint, CallbacksWithTheSameNameCannotBeCheckpointed) {
  const fs::path dir = testing::scratch_dir("TrainerCheckpointSameName");
  auto module = seeded_classifier(0);
  Trainer trainer(quiet().output_dir(dir.string()), {std::make_shared<Counter>(), std::make_shared<Counter>()});
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { trainer.fit(*module, tiny_source()); }),
                  "two callbacks are named 'Counter'");
  // Without checkpoints they are fine.
  Trainer no_checkpoints(quiet(), {std::make_shared<Counter>(), std::make_shared<Counter>()});
  EXPECT_NO_THROW(no_checkpoints.fit(*module, tiny_source()));
}

// ---------------------------------------------------------------------------
// Resuming

struct RunResult {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::string metrics_csv;
  std::map<std::string, double> last_metrics;
  int64_t global_step = 0;
  int64_t counted_batches = 0;
  bool counter_loaded = false;
  int training_steps = 0;
  double learning_rate = 0.0;
};

RunResult run(const fs::path& dir, int64_t max_epochs, uint64_t init_seed, OptimizerKind kind,
              const std::string& resume_from = "") {
  auto [x, y] = two_blobs(60, 21);
  auto [vx, vy] = two_blobs(40, 22);
  const DataSource train(x, y, 8, /*shuffle=*/true, /*seed=*/3);  // 8 batches, the last of 4
  const DataSource validation(vx, vy, 16, false);
  auto module = seeded_classifier(init_seed, kind, /*dropout=*/0.2);
  auto counter = std::make_shared<Counter>();
  Trainer trainer(quiet().max_epochs(max_epochs).seed(7).output_dir(dir.string()).resume_from(resume_from),
                  {counter, std::make_shared<HalveLearningRate>()});
  trainer.fit(*module, train, &validation);
  RunResult result;
  for (const auto& [name, tensor] : tensors_of(*module->net)) result.tensors.emplace_back(name, tensor.clone());
  result.metrics_csv = read_text(dir / "metrics.csv");
  result.last_metrics = trainer.last_metrics();
  result.global_step = trainer.global_step();
  result.counted_batches = counter->batches;
  result.counter_loaded = counter->loaded;
  result.training_steps = module->training_steps;
  result.learning_rate = trainer.last_metrics().at("lr");
  return result;
}

TEST(TrainerResume, ResumedRunEqualsAnUninterruptedOne) {
  for (const OptimizerKind kind : {OptimizerKind::SgdMomentum, OptimizerKind::Adam}) {
    SCOPED_TRACE(kind == OptimizerKind::Adam ? "Adam" : "SGD with momentum");
    const std::string suffix = kind == OptimizerKind::Adam ? "Adam" : "Sgd";
    const fs::path straight_dir = testing::scratch_dir("TrainerResumeStraight" + suffix);
    const fs::path split_dir = testing::scratch_dir("TrainerResumeSplit" + suffix);

    const RunResult straight = run(straight_dir, 4, /*init_seed=*/1, kind);
    const RunResult first_half = run(split_dir, 2, /*init_seed=*/1, kind);
    EXPECT_EQ(first_half.training_steps, 16);
    // A fresh module, initialized differently, resumed from the checkpoint.
    const RunResult resumed = run(split_dir, 4, /*init_seed=*/99, kind, (split_dir / "checkpoint.pt").string());

    EXPECT_EQ(resumed.training_steps, 16);  // only epochs 2 and 3 ran
    EXPECT_TRUE(resumed.counter_loaded);
    EXPECT_EQ(resumed.counted_batches, straight.counted_batches);
    EXPECT_EQ(resumed.global_step, straight.global_step);
    ASSERT_EQ(resumed.tensors.size(), straight.tensors.size());
    for (size_t i = 0; i < straight.tensors.size(); ++i) {
      EXPECT_EQ(resumed.tensors[i].first, straight.tensors[i].first);
      EXPECT_TRUE(torch::equal(resumed.tensors[i].second, straight.tensors[i].second)) << straight.tensors[i].first;
    }
    EXPECT_EQ(resumed.metrics_csv, straight.metrics_csv);
    EXPECT_EQ(std::count(straight.metrics_csv.begin(), straight.metrics_csv.end(), '\n'), 5);
    EXPECT_EQ(resumed.last_metrics, straight.last_metrics);
    EXPECT_EQ(resumed.learning_rate, straight.learning_rate);
    EXPECT_EQ(straight.learning_rate, (kind == OptimizerKind::Adam ? 0.02 : 0.1) / 16);
    // The second half did not simply repeat the first.
    EXPECT_FALSE(torch::equal(first_half.tensors[0].second, straight.tensors[0].second));
  }
}

TEST(TrainerResume, MissingOrCorruptCheckpointsNameThePath) {
  const fs::path dir = testing::scratch_dir("TrainerResumeBadFiles");
  auto module = seeded_classifier(0);
  const std::string missing = (dir / "missing.pt").string();
  Trainer missing_trainer(quiet().resume_from(missing));
  const std::string missing_message = error_of<std::runtime_error>([&] { missing_trainer.fit(*module, tiny_source()); });
  EXPECT_CONTAINS(missing_message, missing);
  EXPECT_CONTAINS(missing_message, "no checkpoint");

  Trainer writer(quiet().output_dir(dir.string()));
  writer.fit(*module, tiny_source());
  const std::string whole = read_text(dir / "checkpoint.pt");
  const std::string truncated = (dir / "truncated.pt").string();
  write_file_atomically(truncated, std::string_view(whole).substr(0, whole.size() / 2));
  Trainer truncated_trainer(quiet().resume_from(truncated));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { truncated_trainer.fit(*module, tiny_source()); }), truncated);

  std::string flipped_bytes = whole;
  for (size_t i = whole.size() / 2; i < whole.size() / 2 + 200; ++i) flipped_bytes[i] ^= 0x5a;
  const std::string flipped = (dir / "flipped.pt").string();
  write_file_atomically(flipped, flipped_bytes);
  Trainer flipped_trainer(quiet().resume_from(flipped));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { flipped_trainer.fit(*module, tiny_source()); }), flipped);

  // Another kind of saved state: a sparsifier's.
  const std::string foreign = (dir / "sparsifier.pt").string();
  DataNormSparsifier sparsifier;
  sparsifier.add_data("w", torch::randn({4, 4}));
  sparsifier.save(foreign);
  Trainer foreign_trainer(quiet().resume_from(foreign));
  const std::string foreign_message = error_of<std::runtime_error>([&] { foreign_trainer.fit(*module, tiny_source()); });
  EXPECT_CONTAINS(foreign_message, foreign);
  EXPECT_CONTAINS(foreign_message, "is not a sparsity checkpoint");
}

TEST(TrainerResume, AnotherModelIsAnErrorNamingTheTensors) {
  const fs::path dir = testing::scratch_dir("TrainerResumeOtherModel");
  auto module = seeded_classifier(0);
  Trainer writer(quiet().output_dir(dir.string()));
  writer.fit(*module, tiny_source());
  const std::string path = (dir / "checkpoint.pt").string();

  auto narrower = seeded_classifier(0, OptimizerKind::SgdMomentum, 0.0, /*hidden=*/8);
  const at::Tensor before = narrower->net->named_parameters()["0.weight"].clone();
  Trainer trainer(quiet().resume_from(path));
  const std::string message = error_of<std::runtime_error>([&] { trainer.fit(*narrower, tiny_source()); });
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "'0.weight' has shape [16, 2] in the checkpoint but [8, 2] in the model");
  EXPECT_CONTAINS(message, "'3.weight' has shape [2, 16] in the checkpoint but [2, 8] in the model");
  EXPECT_TRUE(torch::equal(narrower->net->named_parameters()["0.weight"], before));  // nothing copied

  struct Extra : TrainingModule {
    torch::nn::Sequential net{torch::nn::Linear(2, 16), torch::nn::ReLU(), torch::nn::Dropout(0.0),
                              torch::nn::Linear(16, 2), torch::nn::Linear(2, 2)};
    std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
    at::Tensor training_step(const Batch& b) override { return F::cross_entropy(net->forward(b.data), b.target); }
    std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
      return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(0.1));
    }
  } extra;
  Trainer extra_trainer(quiet().resume_from(path));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { extra_trainer.fit(extra, tiny_source()); }),
                  "'4.weight' (shape [2, 2]) is missing from the checkpoint");
}

TEST(TrainerResume, CallbacksAreMatchedByName) {
  const fs::path dir = testing::scratch_dir("TrainerResumeCallbacks");
  auto module = seeded_classifier(0);
  Trainer writer(quiet().max_epochs(1).output_dir(dir.string()), {std::make_shared<Counter>()});
  writer.fit(*module, tiny_source());

  testing::LogCapture capture;
  auto counter = std::make_shared<Counter>();
  Trainer trainer(quiet().max_epochs(2).resume_from((dir / "checkpoint.pt").string()),
                  {counter, std::make_shared<Named>("Newcomer")});
  trainer.fit(*module, tiny_source());
  EXPECT_TRUE(counter->loaded);
  EXPECT_EQ(counter->batches, 6);
  EXPECT_CONTAINS(capture.text(), "no state for callback 'Newcomer'");

  testing::LogCapture capture_unregistered;
  Trainer without(quiet().max_epochs(2).resume_from((dir / "checkpoint.pt").string()));
  without.fit(*module, tiny_source());
  EXPECT_CONTAINS(capture_unregistered.text(), "callback 'Counter', which is not registered");
}

TEST(TrainerResume, FinishedRunHasNothingToTrain) {
  const fs::path dir = testing::scratch_dir("TrainerResumeFinished");
  auto module = seeded_classifier(0);
  Trainer writer(quiet().max_epochs(2).output_dir(dir.string()));
  writer.fit(*module, tiny_source());

  testing::LogCapture capture;
  auto fresh = seeded_classifier(5);
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer(quiet().max_epochs(2).resume_from((dir / "checkpoint.pt").string()), {recorder});
  trainer.fit(*fresh, tiny_source());
  EXPECT_EQ(fresh->training_steps, 0);
  EXPECT_EQ(recorder->events,
            (std::vector<std::string>{"on_fit_start", "on_train_start", "on_train_end", "on_fit_end"}));
  EXPECT_CONTAINS(capture.text(), "nothing to train");
  EXPECT_EQ(trainer.global_step(), 6);
  EXPECT_EQ(trainer.last_metrics(), writer.last_metrics());
  EXPECT_TRUE(torch::equal(fresh->net->named_parameters()["0.weight"], module->net->named_parameters()["0.weight"]));
}

// ---------------------------------------------------------------------------
// Errors

TEST(TrainerErrors, BadOptionsAndArguments) {
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { Trainer(TrainerOptions().max_epochs(0)); }),
                  "max_epochs must be at least 1, got 0");
  Trainer trainer(quiet());
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { trainer.add_callback(nullptr); }), "null");
  EXPECT_THROW(Trainer(quiet(), {nullptr}), std::invalid_argument);
}

// Returns a loss of `bad` at (epoch, batch).
class BadLossModule : public BlobClassifier {
 public:
  BadLossModule(int64_t epoch, int64_t batch, double bad) : epoch_(epoch), batch_(batch), bad_(bad) {}
  at::Tensor training_step(const Batch& batch) override {
    at::Tensor loss = BlobClassifier::training_step(batch);
    if (training_steps - 1 == epoch_ * 3 + batch_) return loss * bad_;
    return loss;
  }

 private:
  int64_t epoch_, batch_;
  double bad_;
};

TEST(TrainerErrors, NonFiniteLossNamesTheEpochAndBatch) {
  torch::manual_seed(0);
  BadLossModule module(/*epoch=*/1, /*batch=*/2, std::nan(""));
  Trainer trainer(quiet().max_epochs(3));
  const std::string message = error_of<std::runtime_error>([&] { trainer.fit(module, tiny_source()); });
  EXPECT_CONTAINS(message, "training loss is nan at epoch 1, batch 2");
  EXPECT_EQ(trainer.global_step(), 5);  // the bad batch took no step
  for (const auto& p : module.net->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());

  BadLossModule infinite(0, 0, INFINITY);
  Trainer second(quiet());
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { second.fit(infinite, tiny_source()); }),
                  "training loss is inf at epoch 0, batch 0");
}

TEST(TrainerErrors, LossMustBeAScalarWithGrad) {
  struct VectorLoss : BlobClassifier {
    at::Tensor training_step(const Batch& batch) override {
      return F::cross_entropy(net->forward(batch.data), batch.target, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    }
  } vector_loss;
  Trainer trainer(quiet());
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { trainer.fit(vector_loss, tiny_source()); }),
                  "must return a scalar loss, got a tensor of shape [4]");

  struct DetachedLoss : BlobClassifier {
    at::Tensor training_step(const Batch& batch) override { return BlobClassifier::training_step(batch).detach(); }
  } detached;
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { trainer.fit(detached, tiny_source()); }), "does not require grad");
}

// ---------------------------------------------------------------------------
// DataSource

TEST(DataSource, BatchesCoverEveryExampleOnce) {
  const at::Tensor inputs = torch::arange(10, torch::kFloat).unsqueeze(1).repeat({1, 3});
  const at::Tensor targets = torch::arange(10, torch::kLong) * 10;
  const DataSource source(inputs, targets, 4, true, 7);
  EXPECT_EQ(source.size(), 10);
  EXPECT_EQ(source.batch_size(), 4);
  EXPECT_EQ(source.num_batches(), 3);
  const std::vector<int64_t> order = source.order(2);
  std::vector<int64_t> seen;
  for (int64_t b = 0; b < source.num_batches(); ++b) {
    const Batch batch = source.batch(order, b);
    EXPECT_EQ(batch.data.size(0), b < 2 ? 4 : 2);
    EXPECT_EQ(batch.data.sizes(), (std::vector<int64_t>{batch.data.size(0), 3}));
    for (int64_t i = 0; i < batch.data.size(0); ++i) {
      const auto example = static_cast<int64_t>(batch.data[i][0].item<float>());
      EXPECT_EQ(example, order[static_cast<size_t>(b * 4 + i)]);
      EXPECT_EQ(batch.target[i].item<int64_t>(), example * 10);
      seen.push_back(example);
    }
  }
  std::sort(seen.begin(), seen.end());
  std::vector<int64_t> all(10);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(seen, all);
  EXPECT_THROW(source.batch(order, 3), std::out_of_range);
  EXPECT_THROW(source.batch(order, -1), std::out_of_range);
  EXPECT_THROW(source.batch(std::vector<int64_t>(9), 0), std::invalid_argument);
}

// Batches are gathered row by row from CPU tensors (any dtype, any trailing
// shape) and through index_select otherwise: both equal index_select.
TEST(DataSource, BatchesEqualIndexSelectForEachLayout) {
  torch::manual_seed(3);
  const at::Tensor images = torch::randn({37, 1, 5, 7});
  const at::Tensor bytes = torch::randint(0, 255, {37, 13}, torch::kUInt8);
  const at::Tensor labels = torch::randint(0, 10, {37}, torch::kLong);
  const at::Tensor strided = torch::randn({6, 37}).t();  // not contiguous: index_select's path
  for (const at::Tensor& inputs : {images, bytes, strided}) {
    const DataSource source(inputs, labels, 8, true, 11);
    const std::vector<int64_t> order = source.order(1);
    for (int64_t b = 0; b < source.num_batches(); ++b) {
      const int64_t begin = b * 8, count = std::min<int64_t>(8, 37 - begin);
      const at::Tensor index = torch::tensor(std::vector<int64_t>(order.begin() + begin, order.begin() + begin + count));
      const Batch batch = source.batch(order, b);
      EXPECT_TRUE(batch.data.is_contiguous());
      EXPECT_TRUE(torch::equal(batch.data, inputs.index_select(0, index))) << b;
      EXPECT_TRUE(torch::equal(batch.target, labels.index_select(0, index))) << b;
    }
    std::vector<int64_t> bad = order;
    bad[9] = 37;
    EXPECT_CONTAINS(error_of<std::out_of_range>([&] { source.batch(bad, 1); }), "order[9] is 37");
    bad[9] = -1;
    EXPECT_CONTAINS(error_of<std::out_of_range>([&] { source.batch(bad, 1); }), "order[9] is -1");
  }
}

TEST(DataSource, OrderIsAReproduciblePermutationPerEpoch) {
  const at::Tensor x = torch::zeros({50, 2});
  const at::Tensor y = torch::zeros({50}, torch::kLong);
  std::vector<int64_t> identity(50);
  std::iota(identity.begin(), identity.end(), 0);

  const DataSource plain(x, y, 8, /*shuffle=*/false);
  EXPECT_EQ(plain.order(0), identity);
  EXPECT_EQ(plain.order(5), identity);

  const DataSource a(x, y, 8, true, /*seed=*/42);
  const DataSource b(x, y, 8, true, /*seed=*/42);
  const DataSource other_seed(x, y, 8, true, /*seed=*/43);
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    std::vector<int64_t> order = a.order(epoch);
    EXPECT_EQ(order, b.order(epoch)) << epoch;
    torch::manual_seed(static_cast<uint64_t>(epoch));  // LibTorch's generator plays no part
    EXPECT_EQ(order, a.order(epoch)) << epoch;
    EXPECT_NE(order, a.order(epoch + 1)) << epoch;
    EXPECT_NE(order, other_seed.order(epoch)) << epoch;
    EXPECT_NE(order, identity) << epoch;
    std::sort(order.begin(), order.end());
    EXPECT_EQ(order, identity) << epoch;
  }
  // ... nor does order() draw from it.
  const at::Tensor rng_before = at::detail::getDefaultCPUGenerator().get_state();
  (void)a.order(9);
  EXPECT_TRUE(torch::equal(rng_before, at::detail::getDefaultCPUGenerator().get_state()));
  EXPECT_THROW(a.order(-1), std::invalid_argument);
}

TEST(DataSource, DropLast) {
  const at::Tensor x = torch::randn({10, 2});
  const at::Tensor y = torch::zeros({10}, torch::kLong);
  const DataSource keep(x, y, 4, false, 0, /*drop_last=*/false);
  const DataSource drop(x, y, 4, false, 0, /*drop_last=*/true);
  EXPECT_EQ(keep.num_batches(), 3);
  EXPECT_EQ(drop.num_batches(), 2);
  EXPECT_EQ(drop.batch(drop.order(0), 1).data.size(0), 4);
  EXPECT_THROW(drop.batch(drop.order(0), 2), std::out_of_range);
  EXPECT_EQ(DataSource(x, y, 5, false, 0, true).num_batches(), 2);
  EXPECT_EQ(DataSource(x, y, 100, false).num_batches(), 1);
}

TEST(DataSource, BadInputsAreClearErrors) {
  const std::string mismatch = error_of<std::invalid_argument>(
      [] { DataSource(torch::randn({10, 3}), torch::zeros({9}, torch::kLong)); });
  EXPECT_CONTAINS(mismatch, "same number of examples");
  EXPECT_CONTAINS(mismatch, "inputs of shape [10, 3]");
  EXPECT_CONTAINS(mismatch, "targets of shape [9]");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataSource(torch::randn({10, 3}), torch::zeros({10}), 0); }),
                  "batch_size must be at least 1, got 0");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataSource(torch::randn({10, 3}), torch::zeros({10}), -2); }),
                  "got -2");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataSource(torch::randn({0, 3}), torch::zeros({0})); }),
                  "no examples");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataSource(torch::tensor(1.0f), torch::tensor(0)); }),
                  "first dimension");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataSource(at::Tensor(), torch::zeros({3})); }),
                  "inputs tensor is undefined");
  EXPECT_CONTAINS(error_of<std::invalid_argument>(
                      [] { DataSource(torch::randn({5, 2}), torch::zeros({5}), 8, true, 0, /*drop_last=*/true); }),
                  "drop_last with 5 examples and batch_size 8 leaves no batch");
}

// A small map dataset: example i is ([i, i*i], i % 3).
class Squares : public torch::data::datasets::Dataset<Squares> {
 public:
  explicit Squares(size_t n) : n_(n) {}
  torch::data::Example<> get(size_t index) override {
    const auto i = static_cast<float>(index);
    return {torch::tensor({i, i * i}), torch::tensor(static_cast<int64_t>(index % 3))};
  }
  torch::optional<size_t> size() const override { return n_; }

 private:
  size_t n_;
};

TEST(DataSource, FromDataset) {
  const DataSource source = DataSource::from_dataset(Squares(7), /*batch_size=*/3, /*shuffle=*/false);
  EXPECT_EQ(source.size(), 7);
  EXPECT_EQ(source.num_batches(), 3);
  EXPECT_EQ(source.inputs().sizes(), (std::vector<int64_t>{7, 2}));
  EXPECT_EQ(source.targets().sizes(), (std::vector<int64_t>{7}));
  EXPECT_TRUE(torch::equal(source.inputs()[4], torch::tensor({4.0f, 16.0f})));
  EXPECT_TRUE(torch::equal(source.targets(), torch::tensor({0, 1, 2, 0, 1, 2, 0}, torch::kLong)));
  const Batch last = source.batch(source.order(0), 2);
  EXPECT_TRUE(torch::equal(last.data, torch::tensor({{6.0f, 36.0f}})));

  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { DataSource::from_dataset(Squares(0)); }), "empty");

  // And it trains: a fit over it runs 3 batches an epoch.
  struct Regressor : TrainingModule {
    torch::nn::Linear net{2, 3};
    std::shared_ptr<torch::nn::Module> model() override { return net.ptr(); }
    at::Tensor training_step(const Batch& b) override { return F::cross_entropy(net->forward(b.data), b.target); }
    std::unique_ptr<torch::optim::Optimizer> configure_optimizers() override {
      return std::make_unique<torch::optim::SGD>(net->parameters(), torch::optim::SGDOptions(1e-3));
    }
  } module;
  Trainer trainer(quiet().max_epochs(2));
  trainer.fit(module, source);
  EXPECT_EQ(trainer.global_step(), 6);
}

// ---------------------------------------------------------------------------
// Callback defaults

}  // namespace

namespace outer::inner {
template <class T>
class TemplatedCallback : public Callback {};
}  // namespace outer::inner

namespace {

TEST(CallbackDefaults, NameIsTheClassNameWithoutNamespaces) {
  EXPECT_EQ(Counter().name(), "Counter");
  EXPECT_EQ(Recorder().name(), "Recorder");
  EXPECT_EQ(outer::inner::TemplatedCallback<std::string>().name().rfind("TemplatedCallback<std::", 0), 0u)
      << outer::inner::TemplatedCallback<std::string>().name();
  EXPECT_EQ(outer::inner::TemplatedCallback<int>().name(), "TemplatedCallback<int>");
  EXPECT_EQ(Callback().name(), "Callback");
  EXPECT_EQ(Named("custom").name(), "custom");
}

TEST(CallbackDefaults, StateIsAnEmptyDictAndLoadingIsANoOp) {
  Callback callback;
  const c10::IValue state = callback.state_dict();
  ASSERT_TRUE(state.isGenericDict());
  EXPECT_EQ(state.toGenericDict().size(), 0u);
  EXPECT_NO_THROW(callback.load_state_dict(state));
  // Every hook is an empty default.
  Trainer trainer(quiet());
  auto module = seeded_classifier(0);
  EXPECT_NO_THROW(callback.on_fit_start(trainer, *module));
  EXPECT_NO_THROW(callback.on_train_batch_end(trainer, *module));
}

// ---------------------------------------------------------------------------
// Devices

TEST(TrainerDevice, TrainsAndResumesOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const fs::path dir = testing::scratch_dir("TrainerDeviceCuda");
  auto [x, y] = two_blobs(64, 1);
  const DataSource train(x, y, 16, true, 2);  // on the CPU; batches move to the device
  auto module = seeded_classifier(0, OptimizerKind::Adam);
  Trainer trainer(quiet().max_epochs(2).device(torch::kCUDA).output_dir(dir.string()));
  trainer.fit(*module, train, &train);
  for (const auto& p : module->net->parameters()) EXPECT_TRUE(p.is_cuda());
  EXPECT_GT(trainer.last_metrics().at("val_acc"), 0.5);

  auto resumed = seeded_classifier(1, OptimizerKind::Adam);
  Trainer again(quiet().max_epochs(3).device(torch::kCUDA).resume_from((dir / "checkpoint.pt").string()));
  again.fit(*resumed, train, &train);
  EXPECT_EQ(again.global_step(), 12);
}

}  // namespace
}  // namespace sparsity

namespace sparsity {
namespace {

TEST(TrainerThreads, FitSetsLibTorchsThreadsFromTheOptions) {
  const int before = at::get_num_threads();
  auto [x, y] = two_blobs(64, 3);
  DataSource data(x, y, 16);
  auto module = seeded_classifier(1);
  Trainer(TrainerOptions().max_epochs(1).progress(false).threads(1)).fit(*module, data);
  EXPECT_EQ(at::get_num_threads(), 1);
  Trainer(TrainerOptions().max_epochs(1).progress(false)).fit(*module, data);
  EXPECT_EQ(at::get_num_threads(), available_cores()) << "threads 0 (the default) is every available core";
  at::set_num_threads(before);
}

TEST(TrainerThreads, ABadCountIsRejectedWhenTheTrainerIsMade) {
  EXPECT_CONTAINS(testing::error_of<std::invalid_argument>([] { Trainer(TrainerOptions().threads(-3)); }),
                  "Trainer: threads must be 0 (every available core) or positive, got -3");
  EXPECT_CONTAINS(testing::error_of<std::invalid_argument>([] { Trainer(TrainerOptions().threads(1 << 20)); }),
                  "threads 1048576 is more than");
}

}  // namespace
}  // namespace sparsity
