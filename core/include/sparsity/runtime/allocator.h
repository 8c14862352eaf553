#pragma once

namespace sparsity {

/// Makes glibc's malloc keep freed memory for reuse instead of handing it back
/// to the kernel at once: the mmap threshold rises to 32 MiB (smaller blocks
/// come from the heap) and the trim threshold to 256 MiB (freed memory at the
/// heap's top is kept up to that size). A training step allocates and frees
/// the same batch-sized buffers (activations, gradients) every time; with
/// glibc's defaults (128 KiB) each of them is mapped, zeroed by the kernel
/// page by page and unmapped again, which cost a third of an MLP epoch on
/// Fashion-MNIST. A Python process usually reaches similar thresholds by
/// itself, through glibc's dynamic adjustment while importing.
///
/// Process-wide; idempotent; a no-op where malloc is not glibc's. Returns
/// whether the settings were applied. `Trainer::fit` calls it unless
/// `TrainerOptions::tune_allocator(false)`.
bool tune_allocator_for_training();

}  // namespace sparsity
