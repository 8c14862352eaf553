// DistributedOptions (the launcher's variables) and DistributedGroup (a c10d
// store and process group): the only sources, with gradient_buckets.cpp,
// that include c10d.
#include "sparsity/plugin/distributed.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "distributed_impl.h"
#include "sparsity/logging.h"
#include "sparsity/message_text.h"

namespace sparsity {

namespace {

constexpr int64_t kMaxWorldSize = 65536;
constexpr double kMaxTimeoutSeconds = 86400.0;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// A whole decimal integer in [low, high], or std::invalid_argument naming the variable.
int64_t env_integer(const char* name, const std::string& text, int64_t low, int64_t high) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != '\0' || errno == ERANGE || text.front() == ' ' ||
      text.front() == '+')
    throw std::invalid_argument(
        fmt::format("distributed: {}=\"{}\" is not an integer", name, message_text(text)));
  if (value < low || value > high)
    throw std::invalid_argument(fmt::format("distributed: {}={} is out of range [{}, {}]", name, value, low, high));
  return value;
}

std::chrono::milliseconds timeout_of(const DistributedOptions& options) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(options.timeout_seconds() * 1000.0)));
}

std::string error_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return error_text(e);
}

bool same_options(const DistributedOptions& a, const DistributedOptions& b) {
  return a.rank() == b.rank() && a.world_size() == b.world_size() && a.local_rank() == b.local_rank() &&
         a.local_world_size() == b.local_world_size() && a.master_addr() == b.master_addr() &&
         a.master_port() == b.master_port() && a.store_path() == b.store_path() &&
         a.timeout_seconds() == b.timeout_seconds() && a.backend() == b.backend() &&
         a.bucket_bytes() == b.bucket_bytes();
}

bool is_loopback(const std::string& address) {
  return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

// The store every rank meets in: rank 0's TCPStore server (clients connect to
// it), or a FileStore.
c10::intrusive_ptr<c10d::Store> make_store(const DistributedOptions& options) {
  const std::chrono::milliseconds timeout = timeout_of(options);
  if (!options.store_path().empty()) {
    try {
      auto store = c10::make_intrusive<c10d::FileStore>(options.store_path(), static_cast<int>(options.world_size()));
      store->setTimeout(timeout);
      return store;
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("distributed: rank {} cannot open the FileStore '{}': {}", options.rank(),
                                           options.store_path(), error_of(e)));
    }
  }
  c10d::TCPStoreOptions tcp;
  tcp.port = static_cast<uint16_t>(options.master_port());
  tcp.isServer = options.rank() == 0;
  tcp.numWorkers = static_cast<size_t>(options.world_size());
  tcp.waitWorkers = false;  // joining is checked below, with a message
  tcp.timeout = timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(options.master_addr(), tcp);
  } catch (const std::exception& e) {
    if (options.rank() == 0)
      throw std::runtime_error(fmt::format(
          "distributed: rank 0 cannot listen on MASTER_PORT={} (MASTER_ADDR={}): {}; choose a free port",
          options.master_port(), options.master_addr(), error_of(e)));
    throw std::runtime_error(fmt::format(
        "distributed: rank {} could not reach rank 0's store at MASTER_ADDR={} MASTER_PORT={} within {} s: {}; "
        "check that rank 0 runs, the address and port, and the firewall",
        options.rank(), options.master_addr(), options.master_port(), options.timeout_seconds(), error_of(e)));
  }
}

// Every rank posts its world size; each checks rank 0's and rank 0 checks
// everyone's, so that a rank started with another WORLD_SIZE, or a RANK given
// twice, is an error naming them, not a wait for a rank that never comes.
void check_membership(c10d::Store& store, const DistributedOptions& options) {
  const std::string rank = std::to_string(options.rank());
  const std::string world = std::to_string(options.world_size());
  if (store.add("sparsity/claimed/" + rank, 1) > 1)
    throw std::runtime_error(fmt::format(
        "distributed: two processes started with RANK={} (of WORLD_SIZE={}); give each process its own rank",
        options.rank(), options.world_size()));
  store.set("sparsity/world_size/" + rank, std::vector<uint8_t>(world.begin(), world.end()));
  const std::chrono::milliseconds timeout = timeout_of(options);
  auto read_world = [&](int64_t r) {
    const std::string key = "sparsity/world_size/" + std::to_string(r);
    try {
      store.wait({key}, timeout);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format(
          "distributed: rank {} of {}: rank {} did not join within {} s (it was not started, failed before "
          "joining, or uses another MASTER_ADDR/MASTER_PORT): {}",
          options.rank(), options.world_size(), r, options.timeout_seconds(), error_of(e)));
    }
    const std::vector<uint8_t> bytes = store.get(key);
    return std::string(bytes.begin(), bytes.end());
  };
  const int64_t first = options.rank() == 0 ? 1 : 0;
  const int64_t last = options.rank() == 0 ? options.world_size() : 1;
  for (int64_t r = first; r < last; ++r) {
    const std::string theirs = read_world(r);
    if (theirs != world)
      throw std::runtime_error(fmt::format(
          "distributed: WORLD_SIZE differs between ranks: {} on rank {}, {} on rank {}; start every rank with the "
          "same WORLD_SIZE",
          world, options.rank(), theirs, r));
  }
}

c10::intrusive_ptr<c10d::ProcessGroup> make_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                   const DistributedOptions& options, const std::string& backend) {
  const auto rank = static_cast<int>(options.rank());
  const auto size = static_cast<int>(options.world_size());
  if (backend == "nccl") {
#if defined(USE_C10D_NCCL)
    auto nccl = c10d::ProcessGroupNCCL::Options::create();
    nccl->timeout = timeout_of(options);
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, nccl);
#else
    throw std::invalid_argument(
        "distributed: backend \"nccl\" needs a LibTorch built with CUDA and NCCL; this one has neither (use \"gloo\")");
#endif
  }
  auto gloo = c10d::ProcessGroupGloo::Options::create(timeout_of(options));
  // GLOO_SOCKET_IFNAME names the interface, as in PyTorch; with rank 0 on
  // the loopback every rank is on this machine and talks over it; otherwise
  // the address the host name resolves to.
  if (const auto interface = env("GLOO_SOCKET_IFNAME"); interface && !interface->empty()) {
    gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*interface));
  } else if (is_loopback(options.master_addr())) {
    gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  gloo->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, gloo);
}

}  // namespace

std::optional<DistributedOptions> DistributedOptions::from_environment() {
  const auto rank = env("RANK");
  const auto world = env("WORLD_SIZE");
  if (!rank && !world) return std::nullopt;
  if (!rank) throw std::invalid_argument("distributed: WORLD_SIZE is set but RANK is not; set both (or neither)");
  if (!world) throw std::invalid_argument("distributed: RANK is set but WORLD_SIZE is not; set both (or neither)");
  DistributedOptions options;
  options.world_size(env_integer("WORLD_SIZE", *world, 1, kMaxWorldSize));
  options.rank(env_integer("RANK", *rank, 0, options.world_size() - 1));
  options.local_world_size(options.world_size());
  if (const auto local_world = env("LOCAL_WORLD_SIZE"))
    options.local_world_size(env_integer("LOCAL_WORLD_SIZE", *local_world, 1, options.world_size()));
  if (const auto local = env("LOCAL_RANK"))
    options.local_rank(env_integer("LOCAL_RANK", *local, 0, options.local_world_size() - 1));
  if (const auto address = env("MASTER_ADDR")) {
    if (address->empty()) throw std::invalid_argument("distributed: MASTER_ADDR is set but empty");
    options.master_addr(*address);
  } else if (options.world_size() > 1) {
    throw std::invalid_argument("distributed: MASTER_ADDR is not set (the host of rank 0, e.g. 127.0.0.1)");
  }
  if (const auto port = env("MASTER_PORT")) {
    options.master_port(env_integer("MASTER_PORT", *port, 1, 65535));
  } else if (options.world_size() > 1) {
    throw std::invalid_argument("distributed: MASTER_PORT is not set (a free port on rank 0's host, e.g. 29500)");
  }
  if (const auto timeout = env("SPARSITY_DIST_TIMEOUT")) {
    char* end = nullptr;
    const double seconds = std::strtod(timeout->c_str(), &end);
    if (timeout->empty() || *end != '\0' || !(seconds > 0.0) || seconds > kMaxTimeoutSeconds)
      throw std::invalid_argument(fmt::format(
          "distributed: SPARSITY_DIST_TIMEOUT=\"{}\" is not a number of seconds in (0, {}]", message_text(*timeout),
          kMaxTimeoutSeconds));
    options.timeout_seconds(seconds);
  }
  options.check();
  return options;
}

void DistributedOptions::check() const {
  if (world_size() < 1 || world_size() > kMaxWorldSize)
    throw std::invalid_argument(
        fmt::format("DistributedOptions: world_size {} is out of range [1, {}]", world_size(), kMaxWorldSize));
  if (rank() < 0 || rank() >= world_size())
    throw std::invalid_argument(
        fmt::format("DistributedOptions: rank {} is out of range [0, {}) (world_size {})", rank(), world_size(),
                    world_size()));
  if (local_world_size() < 1 || local_world_size() > world_size())
    throw std::invalid_argument(fmt::format("DistributedOptions: local_world_size {} is out of range [1, {}]",
                                            local_world_size(), world_size()));
  if (local_rank() < 0 || local_rank() >= local_world_size())
    throw std::invalid_argument(fmt::format("DistributedOptions: local_rank {} is out of range [0, {})", local_rank(),
                                            local_world_size()));
  if (master_port() < 0 || master_port() > 65535)
    throw std::invalid_argument(fmt::format("DistributedOptions: master_port {} is out of range [0, 65535]", master_port()));
  if (master_port() == 0 && world_size() > 1 && store_path().empty())
    throw std::invalid_argument(
        "DistributedOptions: master_port 0 (any free port) leaves the other ranks no port to reach; give a port");
  if (master_addr().empty() && store_path().empty())
    throw std::invalid_argument("DistributedOptions: master_addr is empty");
  if (!(timeout_seconds() > 0.0) || timeout_seconds() > kMaxTimeoutSeconds)
    throw std::invalid_argument(fmt::format("DistributedOptions: timeout_seconds {} is out of range (0, {}]",
                                            timeout_seconds(), kMaxTimeoutSeconds));
  if (!backend().empty() && backend() != "gloo" && backend() != "nccl")
    throw std::invalid_argument(
        fmt::format("DistributedOptions: backend \"{}\" is not \"gloo\", \"nccl\" or \"\"", message_text(backend())));
  if (bucket_bytes() < 1024 || bucket_bytes() > (int64_t{1} << 30))
    throw std::invalid_argument(
        fmt::format("DistributedOptions: bucket_bytes {} is out of range [1024, {}]", bucket_bytes(), int64_t{1} << 30));
}

std::string DistributedGroup::Impl::failure(const char* what, const std::string& cause) const {
  return fmt::format(
      "distributed: rank {} of {}: {} failed: another rank died or did not answer within the timeout ({} s): {}",
      options.rank(), options.world_size(), what, options.timeout_seconds(), cause);
}

void DistributedGroup::Impl::wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) const {
  try {
    if (!work->wait(timeout_of(options))) throw std::runtime_error("the operation was aborted");
  } catch (const std::exception& e) {
    throw std::runtime_error(failure(what, error_of(e)));
  }
}

DistributedGroup::DistributedGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DistributedGroup::~DistributedGroup() = default;

std::shared_ptr<DistributedGroup> DistributedGroup::join(const DistributedOptions& options) {
  options.check();
  // One group per process: a second Trainer (the demo's next run) reuses it
  // rather than binding rank 0's port again.
  static std::mutex mutex;
  static std::shared_ptr<DistributedGroup> joined;
  const std::lock_guard<std::mutex> lock(mutex);
  if (joined && same_options(joined->options(), options)) return joined;
  joined.reset();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->backend = options.backend().empty() ? "gloo" : options.backend();
  if (impl->backend == "nccl")
    impl->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(options.local_rank()));
  const auto started = std::chrono::steady_clock::now();
  impl->store = make_store(options);
  check_membership(*impl->store, options);
  try {
    impl->group =
        make_group(c10::make_intrusive<c10d::PrefixStore>("sparsity/group", impl->store), options, impl->backend);
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("distributed: rank {} of {} could not connect to the other ranks: {}",
                                         options.rank(), options.world_size(), error_of(e)));
  }
  logger()->info("distributed: rank {} of {} joined ({}, {}) in {:.2f} s", options.rank(), options.world_size(),
                 impl->backend,
                 options.store_path().empty() ? fmt::format("{}:{}", options.master_addr(), options.master_port())
                                              : options.store_path(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  joined = std::shared_ptr<DistributedGroup>(new DistributedGroup(std::move(impl)));
  return joined;
}

int64_t DistributedGroup::rank() const { return impl_->options.rank(); }
int64_t DistributedGroup::world_size() const { return impl_->options.world_size(); }
const DistributedOptions& DistributedGroup::options() const { return impl_->options; }


void DistributedGroup::broadcast(std::vector<at::Tensor>& tensors, int64_t root) {
  if (root < 0 || root >= world_size())
    throw std::invalid_argument(fmt::format("DistributedGroup::broadcast: root {} is not a rank", root));
  c10d::BroadcastOptions options;
  options.rootRank = static_cast<int64_t>(root);
  for (auto& tensor : tensors) {
    std::vector<at::Tensor> one{tensor};
    impl_->wait(impl_->group->broadcast(one, options), "a broadcast from rank 0");
  }
}

void DistributedGroup::all_reduce_sum(std::vector<at::Tensor>& tensors) {
  for (auto& tensor : tensors) {
    std::vector<at::Tensor> one{tensor};
    impl_->wait(impl_->group->allreduce(one), "an all-reduce");
  }
}

std::vector<double> DistributedGroup::all_reduce_sum(const std::vector<double>& values) {
  if (values.empty()) return values;
  std::vector<at::Tensor> tensor{at::tensor(values, at::kDouble).to(impl_->device)};
  impl_->wait(impl_->group->allreduce(tensor), "an all-reduce of metrics");
  const at::Tensor sums = tensor[0].to(at::kCPU);
  const double* data = sums.data_ptr<double>();
  return std::vector<double>(data, data + values.size());
}

void DistributedGroup::check_identical(const std::string& what, const std::vector<std::string>& names,
                                       const std::vector<at::Tensor>& tensors) {
  if (names.size() != tensors.size())
    throw std::invalid_argument(fmt::format("DistributedGroup::check_identical: {} names for {} tensors",
                                            names.size(), tensors.size()));
  if (tensors.empty()) return;
  at::Tensor sums = at::empty({static_cast<int64_t>(tensors.size())}, at::kLong);
  for (size_t i = 0; i < tensors.size(); ++i) {
    sums[static_cast<int64_t>(i)] = static_cast<int64_t>(tensor_checksum(tensors[i]));
  }
  std::vector<at::Tensor> low{sums.to(impl_->device, /*non_blocking=*/false, /*copy=*/true)},
      high{sums.to(impl_->device, /*non_blocking=*/false, /*copy=*/true)};
  c10d::AllreduceOptions min_options, max_options;
  min_options.reduceOp = c10d::ReduceOp::MIN;
  max_options.reduceOp = c10d::ReduceOp::MAX;
  impl_->wait(impl_->group->allreduce(low, min_options), "the check of identical masks");
  impl_->wait(impl_->group->allreduce(high, max_options), "the check of identical masks");
  low[0] = low[0].to(at::kCPU);
  high[0] = high[0].to(at::kCPU);
  const int64_t* lows = low[0].data_ptr<int64_t>();
  const int64_t* highs = high[0].data_ptr<int64_t>();
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (lows[i] != highs[i])
      throw std::runtime_error(fmt::format(
          "distributed: {} of '{}' differs between ranks (checksums from {:016x} to {:016x}; this is rank {} of "
          "{}, checksum {:016x}): the ranks no longer hold identical weights",
          what, names[i], static_cast<uint64_t>(lows[i]), static_cast<uint64_t>(highs[i]), rank(), world_size(),
          tensor_checksum(tensors[i])));
  }
}

void DistributedGroup::barrier() { impl_->wait(impl_->group->barrier(), "a barrier"); }

uint64_t tensor_checksum(const at::Tensor& tensor) {
  const at::Tensor bytes = tensor.detach().to(at::kCPU).contiguous();
  const auto* data = static_cast<const unsigned char*>(bytes.data_ptr());
  const size_t count = static_cast<size_t>(bytes.numel()) * bytes.element_size();
  uint64_t hash = 1469598103934665603ULL;
  for (size_t i = 0; i < count; ++i) {
    hash ^= data[i];
    hash *= 1099511628211ULL;
  }
  // The shape too: two masks with the same bytes and other shapes differ.
  for (const int64_t size : bytes.sizes()) {
    hash ^= static_cast<uint64_t>(size);
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace sparsity
