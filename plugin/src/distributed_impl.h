#pragma once

// The c10d objects behind DistributedGroup: included only by the plugin's
// distributed sources, so that no public header names c10d or Gloo.

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <string>

#include "sparsity/plugin/distributed.h"

namespace sparsity {

struct DistributedGroup::Impl {
  DistributedOptions options;
  std::string backend = "gloo";
  c10::Device device{c10::kCPU};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;

  /// Waits for `work`, turning a failure into a std::runtime_error that says
  /// what was being done and what the likely cause is.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) const;
  /// The text of an error of the other ranks, with this rank and the timeout.
  std::string failure(const char* what, const std::string& cause) const;
};

}  // namespace sparsity
