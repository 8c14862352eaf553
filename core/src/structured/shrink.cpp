#include "sparsity/structured/shrink.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <sstream>
#include <stdexcept>
#include <c10/util/variant.h>

namespace sparsity {

namespace {

namespace nn = torch::nn;

// "torch::nn::Linear" for a LinearImpl: the name users write.
std::string type_name(const nn::Module& module) {
  std::string name = module.name();
  const std::string suffix = "Impl";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.resize(name.size() - suffix.size());
  }
  return name;
}

struct Layer {
  std::string path;
  const nn::AnyModule* any;
  nn::Module* module() const { return any->ptr().get(); }
  std::string type() const { return type_name(*any->ptr()); }
  template <class Impl>
  Impl* as() const {
    return dynamic_cast<Impl*>(module());
  }
};

// Activations that map each element on its own, so a channel that is one
// constant stays one constant.
bool is_elementwise_activation(const Layer& layer) {
  return layer.as<nn::ReLUImpl>() || layer.as<nn::ReLU6Impl>() || layer.as<nn::LeakyReLUImpl>() ||
         layer.as<nn::ELUImpl>() || layer.as<nn::SELUImpl>() || layer.as<nn::CELUImpl>() ||
         layer.as<nn::GELUImpl>() || layer.as<nn::SiLUImpl>() || layer.as<nn::MishImpl>() ||
         layer.as<nn::SigmoidImpl>() || layer.as<nn::TanhImpl>() || layer.as<nn::SoftplusImpl>() ||
         layer.as<nn::HardtanhImpl>() || layer.as<nn::HardshrinkImpl>() || layer.as<nn::SoftshrinkImpl>() ||
         layer.as<nn::TanhshrinkImpl>() || layer.as<nn::LogSigmoidImpl>() || layer.as<nn::SoftsignImpl>() ||
         layer.as<nn::ThresholdImpl>();
}

// Layers that pass a constant channel through as the same constant (in eval mode).
bool keeps_constants(const Layer& layer) {
  return layer.as<nn::DropoutImpl>() || layer.as<nn::Dropout2dImpl>() || layer.as<nn::IdentityImpl>() ||
         layer.as<nn::MaxPool2dImpl>() || layer.as<nn::AdaptiveAvgPool2dImpl>() ||
         layer.as<nn::AdaptiveMaxPool2dImpl>();
}

bool is_weighted(const Layer& layer) { return layer.as<nn::LinearImpl>() || layer.as<nn::Conv2dImpl>(); }

const char* kSupported =
    "between two Linear/Conv2d layers shrink accepts elementwise activations, Dropout, Dropout2d, Identity, "
    "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, BatchNorm1d, BatchNorm2d and Flatten(1, -1)";

std::invalid_argument layer_error(const Layer& layer, const std::string& why) {
  return std::invalid_argument(fmt::format("shrink: layer '{}' ({}): {}", layer.path, layer.type(), why));
}

// Whether the zero padding of `conv` reads zeros at the borders, where a
// constant input channel would otherwise be seen whole.
bool zero_padded(const nn::Conv2dImpl& conv) {
  const auto& options = conv.options;
  if (!c10::holds_alternative<torch::enumtype::kZeros>(options.padding_mode())) return false;
  const auto& padding = options.padding();
  if (c10::holds_alternative<torch::enumtype::kValid>(padding)) return false;
  if (c10::holds_alternative<torch::enumtype::kSame>(padding)) {
    for (int d = 0; d < 2; ++d) {
      if (options.dilation()->at(d) * (options.kernel_size()->at(d) - 1) > 0) return true;
    }
    return false;
  }
  const auto& sizes = c10::get<torch::ExpandingArray<2>>(padding);
  return sizes->at(0) > 0 || sizes->at(1) > 0;
}

// Removed channels of the layer being processed, as the layers after it see them.
struct Pending {
  bool active = false;
  int64_t channels = 0;           // the producer's original output count
  std::vector<int64_t> kept;      // channels that stay, ascending
  std::vector<int64_t> removed;   // channels that go, ascending
  at::Tensor values;              // [channels] double: each removed channel's constant at the next weighted layer
  bool flattened = false;         // a Flatten lies between producer and consumer
};

at::Tensor index_tensor(const std::vector<int64_t>& indices, const at::Tensor& like) {
  return at::tensor(indices, at::TensorOptions().dtype(at::kLong)).to(like.device());
}

// Channel indices spread over the H*W columns each channel has after Flatten.
std::vector<int64_t> spread(const std::vector<int64_t>& channels, int64_t group) {
  std::vector<int64_t> columns;
  columns.reserve(channels.size() * static_cast<size_t>(group));
  for (int64_t c : channels) {
    for (int64_t s = 0; s < group; ++s) columns.push_back(c * group + s);
  }
  return columns;
}

// A weighted layer's effective weight and bias once the removed inputs are
// cut out and their constants folded into the bias. `in_dim` is 1 for both
// Linear ([out, in]) and Conv2d ([out, in, kh, kw]).
struct Effective {
  at::Tensor weight;
  at::Tensor bias;  // undefined: no bias
};

Effective apply_pending(const Layer& layer, const at::Tensor& weight, const at::Tensor& bias, const Pending& pending) {
  Effective e{weight, bias};
  if (!pending.active) return e;
  int64_t group = 1;
  if (pending.flattened) {
    if (weight.size(1) % pending.channels != 0) {
      throw layer_error(layer, fmt::format("its {} input features are not a whole number of columns for each of the "
                                           "{} channels flattened before it",
                                           weight.size(1), pending.channels));
    }
    group = weight.size(1) / pending.channels;
  } else if (weight.size(1) != pending.channels) {
    throw layer_error(layer, fmt::format("it takes {} inputs but the layer before it has {} outputs", weight.size(1),
                                         pending.channels));
  }
  const at::Tensor kept = index_tensor(spread(pending.kept, group), weight);
  const at::Tensor removed = index_tensor(spread(pending.removed, group), weight);
  const at::Tensor values =
      pending.values.index_select(0, index_tensor(pending.removed, pending.values)).repeat_interleave(group);
  // Every output sees each removed input as the same constant: its weight
  // (summed over a filter's kernel) times that constant joins the bias.
  at::Tensor cut = weight.index_select(1, removed).to(at::kDouble);
  if (cut.dim() > 2) cut = cut.sum({2, 3});
  const at::Tensor fold = cut.matmul(values.to(cut.device()));
  e.weight = weight.index_select(1, kept);
  if (bias.defined()) {
    e.bias = (bias.to(at::kDouble) + fold).to(bias.scalar_type());
  } else if (fold.ne(0).any().item<bool>()) {
    e.bias = fold.to(weight.scalar_type());
  }
  return e;
}

// Dead units: zero weight slice and zero (or no) bias entry.
std::vector<int64_t> dead_units(const Effective& e) {
  const int64_t units = e.weight.size(0);
  at::Tensor dead = e.weight.reshape({units, -1}).ne(0).any(1).logical_not();
  if (e.bias.defined()) dead = dead.logical_and(e.bias.eq(0));
  dead = dead.to(at::kCPU);
  std::vector<int64_t> out;
  const bool* flags = dead.contiguous().data_ptr<bool>();
  for (int64_t u = 0; u < units; ++u) {
    if (flags[u]) out.push_back(u);
  }
  return out;
}

// Follows the dead units of the weighted layer at `index` to the next weighted
// layer: computes each one's constant there, checks every layer between, and
// keeps (undoes the removal of) dead units whose constant could not be folded.
Pending follow(const std::vector<Layer>& layers, size_t index, int64_t units, std::vector<int64_t> dead,
               ShrinkReport& report) {
  Pending p;
  p.channels = units;
  at::Tensor values = at::zeros({units}, at::TensorOptions().dtype(at::kDouble));
  std::vector<bool> keep_anyway(static_cast<size_t>(units), false);
  const auto keep_nonzero = [&](const Layer& why) {
    const at::Tensor nonzero = values.ne(0);
    bool any = false;
    for (int64_t u : dead) {
      if (nonzero[u].item<bool>() && !keep_anyway[static_cast<size_t>(u)]) keep_anyway[static_cast<size_t>(u)] = any = true;
    }
    if (any) {
      report.kept_for_exactness.push_back(
          fmt::format("{} (a nonzero constant reaches '{}', {})", layers[index].path, why.path, why.type()));
    }
  };
  const Layer& producer = layers[index];
  bool reached = false;
  for (size_t j = index + 1; j < layers.size() && !reached; ++j) {
    const Layer& layer = layers[j];
    if (layer.as<nn::LinearImpl>()) {
      reached = true;
    } else if (auto* conv = layer.as<nn::Conv2dImpl>()) {
      if (p.flattened) throw layer_error(layer, "a Conv2d after Flatten cannot take a shrunk layer's outputs");
      if (conv->options.groups() != 1) {
        throw layer_error(layer, fmt::format("a grouped Conv2d (groups {}) cannot lose input channels",
                                             conv->options.groups()));
      }
      // Zero padding sees a constant channel only partly at the borders: no bias can stand for it.
      if (zero_padded(*conv)) keep_nonzero(layer);
      reached = true;
    } else if (layer.as<nn::BatchNorm1dImpl>() || layer.as<nn::BatchNorm2dImpl>()) {
      const auto* bn = dynamic_cast<const nn::BatchNormImplBase<1, nn::BatchNorm1dImpl>*>(layer.module());
      const auto* bn2 = dynamic_cast<const nn::BatchNormImplBase<2, nn::BatchNorm2dImpl>*>(layer.module());
      const bool flat_bn1d = bn != nullptr && p.flattened;
      if (flat_bn1d) throw layer_error(layer, "a BatchNorm1d after Flatten would normalize single columns of a channel");
      const auto& options = bn ? bn->options : bn2->options;
      const at::Tensor mean = bn ? bn->running_mean : bn2->running_mean;
      const at::Tensor var = bn ? bn->running_var : bn2->running_var;
      if (!options.track_running_stats()) {
        throw layer_error(layer, "a BatchNorm without running stats normalizes with the batch's statistics");
      }
      if (options.num_features() != units) {
        throw layer_error(layer, fmt::format("it has {} features but the layer before it has {} outputs",
                                             options.num_features(), units));
      }
      values = (values - mean.to(at::kCPU, at::kDouble)) / (var.to(at::kCPU, at::kDouble) + options.eps()).sqrt();
      if (options.affine()) {
        const at::Tensor gamma = bn ? bn->weight : bn2->weight;
        const at::Tensor beta = bn ? bn->bias : bn2->bias;
        values = values * gamma.detach().to(at::kCPU, at::kDouble) + beta.detach().to(at::kCPU, at::kDouble);
      }
    } else if (is_elementwise_activation(layer)) {
      values = layer.any->clone().forward(values);
    } else if (auto* pool = layer.as<nn::AvgPool2dImpl>()) {
      const auto& o = pool->options;
      const bool padded = o.padding()->at(0) > 0 || o.padding()->at(1) > 0;
      // Averages over the padding (or a custom divisor) scale a constant by position.
      if ((padded && o.count_include_pad()) || o.divisor_override().has_value()) keep_nonzero(layer);
    } else if (auto* flatten = layer.as<nn::FlattenImpl>()) {
      if (flatten->options.start_dim() != 1 || flatten->options.end_dim() != -1) {
        throw layer_error(layer, fmt::format("only Flatten(1, -1) is supported after a shrunk layer, got Flatten({}, {})",
                                             flatten->options.start_dim(), flatten->options.end_dim()));
      }
      p.flattened = true;
    } else if (!keeps_constants(layer)) {
      throw layer_error(layer, fmt::format("it follows '{}' ({}), whose dead units would be removed; {}",
                                           producer.path, producer.type(), kSupported));
    }
  }
  for (int64_t u = 0; u < units; ++u) {
    const bool is_dead = std::find(dead.begin(), dead.end(), u) != dead.end();
    (is_dead && !keep_anyway[static_cast<size_t>(u)] ? p.removed : p.kept).push_back(u);
  }
  p.values = values;
  p.active = !p.removed.empty();
  return p;
}

void copy_into(at::Tensor& target, const at::Tensor& source) { target.set_data(source.detach().clone()); }

nn::Conv2dOptions conv_options(const nn::detail::ConvNdOptions<2>& source, int64_t in, int64_t out, bool bias) {
  return nn::Conv2dOptions(in, out, source.kernel_size())
      .stride(source.stride())
      .padding(source.padding())
      .dilation(source.dilation())
      .groups(source.groups())
      .bias(bias)
      .padding_mode(source.padding_mode());
}

// A BatchNorm with only the channels in `kept`.
template <class Holder, class Impl>
Holder sliced_batchnorm(const Impl& source, const std::vector<int64_t>& kept) {
  auto options = source.options;
  options.num_features(static_cast<int64_t>(kept.size()));
  Holder out(options);
  const auto pick = [&](const at::Tensor& t) { return t.index_select(0, index_tensor(kept, t)); };
  if (options.affine()) {
    copy_into(out->weight, pick(source.weight));
    copy_into(out->bias, pick(source.bias));
  }
  copy_into(out->running_mean, pick(source.running_mean));
  copy_into(out->running_var, pick(source.running_var));
  copy_into(out->num_batches_tracked, source.num_batches_tracked);
  return out;
}

}  // namespace

int64_t count_parameters(const nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

int64_t ShrinkReport::units_removed() const {
  int64_t removed = 0;
  for (const auto& layer : layers) removed += layer.units_before - layer.units_after;
  return removed;
}

std::string ShrinkReport::to_string() const {
  std::ostringstream out;
  for (const auto& layer : layers) {
    out << fmt::format("{} {}: {} -> {} units\n", layer.path, layer.type, layer.units_before, layer.units_after);
  }
  for (const auto& kept : kept_for_exactness) out << "kept dead units of " << kept << "\n";
  out << fmt::format("parameters: {} -> {}\n", parameters_before, parameters_after);
  return out.str();
}

ShrinkResult shrink(const nn::Module& model) {
  const auto* sequential = dynamic_cast<const nn::SequentialImpl*>(&model);
  if (sequential == nullptr) {
    throw std::invalid_argument(fmt::format(
        "shrink: the model must be a torch::nn::Sequential (its units are followed layer by layer), got {}",
        type_name(model)));
  }
  std::vector<Layer> layers;
  const auto children = sequential->named_children();
  size_t i = 0;
  for (const auto& any : *sequential) layers.push_back(Layer{children[i++].key(), &any});

  size_t last_weighted = layers.size();
  for (size_t j = 0; j < layers.size(); ++j) {
    if (is_weighted(layers[j])) last_weighted = j;
  }

  torch::NoGradGuard no_grad;
  ShrinkResult result;
  result.report.parameters_before = count_parameters(model);
  Pending pending;
  for (size_t j = 0; j < layers.size(); ++j) {
    const Layer& layer = layers[j];
    auto* linear = layer.as<nn::LinearImpl>();
    auto* conv = layer.as<nn::Conv2dImpl>();
    if (linear || conv) {
      if (conv && conv->options.groups() != 1 && pending.active) {
        throw layer_error(layer, fmt::format("a grouped Conv2d (groups {}) cannot lose input channels",
                                             conv->options.groups()));
      }
      const at::Tensor weight = (linear ? linear->weight : conv->weight).detach();
      const at::Tensor bias_param = linear ? linear->bias : conv->bias;
      const at::Tensor bias = bias_param.defined() ? bias_param.detach() : at::Tensor();
      const Effective e = apply_pending(layer, weight, bias, pending);
      const int64_t units = e.weight.size(0);
      // A grouped Conv2d's filters are tied to its groups; it keeps them all.
      const bool removable = j != last_weighted && !(conv && conv->options.groups() != 1);
      std::vector<int64_t> dead = removable ? dead_units(e) : std::vector<int64_t>{};
      if (!dead.empty() && static_cast<int64_t>(dead.size()) == units) dead.erase(dead.begin());
      pending = dead.empty() ? Pending{} : follow(layers, j, units, dead, result.report);
      const std::vector<int64_t>& kept = pending.active ? pending.kept : std::vector<int64_t>{};
      const at::Tensor out_weight = pending.active ? e.weight.index_select(0, index_tensor(kept, e.weight)) : e.weight;
      at::Tensor out_bias = e.bias;
      if (pending.active && out_bias.defined()) out_bias = out_bias.index_select(0, index_tensor(kept, out_bias));
      const int64_t in = out_weight.size(1), out = out_weight.size(0);
      if (linear) {
        nn::Linear built(nn::LinearOptions(in, out).bias(out_bias.defined()));
        copy_into(built->weight, out_weight);
        if (out_bias.defined()) copy_into(built->bias, out_bias);
        result.model->push_back(std::string(layer.path), built);
      } else {
        nn::Conv2d built(conv_options(conv->options, in, out, out_bias.defined()));
        copy_into(built->weight, out_weight);
        if (out_bias.defined()) copy_into(built->bias, out_bias);
        result.model->push_back(std::string(layer.path), built);
      }
      result.report.layers.push_back(ShrinkLayer{layer.path, layer.type(), units, out});
    } else if (pending.active && layer.as<nn::BatchNorm1dImpl>()) {
      result.model->push_back(std::string(layer.path),
                              sliced_batchnorm<nn::BatchNorm1d>(*layer.as<nn::BatchNorm1dImpl>(), pending.kept));
    } else if (pending.active && layer.as<nn::BatchNorm2dImpl>()) {
      result.model->push_back(std::string(layer.path),
                              sliced_batchnorm<nn::BatchNorm2d>(*layer.as<nn::BatchNorm2dImpl>(), pending.kept));
    } else {
      result.model->push_back(std::string(layer.path), layer.any->clone());
    }
  }
  // Built layers start on the CPU in float; the model's own may be elsewhere.
  if (!layers.empty()) {
    const auto params = model.parameters();
    if (!params.empty()) result.model->to(params.front().device());
  }
  result.model->train(model.is_training());
  result.report.parameters_after = count_parameters(*result.model);
  return result;
}

ShrinkResult shrink(const nn::Sequential& model) { return shrink(*model); }

}  // namespace sparsity
