#pragma once

#include <torch/arg.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/option_fields.h"
#include "sparsity/plugin/model_copy.h"
#include "sparsity/plugin/parameter_selection.h"
#include "sparsity/plugin/sparsifying_callback.h"
#include "sparsity/plugin/sparsity_report.h"

#include "sparsity/plugin/torch_fwd.h"

namespace sparsity {

class BaseDataSparsifier;

/// Options of `PostTrainingDataSparsity` beyond the reference's.
struct PostTrainingDataSparsityOptions {
  /// The config keys: `name`, `fine_tune_epochs`, `include`, `exclude` (the
  /// parameter selection's patterns: a string or a list of strings).
  /// `model_factory` has no Config form.
  static const OptionFields<PostTrainingDataSparsityOptions>& fields();

  /// Which parameters are sparsified (default: all, as the reference).
  TORCH_ARG(ParameterSelection, parameters) = {};
  /// Builds a fresh model when the trained one is not cloneable.
  TORCH_ARG(ModelFactory, model_factory) = nullptr;
  /// The callback's `name()` (in logs and checkpoints); empty: "PostTrainingDataSparsity". Give
  /// each of several such callbacks on one Trainer its own.
  TORCH_ARG(std::string, name) = "";
  /// After sparsifying the copy, train it this many epochs more on the
  /// training data with its masks held (a `MaskGuard`), so that it recovers
  /// what pruning cost; 0 = the reference's behaviour, no training. The
  /// trained model is left exactly as it was. At most 10000.
  TORCH_ARG(int64_t, fine_tune_epochs) = 0;
};

/// Sparsifies a copy of the model once training is done (the reference's
/// `PostTrainingDataSparsity`). At `on_fit_end`: deep-copies the module's model,
/// puts the copy in eval mode, creates the data sparsifier by type name and
/// arguments (`make_data_sparsifier`), attaches every selected parameter
/// (`a.b.weight` as `a_b_weight`), `step()`, `squash_mask()`, and logs each
/// layer's sparsity. The trained model is untouched; `sparsified()` is the copy.
/// With `fine_tune_epochs`, the copy is then trained on under its masks: its
/// weights are swapped into the live model, which `Trainer::train_epochs`
/// trains with a fresh optimizer and a `MaskGuard`, copied back, and the live
/// model's parameters, buffers and train/eval mode are restored bit for bit.
///
/// Example:
/// ```
/// auto post = std::make_shared<sparsity::PostTrainingDataSparsity>(
///     "DataNormSparsifier", sparsity::Config{{"sparsity_level", 0.8}, {"sparse_block_shape", {1, 4}}});
/// trainer.add_callback(post);
/// trainer.fit(module, train);
/// auto sparse_model = post->sparsified();
/// ```
///
/// Typed, with the sparsifier built in C++:
/// ```
/// auto typed = std::make_shared<sparsity::PostTrainingDataSparsity>(
///     [] { return std::make_unique<sparsity::DataNormSparsifier>(sparsity::DataNormSparsifierOptions().sparsity_level(0.8)); },
///     sparsity::PostTrainingDataSparsityOptions().name("post80"));
/// ```
///
/// Registered for `make_callback` as "PostTrainingDataSparsity" with the keys
/// `sparsifier: {type, args}` and those of the options (`to_config()`).
class PostTrainingDataSparsity : public SparsifyingCallback {
 public:
  /// The reference's form: the sparsifier by registered type name and arguments.
  PostTrainingDataSparsity(std::string data_sparsifier_type, Config data_sparsifier_args,
                           PostTrainingDataSparsityOptions options = {});
  /// The typed form: `make_sparsifier` builds the sparsifier (called once now
  /// to check it, and at `on_fit_end`).
  explicit PostTrainingDataSparsity(DataSparsifierBuilder make_sparsifier, PostTrainingDataSparsityOptions options = {});
  ~PostTrainingDataSparsity() override;

  /// Reads {sparsifier: {type, args}, name, fine_tune_epochs, include, exclude}; mistakes are
  /// ConfigErrors with their key path.
  static std::shared_ptr<PostTrainingDataSparsity> from_config(const Config& config);

  /// The sparsified copy; null before `on_fit_end`.
  std::shared_ptr<torch::nn::Module> sparsified() const override { return sparsified_; }
  /// The sparsifier that sparsified it; null before `on_fit_end`.
  BaseDataSparsifier* data_sparsifier() const override { return data_sparsifier_.get(); }
  /// With `fine_tune_epochs`: the copy's mean training loss in the last
  /// fine-tuning epoch; NaN otherwise.
  double fine_tune_loss() const { return fine_tune_loss_; }
  /// Per-parameter sparsity of the copy; empty before `on_fit_end`.
  const std::vector<ParameterSparsity>& report() const { return report_; }
  const PostTrainingDataSparsityOptions& options() const { return options_; }

  /// Checks, before training, that the model can be copied (or has a
  /// model_factory) and that the selection picks a parameter of it.
  void on_fit_start(Trainer& trainer, TrainingModule& module) override;
  void on_fit_end(Trainer& trainer, TrainingModule& module) override;
  void check_model(const torch::nn::Module& model) const override;
  Config to_config() const override;
  std::string name() const override { return options_.name().empty() ? "PostTrainingDataSparsity" : options_.name(); }

 private:
  std::string type_;  ///< empty when built from a DataSparsifierBuilder
  Config args_;
  DataSparsifierBuilder make_sparsifier_;
  PostTrainingDataSparsityOptions options_;
  std::unique_ptr<BaseDataSparsifier> data_sparsifier_;
  std::shared_ptr<torch::nn::Module> sparsified_;
  std::vector<ParameterSparsity> report_;
  double fine_tune_loss_ = std::numeric_limits<double>::quiet_NaN();
  void fine_tune(Trainer& trainer, TrainingModule& module, const std::vector<std::string>& attached);
};

}  // namespace sparsity
