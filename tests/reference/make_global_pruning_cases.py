#!/usr/bin/python3
"""Writes masks of PyTorch's global_unstructured pruning for the ReferenceGlobalPruning tests.

Run with Debian's python3-torch (1.13), e.g.

    /usr/bin/python3 tests/reference/make_global_pruning_cases.py --output global_cases.pt

For each case, several float32 tensors are pruned together by

    torch.nn.utils.prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=level)

which GlobalNormSparsifier with (1, 1) blocks and the L1 norm must reproduce.
The output (torch.save, zipfile format, read by LibTorch's pickle_load) is a
list of dicts:

    {"id": int, "kind": "random" | "repeats" | "edge", "level": float,
     "tensors": (float32 tensor, ...), "masks": (uint8 tensor of each's shape, ...)}

The reference picks the pruned weights with torch.topk(largest=False), whose
choice among equal magnitudes is unspecified; cases are kept only when the
k-th and (k+1)-th smallest magnitudes differ, so that the mask is defined.
Exact zeros and repeated values elsewhere are fine (kind "repeats").
"""

import argparse
import sys
import time

import torch
from torch import nn
from torch.nn.utils import prune

SEED = 20261201

SHAPE_SETS = [
    [(37,), (8, 8)],
    [(300, 78), (100, 30), (10, 10)],
    [(16, 3, 3, 3), (32, 16, 3, 3), (10, 288)],
    [(1, 50), (13, 7), (64,), (5, 64)],
    [(2000,)],
]
LEVELS = [0.05, 0.1, 0.25, 0.5, 0.7, 0.9, 0.95, 0.99]
EDGE_LEVELS = [0.0, 1.0]


class Holder(nn.Module):
    def __init__(self, tensor):
        super().__init__()
        self.w = nn.Parameter(tensor.clone())


def reference_masks(tensors, level):
    holders = [Holder(t) for t in tensors]
    prune.global_unstructured([(h, "w") for h in holders], pruning_method=prune.L1Unstructured,
                              amount=level)
    return [h.w_mask.detach().to(torch.uint8).clone() for h in holders]


def well_defined(tensors, level):
    magnitudes = torch.cat([t.abs().reshape(-1) for t in tensors]).sort().values
    k = round(level * magnitudes.numel())
    return k == 0 or k == magnitudes.numel() or bool(magnitudes[k - 1] < magnitudes[k])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="file to write (torch.save format)")
    output = parser.parse_args().output

    started = time.monotonic()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    cases, counts, skipped = [], {}, 0

    def add(kind, tensors, level):
        nonlocal skipped
        if not well_defined(tensors, level):
            skipped += 1
            return
        masks = reference_masks(tensors, level)
        for t, m in zip(tensors, masks):
            assert m.shape == t.shape, (m.shape, t.shape)
        # Tuples: LibTorch's unpickler lacks APPEND, which a one-item list needs.
        cases.append({"id": len(cases), "kind": kind, "level": float(level),
                      "tensors": tuple(tensors), "masks": tuple(masks)})
        counts[kind] = counts.get(kind, 0) + 1

    for shapes in SHAPE_SETS:
        # Layers of different scales, so that their shares of the pruning differ.
        for trial in range(3):
            tensors = [torch.randn(s) * (0.1 + 0.9 * i) / (1 + trial) for i, s in enumerate(shapes)]
            for level in LEVELS:
                add("random", tensors, level)
            for level in EDGE_LEVELS:
                add("edge", tensors, level)

        # Exact zeros and repeated magnitudes (values on a coarse grid, both
        # signs), away from the threshold: the well-defined levels only.
        tensors = []
        for s in shapes:
            t = torch.randn(s)
            flat = t.view(-1)
            flat[torch.randperm(flat.numel())[: flat.numel() // 5]] = 0.0
            grid = torch.randperm(flat.numel())[: flat.numel() // 5]
            flat[grid] = torch.randint(-3, 4, (grid.numel(),)).to(torch.float32) * 0.5
            tensors.append(t)
        for level in LEVELS + [0.15, 0.2, 0.3, 0.6]:
            add("repeats", tensors, level)
        for level in EDGE_LEVELS:
            add("edge", tensors, level)

    torch.save(cases, output)
    elapsed = time.monotonic() - started
    detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    print(f"wrote {len(cases)} global pruning cases ({detail}; {skipped} with a tie at the threshold "
          f"left out) to {output} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
