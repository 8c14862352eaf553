#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/config.h"
#include "sparsity/data_scheduler/base_data_scheduler.h"

namespace sparsity {

class BaseDataSparsifier;

/// Builds a data scheduler on `sparsifier` from its arguments (e.g. from YAML).
using DataSchedulerFactory =
    std::function<std::unique_ptr<BaseDataScheduler>(BaseDataSparsifier& sparsifier, const Config& args)>;

/// Makes `type` constructible by `make_data_scheduler`. Registering a name
/// twice is an error unless `replace` is true. Thread-safe.
void register_data_scheduler(const std::string& type, DataSchedulerFactory factory, bool replace = false);

/// The registered type names, sorted. Built in: "StepSLScheduler",
/// "CubicSLScheduler", "PolynomialDecayScheduler" (their arguments are their
/// options' names; each also accepts `schedule_param` and `last_epoch`).
std::vector<std::string> registered_data_schedulers();

/// A new scheduler of the registered `type` on `sparsifier`. An unknown type,
/// or an unknown or bad argument, is std::invalid_argument listing what is
/// accepted.
std::unique_ptr<BaseDataScheduler> make_data_scheduler(const std::string& type, BaseDataSparsifier& sparsifier,
                                                       const Config& args = {});

}  // namespace sparsity
