#include "sparsity/lossy/lossy_sparsifier.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/autograd.h>

#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>

#include "hard_threshold.h"
#include "sparsity/lossy/activation_collector.h"

namespace sparsity {
namespace {

void check_eps(double eps, const char* who) {
  if (!std::isfinite(eps)) {
    throw std::invalid_argument(fmt::format("{}: eps must be finite, got {}", who, eps));
  }
}

void check_a(double a) {
  if (!(a > 0.0) || !std::isfinite(a)) {
    throw std::invalid_argument(fmt::format("LossySparsifier: a (sharpness) must be > 0 and finite, got {}", a));
  }
}

constexpr int64_t kGrain = 16384;

// Subnormal values become 0. Once the sharpness a has doubled a few times,
// σ of a large argument underflows into subnormals, which x86 computes about
// a hundred times slower, here and in every layer they flow into: a ResNet
// epoch went from 18 s to minutes. They are below any threshold the layer
// learns, so the values differ from the formula's by less than 1.2e-38.
template <typename T>
inline T flush(T v) {
  return std::abs(v) < std::numeric_limits<T>::min() ? T(0) : v;
}

// σ(a(x − e)) and σ(a(−e − x)) = 1 / (1 + exp(a(x + e))).
template <typename T>
inline void sigmoids(T x, T a, T e, T& p, T& r) {
  p = flush(T(1) / (T(1) + std::exp(-a * (x - e))));
  r = flush(T(1) / (T(1) + std::exp(a * (x + e))));
}

template <typename T>
void forward_kernel(const T* x, T* y, int64_t n, T a, T e) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T p, r;
      sigmoids(x[i], a, e, p, r);
      y[i] = flush(x[i] * (p + r));
    }
  });
}

// Writes dL/dx into gx and returns Σ g · dy/d|ε|.
template <typename T>
double backward_kernel(const T* x, const T* g, T* gx, int64_t n, T a, T e, bool want_eps) {
  return at::parallel_reduce(
      0, n, kGrain, 0.0,
      [&](int64_t begin, int64_t end, double acc) {
        for (int64_t i = begin; i < end; ++i) {
          T p, r;
          sigmoids(x[i], a, e, p, r);
          const T dp = p * (T(1) - p);
          const T dr = r * (T(1) - r);
          if (gx != nullptr) gx[i] = flush(g[i] * (p + r + x[i] * a * (dp - dr)));
          if (want_eps) acc += static_cast<double>(g[i] * (-a * x[i] * (dp + dr)));
        }
        return acc;
      },
      std::plus<double>());
}

// The fused CPU path: one pass forward, one pass backward.
struct LossySparsifierFunction : public torch::autograd::Function<LossySparsifierFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& eps, double a) {
    const at::Tensor x = input.contiguous();
    at::Tensor y = at::empty_like(x);
    const double e = std::abs(eps.item<double>());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lossy_sparsifier_forward", [&] {
      forward_kernel<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), x.numel(),
                               static_cast<scalar_t>(a), static_cast<scalar_t>(e));
    });
    ctx->save_for_backward({x, eps});
    ctx->saved_data["a"] = a;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& eps = saved[1];
    const double a = ctx->saved_data["a"].toDouble();
    const at::Tensor g = grad_outputs[0].contiguous();
    const bool want_x = ctx->needs_input_grad(0);
    const bool want_eps = ctx->needs_input_grad(1);
    const double eps_value = eps.item<double>();
    const double e = std::abs(eps_value);
    at::Tensor gx = want_x ? at::empty_like(x) : at::Tensor();
    double ge = 0.0;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lossy_sparsifier_backward", [&] {
      ge = backward_kernel<scalar_t>(x.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                     want_x ? gx.data_ptr<scalar_t>() : nullptr, x.numel(),
                                     static_cast<scalar_t>(a), static_cast<scalar_t>(e), want_eps);
    });
    at::Tensor geps;
    if (want_eps) {
      // d|ε|/dε = sign(ε), 0 at ε = 0 as autograd's abs.
      const double sign = eps_value > 0 ? 1.0 : (eps_value < 0 ? -1.0 : 0.0);
      geps = at::full({}, ge * sign, eps.options());
    }
    return {gx, geps, at::Tensor()};
  }
};

// The formula with ATen operators (any device and dtype).
at::Tensor lossy_formula(const at::Tensor& x, const at::Tensor& eps, double a) {
  const at::Tensor e = eps.abs();
  return at::sigmoid(a * (x - e)) * x + at::sigmoid(a * (-e - x)) * x;
}

}  // namespace

LossySparsifierImpl::LossySparsifierImpl(const LossySparsifierOptions& options_) : options(options_) {
  check_eps(options.eps(), "LossySparsifier");
  check_a(options.a());
  reset();
}

void LossySparsifierImpl::reset() {
  eps = register_parameter("eps", at::scalar_tensor(options.eps(), at::kFloat));
}

void LossySparsifierImpl::pretty_print(std::ostream& stream) const {
  stream << "sparsity::LossySparsifier(eps=" << threshold() << ", a=" << options.a()
         << (hard_ ? ", hard" : "") << ")";
}

void LossySparsifierImpl::set_a(double a) {
  check_a(a);
  options.a(a);
}

double LossySparsifierImpl::threshold() const { return std::abs(eps.item<double>()); }

at::Tensor LossySparsifierImpl::forward(const at::Tensor& x) {
  if (!x.is_floating_point()) {
    throw std::invalid_argument(
        fmt::format("LossySparsifier: input must be a floating-point tensor, got {}", c10::toString(x.scalar_type())));
  }
  const bool fused = x.device().is_cpu() && eps.device().is_cpu() &&
                     x.scalar_type() == eps.scalar_type() &&
                     (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble);
  at::Tensor y = hard_   ? detail::hard_threshold(x, eps)
                 : fused ? LossySparsifierFunction::apply(x, eps, options.a())
                 : lossy_formula(x, eps, options.a());
  if (collector_ && is_training()) collector_->record(y);
  report_output(y);
  return y;
}

LossyHardSparsifierImpl::LossyHardSparsifierImpl(const LossySparsifierOptions& options_)
    : options(options_) {
  check_eps(options.eps(), "LossyHardSparsifier");
  reset();
}

LossyHardSparsifierImpl::LossyHardSparsifierImpl(const LossySparsifierImpl& soft)
    : LossyHardSparsifierImpl(LossySparsifierOptions().eps(soft.eps.item<double>()).a(soft.a())) {}

LossyHardSparsifierImpl::LossyHardSparsifierImpl(const LossySparsifier& soft)
    : LossyHardSparsifierImpl(*soft) {}

void LossyHardSparsifierImpl::reset() {
  eps = register_buffer("eps", at::scalar_tensor(options.eps(), at::kFloat));
}

void LossyHardSparsifierImpl::pretty_print(std::ostream& stream) const {
  stream << "sparsity::LossyHardSparsifier(eps=" << threshold() << ")";
}

double LossyHardSparsifierImpl::threshold() const { return std::abs(eps.item<double>()); }

at::Tensor LossyHardSparsifierImpl::forward(const at::Tensor& x) {
  at::Tensor y = detail::hard_threshold(x, eps);
  report_output(y);
  return y;
}

namespace detail {

at::Tensor hard_threshold(const at::Tensor& x, const at::Tensor& eps) {
  // masked_fill (not masked_fill_) returns a new tensor: x is left alone.
  return x.masked_fill(x.abs() <= eps.detach().abs(), 0);
}

}  // namespace detail

}  // namespace sparsity
