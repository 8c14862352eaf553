#pragma once

#include <cstdint>

namespace torch::nn {
class Module;
}

namespace sparsity {

/// The seed's hard sparsification, once training is done: every
/// LossySparsifier that is a child of a Sequential, ModuleList or ModuleDict
/// is replaced by a LossyHardSparsifier with its learned ε; one held directly
/// by a custom module (which cannot be rewired), or `model` itself when it is
/// one, is switched to hard mode (`set_hard(true)`), with the same effect.
/// Returns the number of layers converted (a layer already in hard mode that
/// cannot be replaced is not counted).
///
/// Example:
/// ```
/// int64_t converted = sparsity::convert_to_hard(*net);  // soft -> hard with the learned ε
/// ```
int64_t convert_to_hard(torch::nn::Module& model);

}  // namespace sparsity
