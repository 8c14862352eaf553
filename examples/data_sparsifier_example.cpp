// The data sparsifier in a few lines: the seed's "simple example" (a custom
// threshold sparsifier on a tensor and a parameter) and "sparsifying model
// embeddings" (DataNormSparsifier on an EmbeddingBag), with what happened printed.
#include <fmt/format.h>
#include <sparsity/sparsity.h>
#include <torch/torch.h>

namespace {

// Zeroes every entry whose magnitude is below the data's "threshold".
class ThresholdSparsifier : public sparsity::BaseDataSparsifier {
 public:
  explicit ThresholdSparsifier(double threshold)
      : BaseDataSparsifier(sparsity::Config{{"threshold", threshold}}) {}

 protected:
  void update_mask(const std::string& name, const at::Tensor& data,
                   const sparsity::Config& config) override {
    at::Tensor mask = get_mask(name);  // updated in place: the sparsifier holds it
    mask.masked_fill_(data.abs() < config.get<double>("threshold"), 0);
  }
};

// Percentage of exact zeros.
double zero_percent(const at::Tensor& t) { return 100.0 * t.eq(0).to(torch::kDouble).mean().item<double>(); }

struct Model : torch::nn::Module {
  Model(int64_t features, int64_t embedding_dim, int64_t classes)
      : emb(register_module("emb", torch::nn::EmbeddingBag(features, embedding_dim))),
        linear1(register_module("linear1", torch::nn::Linear(embedding_dim, 32))),
        linear2(register_module("linear2", torch::nn::Linear(32, classes))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    return linear2(torch::relu(linear1(emb(x))));
  }

  torch::nn::EmbeddingBag emb;
  torch::nn::Linear linear1, linear2;
};

}  // namespace

int main() {
  torch::manual_seed(0);

  fmt::print("== A custom sparsifier on a tensor and a parameter ==\n");
  torch::Tensor tensor1 = torch::randn({100, 100});
  torch::Tensor param1 = torch::randn({200, 32}).requires_grad_();
  ThresholdSparsifier thresholds(/*threshold=*/0.2);
  thresholds.add_data("tensor1", tensor1, sparsity::Config{{"threshold", 0.5}});
  thresholds.add_data("param1", param1);
  thresholds.step();  // computes the masks
  for (const auto& name : thresholds.names()) {
    fmt::print("  {:<8} threshold {:.1f}: mask prunes {:.1f}%\n", name,
               thresholds.data_group(name).get<double>("threshold"),
               zero_percent(thresholds.get_mask(name)));
  }
  thresholds.squash_mask();  // writes data * mask into tensor1 and param1
  fmt::print("  after squash_mask: tensor1 is {:.1f}% zeros, param1 {:.1f}%\n", zero_percent(tensor1),
             zero_percent(param1.detach()));

  fmt::print("\n== DataNormSparsifier on a model's embedding table ==\n");
  Model model(/*features=*/1000, /*embedding_dim=*/32, /*classes=*/10);
  sparsity::DataNormSparsifier norms(sparsity::DataNormSparsifierOptions()
                                         .sparsity_level(0.7)
                                         .sparse_block_shape({1, 4})
                                         .norm(sparsity::Norm::L1));
  norms.add_data("emb", model.emb);
  // ... train the model ...
  norms.step();  // masks the 70% of (1 x 4) blocks with the lowest mean |x|
  fmt::print("  embedding [{} x {}]: mask prunes {:.1f}% of the table\n", model.emb->weight.size(0),
             model.emb->weight.size(1), zero_percent(norms.get_mask("emb")));
  norms.squash_mask();
  fmt::print("  after squash_mask the model's own weight is {:.1f}% zeros\n",
             zero_percent(model.emb->weight.detach()));

  fmt::print("\n== 2:4 structured sparsity on a linear layer ==\n");
  sparsity::DataNormSparsifier two_of_four(
      sparsity::DataNormSparsifierOptions().sparsity_level(1.0).sparse_block_shape({1, 4}).zeros_per_block(2));
  two_of_four.add_data("linear1_weight", model.linear1->weight);
  two_of_four.step();
  const at::Tensor blocks = two_of_four.get_mask("linear1_weight").reshape({-1, 4});
  fmt::print("  {} blocks of 4, every one keeps exactly 2: {}\n", blocks.size(0),
             blocks.sum(1).eq(2).all().item<bool>() ? "yes" : "no");

  const auto logits = model.forward(torch::randint(0, 1000, {8, 5}));
  fmt::print("\nThe sparsified model still runs: logits {}x{}\n", logits.size(0), logits.size(1));
  return 0;
}
