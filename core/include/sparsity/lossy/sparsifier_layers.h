#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sparsity/lossy/lossy_sparsifier.h"

namespace torch::nn {
class Module;
}

namespace sparsity {

class ActivationCollector;

/// Every `LossySparsifier` below `model` (any depth, in `modules()` order;
/// not `model` itself, which need not be held by a shared_ptr). Hard layers
/// (`LossyHardSparsifier`) are not listed.
///
/// Example:
/// ```
/// for (auto& layer : sparsity::sparsifier_layers(*net)) layer->set_a(10.0);
/// ```
std::vector<LossySparsifier> sparsifier_layers(torch::nn::Module& model);

/// Attaches `collector` (null: detaches) to every LossySparsifier in `model`
/// (those of `sparsifier_layers`); returns how many.
///
/// Example:
/// ```
/// auto collector = std::make_shared<sparsity::ActivationCollector>();
/// int64_t attached = sparsity::attach_collector(*net, collector);
/// ```
int64_t attach_collector(torch::nn::Module& model, const std::shared_ptr<ActivationCollector>& collector);

}  // namespace sparsity
