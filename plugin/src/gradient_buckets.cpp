#include "gradient_buckets.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <mutex>
#include <stdexcept>

#include "distributed_impl.h"

namespace sparsity::detail {

struct GradientBuckets::State {
  struct Bucket {
    std::vector<size_t> members;  // indices into parameters
    int64_t numel = 0;
    size_t pending = 0;
    bool launched = false;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  DistributedGroup* group = nullptr;
  std::vector<at::Tensor> parameters;
  std::vector<size_t> bucket_of;
  std::vector<size_t> offset_of;  // within its bucket
  std::vector<bool> ready;
  std::vector<Bucket> buckets;
  size_t next_launch = 0;
  bool armed = false;
  double wait_seconds = 0.0;
  std::mutex mutex;
  // The accumulators are held so that the hooks outlive the step.
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;

  void launch(size_t b) {
    Bucket& bucket = buckets[b];
    std::vector<at::Tensor> pieces;
    pieces.reserve(bucket.members.size());
    for (const size_t i : bucket.members) {
      const at::Tensor& grad = parameters[i].grad();
      pieces.push_back(grad.defined() ? grad.detach().reshape({-1}) : at::zeros({parameters[i].numel()},
                                                                                 parameters[i].options()));
    }
    bucket.flat = pieces.size() == 1 ? pieces[0].clone() : at::cat(pieces);
    std::vector<at::Tensor> one{bucket.flat};
    bucket.work = group->impl().group->allreduce(one);
    bucket.launched = true;
  }

  // Launches, in bucket order, every bucket whose gradients are all there.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) launch(next_launch++);
  }

  void on_ready(size_t i) {
    const std::lock_guard<std::mutex> lock(mutex);
    if (!armed || ready[i]) return;
    ready[i] = true;
    --buckets[bucket_of[i]].pending;
    launch_ready();
  }
};

GradientBuckets::GradientBuckets(DistributedGroup& group, const std::vector<at::Tensor>& parameters,
                                 int64_t bucket_bytes)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.group = &group;
  for (const auto& p : parameters)
    if (p.requires_grad()) s.parameters.push_back(p);
  const size_t n = s.parameters.size();
  s.bucket_of.resize(n);
  s.offset_of.resize(n);
  s.ready.assign(n, false);
  // Reverse order: the last layers' gradients come first in backward.
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = s.parameters[k];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !s.buckets.empty() && bytes + size <= bucket_bytes &&
                      s.parameters[s.buckets.back().members.front()].scalar_type() == p.scalar_type() &&
                      s.parameters[s.buckets.back().members.front()].device() == p.device();
    if (!fits) {
      s.buckets.emplace_back();
      bytes = 0;
    }
    State::Bucket& bucket = s.buckets.back();
    s.bucket_of[k] = s.buckets.size() - 1;
    s.offset_of[k] = static_cast<size_t>(bucket.numel);
    bucket.members.push_back(k);
    bucket.numel += p.numel();
    bytes += size;
  }
  for (size_t k = 0; k < n; ++k) {
    std::shared_ptr<torch::autograd::Node> accumulator = torch::autograd::impl::grad_accumulator(s.parameters[k]);
    if (!accumulator) throw std::logic_error("GradientBuckets: a parameter has no gradient accumulator");
    State* state = state_.get();
    const uintptr_t key = accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [state, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          state->on_ready(k);
          return outputs;
        }));
    s.hooks.emplace_back(std::move(accumulator), key);
  }
}

GradientBuckets::~GradientBuckets() {
  for (auto& [accumulator, key] : state_->hooks) accumulator->del_post_hook(key);
}

void GradientBuckets::arm() {
  State& s = *state_;
  const std::lock_guard<std::mutex> lock(s.mutex);
  s.ready.assign(s.ready.size(), false);
  for (auto& bucket : s.buckets) {
    bucket.pending = bucket.members.size();
    bucket.launched = false;
    bucket.flat = at::Tensor();
    bucket.work.reset();
  }
  s.next_launch = 0;
  s.armed = true;
}

void GradientBuckets::finish() {
  State& s = *state_;
  const std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.armed) throw std::logic_error("GradientBuckets::finish without arm");
  s.armed = false;
  // Parameters the backward pass did not reach: their bucket goes with zeros.
  while (s.next_launch < s.buckets.size()) s.launch(s.next_launch++);
  const double world = static_cast<double>(s.group->world_size());
  at::NoGradGuard no_grad;
  for (auto& bucket : s.buckets) {
    const auto started = std::chrono::steady_clock::now();
    s.group->impl().wait(bucket.work, "the gradient all-reduce");
    s.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    bucket.flat.div_(world);
    for (const size_t i : bucket.members) {
      at::Tensor& param = s.parameters[i];
      const at::Tensor averaged =
          bucket.flat.narrow(0, static_cast<int64_t>(s.offset_of[i]), param.numel()).view(param.sizes());
      if (param.grad().defined()) {
        param.mutable_grad().copy_(averaged);
      } else {
        param.mutable_grad() = averaged.clone();
      }
    }
    bucket.work.reset();
    bucket.flat = at::Tensor();
  }
}

int64_t GradientBuckets::bucket_count() const { return static_cast<int64_t>(state_->buckets.size()); }
double GradientBuckets::wait_seconds() const { return state_->wait_seconds; }

}  // namespace sparsity::detail
