#include "sparsity/data_sparsifier/base_data_sparsifier.h"

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <c10/util/irange.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/nn/modules/embedding.h>

#include <stdexcept>

#include "../config_ivalue.h"
#include "mask_codec.h"
#include "masked_product.h"
#include "sparsity/state_file.h"
#include "sparsity/logging.h"
#include "sparsity/message_text.h"

namespace sparsity {

namespace {

constexpr const char* kStateFormat = "sparsity.BaseDataSparsifier";
constexpr int64_t kStateVersion = 1;

void check_name(const std::string& name) {
  if (name.empty()) throw std::invalid_argument("data name must not be empty");
  if (name.find('.') != std::string::npos) {
    throw std::invalid_argument(fmt::format(
        "data name '{}' contains '.', which is not allowed (use '_', e.g. 'a_b_weight')", name));
  }
}

at::Tensor ones_mask_like(const at::Tensor& data) {
  return at::ones(data.sizes(), data.options().dtype(at::kByte).requires_grad(false));
}

// What gets saved for a data tensor: detached, and cut out of a larger storage
// so that a slice of a big tensor does not drag the whole storage into the file.
// requires_grad is kept so that a parameter loads back as one.
at::Tensor savable(const at::Tensor& data) {
  at::Tensor t = data.detach();
  const bool owns_storage =
      t.is_contiguous() && t.storage_offset() == 0 &&
      static_cast<int64_t>(t.storage().nbytes()) == t.numel() * static_cast<int64_t>(t.element_size());
  if (!owns_storage) t = t.clone(at::MemoryFormat::Contiguous);
  return data.requires_grad() ? t.requires_grad_(true) : t;
}

void check_mask_shape(const std::string& name, const at::Tensor& data, const at::Tensor& mask) {
  // The data and the live mask are the caller's tensors, so either may have
  // been resized in place since add_data; LibTorch's kernels would then fail
  // an internal assertion instead of saying what happened.
  if (!mask.sizes().equals(data.sizes())) {
    throw std::runtime_error(fmt::format(
        "data '{}' has shape {} but its mask has shape {}: the data or its mask was resized after "
        "add_data; register the resized data again with add_data('{}', data, config, "
        "/*reuse_mask=*/false)",
        name, shape_text(data), shape_text(mask), name));
  }
}

}  // namespace

BaseDataSparsifier::BaseDataSparsifier(Config defaults) : defaults_(std::move(defaults)) {}

BaseDataSparsifier::~BaseDataSparsifier() = default;

const BaseDataSparsifier::Entry& BaseDataSparsifier::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    throw std::out_of_range(fmt::format("no data named '{}' in the sparsifier (names: {})", name,
                                        fmt::join(order_, ", ")));
  }
  return it->second;
}

BaseDataSparsifier::Entry& BaseDataSparsifier::entry(const std::string& name) {
  return const_cast<Entry&>(std::as_const(*this).entry(name));
}

void BaseDataSparsifier::validate_data(const std::string& name, const at::Tensor& data,
                                       const Config& /*config*/) const {
  if (!at::isFloatingType(data.scalar_type())) {
    throw std::invalid_argument(
        fmt::format("data '{}' has dtype {}; a data sparsifier needs floating-point data", name,
                    c10::toString(data.scalar_type())));
  }
}

at::Tensor BaseDataSparsifier::add_data(const std::string& name, const at::Tensor& data,
                                        const Config& config, bool reuse_mask) {
  check_name(name);
  if (!data.defined()) throw std::invalid_argument(fmt::format("data '{}' is an undefined tensor", name));
  if (data.layout() != at::kStrided) {
    throw std::invalid_argument(
        fmt::format("data '{}' has layout {}; only dense (strided) tensors are supported", name,
                    c10::toString(data.layout())));
  }

  auto existing = entries_.find(name);
  const bool replacing = existing != entries_.end();
  Config merged = (replacing ? existing->second.config : defaults_).merged_with(config);
  validate_data(name, data, merged);

  if (!replacing) {
    Entry fresh;
    fresh.data = data;
    fresh.mask = ones_mask_like(data);
    fresh.config = std::move(merged);
    entries_.emplace(name, std::move(fresh));
    order_.push_back(name);
    return detail::masked_product(data, entries_.at(name).mask);
  }

  Entry& e = existing->second;
  if (reuse_mask && !e.mask.sizes().equals(data.sizes())) {
    throw std::invalid_argument(fmt::format(
        "cannot reuse the mask of '{}': it has shape {} but the new data has shape {}; "
        "call add_data with reuse_mask=false to start from a fresh mask",
        name, shape_text(e.mask), shape_text(data)));
  }
  if (replace_warning_ && replace_warned_.insert(name).second) {
    logger()->warn(
        "replacing the data named '{}' (its config is kept{}); did you mean a different name? "
        "(warned once per name)",
        name, reuse_mask ? " and so is its mask" : "");
  }

  // The mask object outlives replacements: a user holding it keeps seeing it.
  {
    at::NoGradGuard no_grad;
    if (!reuse_mask) {
      if (e.mask.sizes().equals(data.sizes()) && e.mask.device() == data.device()) {
        e.mask.fill_(1);
      } else {
        e.mask.set_(ones_mask_like(data));
      }
    } else if (e.mask.device() != data.device()) {
      e.mask.set_(e.mask.to(data.device()));
    }
  }
  e.data = data;
  e.config = std::move(merged);
  e.parametrized = true;
  return detail::masked_product(data, e.mask);
}

at::Tensor BaseDataSparsifier::add_data(const std::string& name, const torch::nn::Embedding& data,
                                        const Config& config, bool reuse_mask) {
  if (data.is_empty()) throw std::invalid_argument(fmt::format("embedding '{}' is empty", name));
  return add_data(name, data->weight, config, reuse_mask);
}

at::Tensor BaseDataSparsifier::add_data(const std::string& name,
                                        const torch::nn::EmbeddingBag& data, const Config& config,
                                        bool reuse_mask) {
  if (data.is_empty()) throw std::invalid_argument(fmt::format("embedding bag '{}' is empty", name));
  return add_data(name, data->weight, config, reuse_mask);
}

at::Tensor BaseDataSparsifier::get_data(const std::string& name, bool return_original) const {
  const Entry& e = entry(name);
  if (!e.parametrized) {
    if (return_original) {
      throw std::logic_error(fmt::format(
          "the mask of '{}' was squashed: its original data no longer exists "
          "(use get_data(name, /*return_original=*/false) for the squashed data)",
          name));
    }
    return e.data;
  }
  if (return_original) return e.data;
  check_mask_shape(name, e.data, e.mask);
  return detail::masked_product(e.data, e.mask);
}

at::Tensor BaseDataSparsifier::get_mask(const std::string& name) const { return entry(name).mask; }

const Config& BaseDataSparsifier::data_group(const std::string& name) const {
  return entry(name).config;
}

Config& BaseDataSparsifier::data_group(const std::string& name) { return entry(name).config; }

bool BaseDataSparsifier::is_parametrized(const std::string& name) const {
  return entry(name).parametrized;
}

const Config& BaseDataSparsifier::state(const std::string& name) const { return entry(name).state; }

Config& BaseDataSparsifier::state(const std::string& name) { return entry(name).state; }

void BaseDataSparsifier::check_config(const std::string& name, const Config& config) const {
  validate_data(name, entry(name).data, config);
}

void BaseDataSparsifier::step() {
  // Every name is checked before any mask changes (or the step is counted).
  if (mask_update_enabled_) {
    for (const auto& name : order_) {
      const Entry& e = entries_.at(name);
      if (e.parametrized) check_mask_shape(name, e.data, e.mask);
    }
  }
  ++step_count_;
  if (!mask_update_enabled_) return;
  at::NoGradGuard no_grad;
  std::vector<std::string> parametrized;
  parametrized.reserve(order_.size());
  for (const auto& name : order_) {
    if (entries_.at(name).parametrized) parametrized.push_back(name);
  }
  update_masks(parametrized);
}

void BaseDataSparsifier::update_masks(const std::vector<std::string>& names) {
  for (const auto& name : names) {
    Entry& e = entries_.at(name);
    update_mask(name, e.data, e.config);
  }
}

void BaseDataSparsifier::squash_mask(const std::vector<std::string>& names,
                                     bool leave_parametrized) {
  // Every name must exist, and its mask fit its data, before anything changes.
  for (const auto& name : names.empty() ? order_ : names) {
    const Entry& e = entry(name);
    if (e.parametrized && leave_parametrized) check_mask_shape(name, e.data, e.mask);
  }
  at::NoGradGuard no_grad;
  for (const auto& name : names.empty() ? order_ : names) {
    Entry& e = entries_.at(name);
    if (!e.parametrized) continue;
    if (leave_parametrized) detail::mask_in_place(e.data, e.mask);
    e.parametrized = false;
  }
}

std::string BaseDataSparsifier::to_string() const {
  std::string out = "BaseDataSparsifier (";
  for (const auto& name : order_) {
    const Entry& e = entries_.at(name);
    out += fmt::format("\n\tData Group\n\t    name: {}\n", name);
    for (const auto& [key, value] : e.config.entries())
      out += fmt::format("\t    {}: {}\n", key, value.to_string());
  }
  return out + ")";
}

c10::IValue BaseDataSparsifier::state_dict() const {
  auto data_groups = detail::new_state_dict(), state = detail::new_state_dict(),
       data = detail::new_state_dict(), parametrized = detail::new_state_dict();
  for (const auto& name : order_) {
    const Entry& e = entries_.at(name);
    // The saved state holds the mask under "mask": a state entry of that name
    // would take its place and make the file unloadable.
    if (e.state.contains("mask")) {
      throw std::invalid_argument(fmt::format(
          "the state of data '{}' has an entry 'mask', a key reserved for the saved mask; "
          "rename that state entry",
          name));
    }
    check_mask_shape(name, e.data, e.mask);
    data_groups.insert(name, detail::config_to_ivalue(e.config));
    auto name_state = detail::as_dict(detail::config_to_ivalue(e.state), "state");
    name_state.insert("mask", detail::encode_mask(e.mask));
    state.insert(name, name_state);
    data.insert(name, savable(e.data));
    parametrized.insert(name, e.parametrized);
  }
  auto root = detail::new_state_dict();
  root.insert("format", std::string(kStateFormat));
  root.insert("version", kStateVersion);
  root.insert("defaults", detail::config_to_ivalue(defaults_));
  root.insert("mask_update_enabled", mask_update_enabled_);
  root.insert("names", c10::List<std::string>(order_));
  root.insert("data_groups", data_groups);
  root.insert("state", state);
  root.insert("data", data);
  root.insert("parametrized", parametrized);
  return root;
}

void BaseDataSparsifier::load_state_dict(const c10::IValue& value, bool strict) {
  using detail::as_dict;
  using detail::dict_field;
  const std::string what = "sparsifier state";
  const auto root = as_dict(value, what);
  const c10::IValue& format = dict_field(root, "format", what);
  if (!format.isString() || format.toStringRef() != kStateFormat) {
    throw std::invalid_argument(
        fmt::format("{}: not a data sparsifier state (format field is {})", what,
                    format.isString() ? "'" + format.toStringRef() + "'" : format.tagKind()));
  }
  const c10::IValue& version = dict_field(root, "version", what);
  if (!version.isInt() || version.toInt() != kStateVersion) {
    throw std::invalid_argument(fmt::format("{}: unsupported version {} (this build reads {})", what,
                                            version.isInt() ? version.toInt() : -1, kStateVersion));
  }
  Config defaults = detail::config_from_ivalue(dict_field(root, "defaults", what), what + " defaults");
  const c10::IValue& enabled = dict_field(root, "mask_update_enabled", what);
  const c10::IValue& names_value = dict_field(root, "names", what);
  if (!enabled.isBool() || !names_value.isList())
    throw std::invalid_argument(fmt::format("{}: malformed header", what));
  const auto data_groups = as_dict(dict_field(root, "data_groups", what), what + " data_groups");
  const auto states = as_dict(dict_field(root, "state", what), what + " state");
  const auto datas = as_dict(dict_field(root, "data", what), what + " data");
  const auto flags = as_dict(dict_field(root, "parametrized", what), what + " parametrized");

  // Parse and check every entry into `loaded`.
  std::vector<std::pair<std::string, Entry>> loaded;
  for (const auto& item : names_value.toListRef()) {
    if (!item.isString()) throw std::invalid_argument(fmt::format("{}: names must be strings", what));
    const std::string name = item.toStringRef();
    check_name(name);
    const std::string where = fmt::format("{} of '{}'", what, name);
    Entry e;
    e.config = detail::config_from_ivalue(dict_field(data_groups, name, what + " data_groups"), where);
    auto name_state = as_dict(dict_field(states, name, what + " state"), where);
    e.mask = detail::decode_mask(dict_field(name_state, "mask", where), where);
    (void)name_state.erase(c10::IValue(std::string("mask")));
    e.state = detail::config_from_ivalue(name_state, where + " (state)");
    const c10::IValue& d = dict_field(datas, name, what + " data");
    const c10::IValue& flag = dict_field(flags, name, what + " parametrized");
    if (!d.isTensor() || !flag.isBool())
      throw std::invalid_argument(fmt::format("{}: data must be a tensor and parametrized a bool", where));
    e.data = d.toTensor();
    e.parametrized = flag.toBool();
    if (!at::isFloatingType(e.data.scalar_type()))
      throw std::invalid_argument(fmt::format("{}: data has non-floating dtype {}", where,
                                              c10::toString(e.data.scalar_type())));
    if (!e.mask.sizes().equals(e.data.sizes())) {
      throw std::invalid_argument(fmt::format("{}: mask shape {} differs from data shape {}", where,
                                              shape_text(e.mask), shape_text(e.data)));
    }
    // Configs edited or written elsewhere get the checks add_data makes.
    validate_data(name, e.data, e.config);
    loaded.emplace_back(name, std::move(e));
  }

  // Prepare the new entries and every tensor the commit writes. Tensors
  // already registered under a loaded name receive the values in place, so
  // that whoever holds them (a model, a user) sees the restored state; each
  // such write is moved to its target's device and given the checks copy_
  // and set_ would make, so that the commit below cannot fail halfway.
  at::NoGradGuard no_grad;
  std::vector<std::pair<at::Tensor, at::Tensor>> data_copies;  // (target, value) for copy_
  std::vector<std::pair<at::Tensor, at::Tensor>> mask_swaps;   // (target, value) for set_
  std::unordered_map<std::string, Entry> next;
  std::vector<std::string> next_order;
  if (!strict) {
    next = entries_;
    next_order = order_;
  }
  for (auto& [name, e] : loaded) {
    const auto old = entries_.find(name);
    if (old != entries_.end()) {
      const Entry& o = old->second;
      if (o.data.sizes().equals(e.data.sizes()) && o.data.scalar_type() == e.data.scalar_type()) {
        at::Tensor value = e.data.to(o.data.device());
        at::assert_no_internal_overlap(o.data);
        at::assert_no_partial_overlap(o.data, value);
        data_copies.emplace_back(o.data, std::move(value));
        e.data = o.data;
      }
      at::Tensor mask = e.mask.to(e.data.device());
      if (mask.device() != o.mask.device()) {
        throw std::invalid_argument(fmt::format(
            "{} of '{}': its mask is on {} and the loaded one belongs on {}; LibTorch cannot move a mask to "
            "another device in place",
            what, name, o.mask.device().str(), mask.device().str()));
      }
      mask_swaps.emplace_back(o.mask, std::move(mask));
      e.mask = o.mask;
    } else {
      e.mask = e.mask.to(e.data.device());
    }
    if (next.count(name) == 0) next_order.push_back(name);
    next[name] = std::move(e);
  }

  // Commit: nothing here can fail.
  for (auto& [target, value] : data_copies) target.copy_(value);
  for (auto& [target, value] : mask_swaps) target.set_(value);
  entries_.swap(next);
  order_.swap(next_order);
  if (strict) {
    defaults_ = std::move(defaults);
    mask_update_enabled_ = enabled.toBool();
  }
}

void BaseDataSparsifier::save(const std::string& path) const {
  save_state_file(path, state_dict());
}

void BaseDataSparsifier::load(const std::string& path, bool strict) {
  const c10::IValue state = load_state_file(path, "sparsifier state");
  try {
    load_state_dict(state, strict);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot load sparsifier state from '{}': {}", path, e.what()));
  }
}

}  // namespace sparsity
