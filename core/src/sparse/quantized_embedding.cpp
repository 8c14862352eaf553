#include "sparsity/sparse/quantized_embedding.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/modules/embedding.h>
#include <torch/utils.h>

#include <algorithm>
#include <limits>
#include <ostream>
#include <stdexcept>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/message_text.h"

namespace sparsity {

namespace {

// float32's epsilon: the observer's bound under which a row's scale becomes 1.
constexpr float kScaleEpsilon = std::numeric_limits<float>::epsilon();

// codes = clamp(round(x / scale + zero_point), 0, 255), per row, in float32.
at::Tensor quantize_rows(const at::Tensor& x, const at::Tensor& scales, const at::Tensor& zero_points) {
  const at::Tensor inverse = scales.reciprocal().unsqueeze(1);
  return x.mul(inverse).add(zero_points.unsqueeze(1)).round().clamp(0, 255).to(at::kByte);
}

void check_table(const at::Tensor& table, const char* what) {
  if (!table.defined() || table.dim() != 2 || !table.is_floating_point()) {
    throw std::invalid_argument(fmt::format("{}: expected a 2-D floating table, got {} of shape {}", what,
                                            table.defined() ? c10::toString(table.scalar_type()) : "nothing",
                                            shape_text(table)));
  }
  if (!table.isfinite().all().item<bool>()) {
    throw std::invalid_argument(fmt::format("{}: the table of shape {} holds a non-finite value", what, shape_text(table)));
  }
}

// The Embedding and EmbeddingBag submodules of `module`, by dotted name, in order.
void find_embeddings(const torch::nn::Module& module, const std::string& prefix,
                     std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>& found) {
  for (const auto& child : module.named_children()) {
    const std::string name = prefix.empty() ? child.key() : prefix + "." + child.key();
    if (std::dynamic_pointer_cast<torch::nn::EmbeddingImpl>(child.value()) ||
        std::dynamic_pointer_cast<torch::nn::EmbeddingBagImpl>(child.value())) {
      found.emplace_back(name, child.value());
    } else {
      find_embeddings(*child.value(), name, found);
    }
  }
}

at::Tensor weight_of(const std::shared_ptr<torch::nn::Module>& module) {
  if (auto e = std::dynamic_pointer_cast<torch::nn::EmbeddingImpl>(module)) return e->weight;
  return std::dynamic_pointer_cast<torch::nn::EmbeddingBagImpl>(module)->weight;
}

std::string data_name(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

}  // namespace

QuantizedTable QuantizedTable::quantize(const at::Tensor& table, ZeroPointKind kind) {
  check_table(table, "QuantizedTable::quantize");
  const at::Tensor x = table.detach().to(at::kCPU, at::kFloat).contiguous();
  at::Tensor lo = x.size(1) == 0 ? at::zeros({x.size(0)}) : x.amin(1);
  at::Tensor hi = x.size(1) == 0 ? at::zeros({x.size(0)}) : x.amax(1);
  if (kind == ZeroPointKind::Integer) {
    lo = lo.clamp_max(0);
    hi = hi.clamp_min(0);
  }
  at::Tensor scales = hi.sub(lo).div(255.0f);
  scales = at::where(scales.gt(kScaleEpsilon), scales, at::ones_like(scales));
  at::Tensor zero_points = lo.neg().div(scales);
  if (kind == ZeroPointKind::Integer) zero_points = zero_points.round().clamp(0, 255);
  return {quantize_rows(x, scales, zero_points), scales, zero_points};
}

QuantizedTable QuantizedTable::requantize(const at::Tensor& table) const {
  check_table(table, "QuantizedTable::requantize");
  if (table.sizes() != codes.sizes()) {
    throw std::invalid_argument(fmt::format("QuantizedTable::requantize: a table of shape {} for quantization parameters of shape {}",
                                            shape_text(table), shape_text(codes)));
  }
  const at::Tensor x = table.detach().to(at::kCPU, at::kFloat).contiguous();
  return {quantize_rows(x, scales, zero_points), scales.clone(), zero_points.clone()};
}

at::Tensor QuantizedTable::dequantize() const {
  return codes.to(at::kFloat).sub(zero_points.unsqueeze(1)).mul(scales.unsqueeze(1));
}

std::vector<std::pair<std::string, QuantizedTable>> post_training_sparse_quantize(
    torch::nn::Module& model, BaseDataSparsifier& sparsifier, const SparseQuantizeOptions& options) {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> all, chosen;
  find_embeddings(model, "", all);
  if (!options.select_embeddings()) {
    chosen = all;
  } else {
    for (const std::string& name : *options.select_embeddings()) {
      const auto it = std::find_if(all.begin(), all.end(), [&](const auto& e) { return e.first == name; });
      if (it == all.end()) {
        std::vector<std::string> names;
        for (const auto& e : all) names.push_back(e.first);
        throw std::invalid_argument(fmt::format(
            "post_training_sparse_quantize: '{}' is not an Embedding or EmbeddingBag of the model (those are: {})",
            message_text(name), names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
      }
      chosen.push_back(*it);
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, module] : chosen) {
    names.push_back(data_name(name));
    if (sparsifier.contains(names.back())) {
      throw std::invalid_argument(fmt::format("post_training_sparse_quantize: the sparsifier already holds data '{}'",
                                              message_text(names.back())));
    }
    check_table(weight_of(module), name.c_str());
  }

  std::vector<std::pair<std::string, QuantizedTable>> tables;
  if (options.sparsify_first()) {
    for (size_t i = 0; i < chosen.size(); ++i) sparsifier.add_data(names[i], weight_of(chosen[i].second));
    sparsifier.step();
    if (!names.empty()) sparsifier.squash_mask(names);
    for (const auto& [name, module] : chosen) {
      tables.emplace_back(name, QuantizedTable::quantize(weight_of(module), options.zero_point()));
    }
  } else {
    std::vector<QuantizedTable> first;
    std::vector<at::Tensor> dequantized;
    for (size_t i = 0; i < chosen.size(); ++i) {
      first.push_back(QuantizedTable::quantize(weight_of(chosen[i].second), options.zero_point()));
      dequantized.push_back(first.back().dequantize());
      sparsifier.add_data(names[i], dequantized.back());
    }
    sparsifier.step();
    if (!names.empty()) sparsifier.squash_mask(names);
    for (size_t i = 0; i < chosen.size(); ++i) {
      tables.emplace_back(chosen[i].first, first[i].requantize(dequantized[i]));
    }
  }
  return tables;
}

QuantizedEmbeddingBagImpl::QuantizedEmbeddingBagImpl(QuantizedTable table, torch::nn::EmbeddingBagOptions options_)
    : options(std::move(options_)), codes(std::move(table.codes)), scales(std::move(table.scales)),
      zero_points(std::move(table.zero_points)) {
  if (!codes.defined() || codes.dim() != 2 || codes.scalar_type() != at::kByte) {
    throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: codes must be uint8 [rows, dim], got shape {}",
                                            shape_text(codes)));
  }
  for (const at::Tensor* t : {&scales, &zero_points}) {
    if (!t->defined() || t->dim() != 1 || t->size(0) != codes.size(0) || t->scalar_type() != at::kFloat) {
      throw std::invalid_argument(fmt::format(
          "QuantizedEmbeddingBag: scales and zero points must be float32 [{}] (the rows of the codes), got shape {}",
          codes.size(0), shape_text(*t)));
    }
  }
  options.num_embeddings(codes.size(0)).embedding_dim(codes.size(1));
  reset();
}

void QuantizedEmbeddingBagImpl::reset() {
  // Fresh tensors: clone() resets a copy that still shares the original's.
  codes = register_buffer("codes", codes.to(at::kCPU).clone(at::MemoryFormat::Contiguous));
  scales = register_buffer("scales", scales.to(at::kCPU).clone(at::MemoryFormat::Contiguous));
  zero_points = register_buffer("zero_points", zero_points.to(at::kCPU).clone(at::MemoryFormat::Contiguous));
}

void QuantizedEmbeddingBagImpl::pretty_print(std::ostream& stream) const {
  const char* mode = (c10::get_if<torch::enumtype::kSum>(&options.mode()) != nullptr)    ? "sum"
                     : (c10::get_if<torch::enumtype::kMean>(&options.mode()) != nullptr) ? "mean"
                                                                                      : "max";
  stream << "sparsity::QuantizedEmbeddingBag(num_embeddings=" << codes.size(0) << ", embedding_dim=" << codes.size(1)
         << ", mode=" << mode << ", dtype=uint8)";
}

at::Tensor QuantizedEmbeddingBagImpl::forward(const at::Tensor& input, const at::Tensor& offsets,
                                             const at::Tensor& per_sample_weights) {
  const bool sum = (c10::get_if<torch::enumtype::kSum>(&options.mode()) != nullptr);
  const bool mean = (c10::get_if<torch::enumtype::kMean>(&options.mode()) != nullptr);
  if (!input.defined() || (input.scalar_type() != at::kLong && input.scalar_type() != at::kInt)) {
    throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: input must be int64 or int32 indices, got shape {}",
                                            shape_text(input)));
  }
  const at::Tensor indices = input.to(at::kLong).contiguous().view(-1);
  std::vector<int64_t> starts;  // bag b is indices[starts[b] : starts[b + 1]]
  if (input.dim() == 2) {
    if (offsets.defined()) throw std::invalid_argument("QuantizedEmbeddingBag: offsets given with a 2-D input");
    for (int64_t b = 0; b <= input.size(0); ++b) starts.push_back(b * input.size(1));
  } else if (input.dim() == 1) {
    if (!offsets.defined() || offsets.dim() != 1) {
      throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: a 1-D input needs 1-D offsets, got shape {}",
                                              shape_text(offsets)));
    }
    const at::Tensor o = offsets.to(at::kLong).contiguous();
    starts.assign(o.data_ptr<int64_t>(), o.data_ptr<int64_t>() + o.numel());
    if (!options.include_last_offset()) starts.push_back(indices.numel());
    if (starts.empty() || starts.front() != 0) {
      throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: offsets must start at 0, got shape {}{}",
                                              shape_text(offsets), starts.empty() ? "" : fmt::format(" starting at {}", starts.front())));
    }
    for (size_t b = 1; b < starts.size(); ++b) {
      if (starts[b] < starts[b - 1] || starts[b] > indices.numel()) {
        throw std::invalid_argument(fmt::format(
            "QuantizedEmbeddingBag: offset {} at position {} is not in [{}, {}] (input of {} indices)", starts[b], b,
            starts[b - 1], indices.numel(), indices.numel()));
      }
    }
  } else {
    throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: input must be 1-D or 2-D, got shape {}", shape_text(input)));
  }
  at::Tensor weights;
  if (per_sample_weights.defined()) {
    if (!sum) throw std::invalid_argument("QuantizedEmbeddingBag: per_sample_weights are only supported in sum mode");
    if (per_sample_weights.sizes() != input.sizes() || !per_sample_weights.is_floating_point()) {
      throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: per_sample_weights of shape {} for input of shape {}",
                                              shape_text(per_sample_weights), shape_text(input)));
    }
    weights = per_sample_weights.detach().to(at::kCPU, at::kFloat).contiguous().view(-1);
  }
  const int64_t rows = codes.size(0), dim = codes.size(1);
  const int64_t* idx = indices.data_ptr<int64_t>();
  for (int64_t i = 0; i < indices.numel(); ++i) {
    if (idx[i] < 0 || idx[i] >= rows) {
      throw std::invalid_argument(fmt::format("QuantizedEmbeddingBag: index {} at position {} is out of range [0, {})",
                                              idx[i], i, rows));
    }
  }
  const c10::optional<int64_t> padding = options.padding_idx();
  const int64_t bags = static_cast<int64_t>(starts.size()) - 1;
  at::Tensor out = at::zeros({bags, dim}, at::kFloat);
  float* o = out.data_ptr<float>();
  const uint8_t* c = codes.data_ptr<uint8_t>();
  const float* s = scales.data_ptr<float>();
  const float* z = zero_points.data_ptr<float>();
  const float* w = weights.defined() ? weights.data_ptr<float>() : nullptr;
  std::vector<float> row(dim);
  for (int64_t b = 0; b < bags; ++b) {
    float* acc = o + b * dim;
    int64_t count = 0;
    for (int64_t i = starts[b]; i < starts[b + 1]; ++i) {
      if (padding && idx[i] == *padding) continue;
      const uint8_t* code = c + idx[i] * dim;
      const float scale = s[idx[i]], zero = z[idx[i]];
      const float weight = w != nullptr ? w[i] : 1.0f;
      for (int64_t d = 0; d < dim; ++d) row[d] = (static_cast<float>(code[d]) - zero) * scale;
      if (sum || mean) {
        for (int64_t d = 0; d < dim; ++d) acc[d] += weight * row[d];
      } else {
        for (int64_t d = 0; d < dim; ++d) acc[d] = count == 0 ? row[d] : std::max(acc[d], row[d]);
      }
      ++count;
    }
    if (mean && count > 0) {
      for (int64_t d = 0; d < dim; ++d) acc[d] /= static_cast<float>(count);
    }
  }
  return out;
}

}  // namespace sparsity
