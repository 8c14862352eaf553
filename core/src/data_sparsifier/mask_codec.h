#pragma once

// Compact, Python-readable encodings of uint8 masks for saved sparsifier state.

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <string>

namespace sparsity::detail {

/// Encodes a 0/1 uint8 mask as whichever is smaller:
/// - {"encoding": "bitpacked", "shape": [...], "bits": uint8[ceil(n/8)]}, where
///   element i of the flattened mask is bit (i % 8) of byte i / 8 (numpy's
///   `unpackbits(..., bitorder="little")`);
/// - {"encoding": "sparse", "shape": [...], "fill": 0 or 1, "indices": int32 or
///   int64[m]}: every element is `fill` except the flattened `indices`.
c10::IValue encode_mask(const at::Tensor& mask);

/// Decodes `encode_mask`'s output to a contiguous CPU uint8 tensor. Throws
/// std::invalid_argument mentioning `what` on any inconsistency.
at::Tensor decode_mask(const c10::IValue& encoded, const std::string& what);

}  // namespace sparsity::detail
