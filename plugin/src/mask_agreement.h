#pragma once

#include <string>

namespace sparsity {
class BaseDataSparsifier;
class Trainer;
}  // namespace sparsity

namespace sparsity::detail {

/// In a data-parallel fit, checks that `sparsifier`'s masks are bit for bit
/// the same on every rank (one checksum per mask, all-reduced); throws
/// std::runtime_error naming `callback` and the first parameter whose masks
/// differ. Nothing with one process.
void check_masks_agree(Trainer& trainer, const BaseDataSparsifier& sparsifier, const std::string& callback);

}  // namespace sparsity::detail
