#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sparsity {

/// Where and how the processes of a data-parallel run meet (c10d: a TCPStore
/// on rank 0, or a FileStore; Gloo on CPU, NCCL for CUDA when LibTorch has
/// it). See docs/distributed.md.
///
/// Example:
/// ```
/// auto distributed = sparsity::DistributedOptions().rank(1).world_size(2).master_addr("10.0.0.1").master_port(29500);
/// sparsity::Trainer trainer(sparsity::TrainerOptions().distributed(distributed));
/// ```
struct DistributedOptions {
  /// This process's rank, in [0, world_size).
  TORCH_ARG(int64_t, rank) = 0;
  /// The number of processes, in [1, 65536].
  TORCH_ARG(int64_t, world_size) = 1;
  /// This process's rank among those on its machine (informational; Gloo).
  TORCH_ARG(int64_t, local_rank) = 0;
  /// The processes on this machine: when `threads` is 0 each takes its share
  /// of the cores.
  TORCH_ARG(int64_t, local_world_size) = 1;
  /// The host of rank 0's TCPStore (an address or a name).
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  /// Its port, in [1, 65535] (0: any free port, for rank 0 alone).
  TORCH_ARG(int64_t, master_port) = 29500;
  /// When not empty, rendezvous through a FileStore at this path (a file
  /// every rank can reach, new for each run) instead of the TCPStore.
  TORCH_ARG(std::string, store_path) = "";
  /// How long joining and each collective may wait for the other ranks before
  /// failing with an error (seconds, in (0, 86400]).
  TORCH_ARG(double, timeout_seconds) = 1800.0;
  /// "gloo", "nccl" (needs a LibTorch with CUDA and NCCL) or "" (NCCL for a
  /// CUDA device when compiled in, Gloo otherwise).
  TORCH_ARG(std::string, backend) = "";
  /// Gradients are all-reduced in buckets of about this many bytes, each
  /// launched during the backward pass as soon as its gradients are ready;
  /// in [1024, 1 GiB].
  TORCH_ARG(int64_t, bucket_bytes) = int64_t{1} << 20;

 public:
  /// The options the standard launcher variables give (`RANK`, `WORLD_SIZE`,
  /// `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, as
  /// torchrun sets them, and `SPARSITY_DIST_TIMEOUT` in seconds), or nullopt
  /// when neither RANK nor WORLD_SIZE is set. Throws std::invalid_argument
  /// naming the variable and its value when one is malformed or out of range,
  /// or when one of RANK and WORLD_SIZE is set without the other.
  static std::optional<DistributedOptions> from_environment();

  /// Throws std::invalid_argument naming the first value out of range.
  void check() const;
};

/// A joined process group: every rank of a run holds one, and the
/// collectives below must be called in the same order on every rank. Errors
/// of the other ranks (one died, or did not answer within the timeout) are
/// std::runtime_error saying so.
///
/// Example:
/// ```
/// auto group = sparsity::DistributedGroup::join(sparsity::DistributedOptions().rank(0).world_size(1));
/// std::vector<double> sums = group->all_reduce_sum({1.0, 2.0});  // {1, 2} with one rank
/// ```
class DistributedGroup {
 public:
  /// Joins the group `options` describe (waiting at most the timeout for the
  /// others), or returns the group this process already joined with the same
  /// options. Checks that every rank has the same world size and that no two
  /// share a rank.
  static std::shared_ptr<DistributedGroup> join(const DistributedOptions& options);
  ~DistributedGroup();
  DistributedGroup(const DistributedGroup&) = delete;
  DistributedGroup& operator=(const DistributedGroup&) = delete;

  int64_t rank() const;
  int64_t world_size() const;
  const DistributedOptions& options() const;

  /// Overwrites `tensors` (in place) with rank `root`'s.
  void broadcast(std::vector<at::Tensor>& tensors, int64_t root = 0);
  /// Sums `tensors` over the ranks, in place.
  void all_reduce_sum(std::vector<at::Tensor>& tensors);
  /// The sums over the ranks of `values` (same length on every rank).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  /// Checks that each tensor of `tensors` is bit for bit the same on every
  /// rank (a 64-bit checksum of its bytes compared through a min and a max
  /// all-reduce); throws std::runtime_error naming `what` and `names[i]` of
  /// the first that differs. `names` and `tensors` have the same length.
  void check_identical(const std::string& what, const std::vector<std::string>& names,
                       const std::vector<at::Tensor>& tensors);
  /// Waits until every rank reaches it.
  void barrier();

  struct Impl;
  /// For the library's own use (gradient buckets).
  Impl& impl() { return *impl_; }

 private:
  explicit DistributedGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// A 64-bit FNV-1a checksum of a tensor's bytes (made contiguous, on the CPU).
uint64_t tensor_checksum(const at::Tensor& tensor);

}  // namespace sparsity
