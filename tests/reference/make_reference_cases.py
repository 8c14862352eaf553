#!/usr/bin/python3
"""Writes masks of PyTorch's own DataNormSparsifier for the ReferenceMasks tests.

Run with Debian's python3-torch (1.13), e.g.

    /usr/bin/python3 tests/reference/make_reference_cases.py --output reference_cases.pt

The output, written with torch.save (zipfile format) so that LibTorch's
torch::jit::pickle_load reads it, is a list of dicts:

    {"id": int, "kind": "random" | "nan" | "ties",
     "data": float32 tensor, "mask": uint8 tensor of data's shape,
     "level": float, "block": [h, w], "zeros": int, "norm": "L1" | "L2"}

Cases are restricted to those where the reference's mask is well defined:
* no size-1 dims other than the leading one of (1, n) data (the reference
  squeezes them, a documented difference);
* the reference sorts with an unstable sort (std::sort) that is only stable in
  practice for <= 16 elements; the sorts inside a block always are (blocks are
  at most 4 x 4), but the sort of the block norms is not. So cases with exact
  ties between block norms, or with more NaN blocks selected than there are
  blocks with a number norm, have at most 16 blocks.
"""

import argparse
import itertools
import math
import sys
import time

import torch

try:  # The module moved to torch.ao.pruning in later releases.
    from torch.ao.pruning._experimental.data_sparsifier import DataNormSparsifier
except ImportError:
    from torch.ao.sparsity._experimental.data_sparsifier import DataNormSparsifier

SEED = 20240611

# Shapes, most of them not divisible by the blocks. Size-1 dims only in the
# leading (1, n) case.
RANDOM_SHAPES = [(37,), (64,), (1, 50), (8, 8), (13, 7), (20, 33), (5, 64), (16, 12)]
BLOCKS = [(h, w) for h in range(1, 5) for w in range(1, 5)]
LEVELS = [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]
NORMS = ["L1", "L2"]
MAX_STABLE_SORT = 16  # the reference's sort is stable up to this many elements


def num_blocks(shape, block):
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    return math.ceil(rows / block[0]) * math.ceil(cols / block[1])


def reference_mask(data, level, block, zeros, norm):
    sparsifier = DataNormSparsifier(sparsity_level=level, sparse_block_shape=block,
                                    zeros_per_block=zeros, norm=norm)
    sparsifier.add_data("d", data)
    sparsifier.step()
    mask = sparsifier.get_mask("d")
    # 1-D data gets a (1, n) mask from the reference.
    return mask.detach().reshape(data.shape).to(torch.uint8).clone()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="file to write (torch.save format)")
    args = parser.parse_args()

    start = time.monotonic()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    cases = []
    counts = {}

    def add(kind, data, level, block, zeros, norm):
        mask = reference_mask(data, level, block, zeros, norm)
        assert mask.shape == data.shape, (mask.shape, data.shape)
        assert bool(((mask == 0) | (mask == 1)).all())
        cases.append({"id": len(cases), "kind": kind, "data": data, "mask": mask,
                      "level": float(level), "block": [block[0], block[1]],
                      "zeros": int(zeros), "norm": norm})
        counts[kind] = counts.get(kind, 0) + 1

    def sweep(kind, data, blocks=BLOCKS, levels=LEVELS, zeros_list=None):
        for block in blocks:
            block_size = block[0] * block[1]
            zs = range(block_size + 1) if zeros_list is None else zeros_list(block_size)
            for zeros, level, norm in itertools.product(zs, levels, NORMS):
                add(kind, data, level, block, zeros, norm)

    # 1. Random data: the whole grid. One tensor per shape, shared by its cases
    #    (torch.save stores a shared storage once).
    for shape in RANDOM_SHAPES:
        sweep("random", torch.randn(shape, dtype=torch.float32))

    # A larger table, sampled more sparsely: a few blocks and zeros counts.
    big = torch.randn(96, 130, dtype=torch.float32)
    sweep("random", big, blocks=[(1, 4), (2, 2), (3, 4), (4, 3)],
          zeros_list=lambda n: sorted({0, 1, n // 2, n - 1, n}))

    # 2. NaN entries. With at most 16 blocks every level is well defined (the
    #    NaN blocks are sorted last, in position order); with more blocks only
    #    levels that select no more blocks than have a number norm.
    for shape in [(14,), (1, 16), (6, 7), (8, 8)]:
        data = torch.randn(shape, dtype=torch.float32)
        flat = data.view(-1)
        flat[torch.randperm(flat.numel())[: max(1, flat.numel() // 8)]] = float("nan")
        for block in BLOCKS:
            if num_blocks(shape, block) > MAX_STABLE_SORT:
                continue
            sweep("nan", data, blocks=[block])
    for shape in [(20, 33), (13, 7)]:
        data = torch.randn(shape, dtype=torch.float32)
        flat = data.view(-1)
        flat[torch.randperm(flat.numel())[: max(1, flat.numel() // 40)]] = float("nan")
        rows, cols = shape
        for block in BLOCKS:
            nb = num_blocks(shape, block)
            padded = torch.zeros(math.ceil(rows / block[0]) * block[0],
                                 math.ceil(cols / block[1]) * block[1])
            padded[:rows, :cols] = data
            blocks_view = padded.view(padded.shape[0] // block[0], block[0],
                                      padded.shape[1] // block[1], block[1])
            nan_blocks = int(torch.isnan(blocks_view).any(dim=3).any(dim=1).sum())
            ok_levels = [lv for lv in LEVELS if round(lv * nb) <= nb - nan_blocks]
            sweep("nan", data, blocks=[block], levels=ok_levels)

    # 3. Exact ties: small integers, so equal magnitudes inside blocks and equal
    #    block norms. At most 16 blocks (one row, or a small 2-D table).
    for shape in [(12,), (16,), (1, 13), (4, 4), (6, 6), (7, 5)]:
        data = torch.randint(-2, 3, shape).to(torch.float32)
        for block in BLOCKS:
            if num_blocks(shape, block) > MAX_STABLE_SORT:
                continue
            sweep("ties", data, blocks=[block])
    # All equal, and all zero.
    for value in [0.0, 1.5, -2.0]:
        data = torch.full((3, 10), value, dtype=torch.float32)
        for block in BLOCKS:
            if num_blocks(data.shape, block) > MAX_STABLE_SORT:
                continue
            sweep("ties", data, blocks=[block])

    torch.save(cases, args.output)
    elapsed = time.monotonic() - start
    detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    print(f"wrote {len(cases)} reference cases ({detail}) to {args.output} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
