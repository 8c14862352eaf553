#include "sparsity/data_scheduler/registry.h"

#include "sparsity/named_registry.h"
#include "sparsity/data_scheduler/cubic_sl_scheduler.h"
#include "sparsity/data_scheduler/polynomial_decay_scheduler.h"
#include "sparsity/data_scheduler/step_sl_scheduler.h"

namespace sparsity {

namespace {

// Built-ins are added on first use rather than by static initializers, which a
// static link could drop.
NamedRegistry<DataSchedulerFactory>& registry() {
  static NamedRegistry<DataSchedulerFactory> instance("data scheduler");
  static const bool builtins_added = [] {
    instance.add("StepSLScheduler", [](BaseDataSparsifier& s, const Config& args) {
      return std::make_unique<StepSLScheduler>(s, StepSLSchedulerOptions::from_config(args));
    }, false);
    instance.add("CubicSLScheduler", [](BaseDataSparsifier& s, const Config& args) {
      return std::make_unique<CubicSLScheduler>(s, CubicSLSchedulerOptions::from_config(args));
    }, false);
    instance.add("PolynomialDecayScheduler", [](BaseDataSparsifier& s, const Config& args) {
      return std::make_unique<PolynomialDecayScheduler>(s, PolynomialDecaySchedulerOptions::from_config(args));
    }, false);
    return true;
  }();
  (void)builtins_added;
  return instance;
}

}  // namespace

void register_data_scheduler(const std::string& type, DataSchedulerFactory factory, bool replace) {
  registry().add(type, std::move(factory), replace);
}

std::vector<std::string> registered_data_schedulers() { return registry().names(); }

std::unique_ptr<BaseDataScheduler> make_data_scheduler(const std::string& type, BaseDataSparsifier& sparsifier,
                                                       const Config& args) {
  return registry().get(type)(sparsifier, args);
}

}  // namespace sparsity
