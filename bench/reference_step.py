#!/usr/bin/python3
"""Times the reference DataNormSparsifier.step() (PyTorch's own, Debian's
python3-torch 1.13) on the cases of data_norm_sparsifier_bench.

    /usr/bin/python3 bench/reference_step.py [--threads 2] [--repeats 3] [--case a|b]

For each case it reports the best and the median wall time of step() over
--repeats steps, and the extra peak memory of the first step: the rise of the
process's peak RSS (getrusage ru_maxrss) during it. ru_maxrss cannot be reset,
so each case runs in a fresh child process, and the figure is the peak beyond
everything resident before the step (data, mask, torch itself); it is a lower
bound when the step reuses memory the allocator already holds, which a fresh
process does not.
"""

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time

CASES = {
    # name: (rows, cols, block, zeros_per_block, level)
    "a": (1_000_000, 64, (1, 4), 4, 0.5),
    "b": (4096, 4096, (1, 4), 2, 0.5),
}


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_case(name, threads, repeats, out):
    import torch

    try:
        from torch.ao.pruning._experimental.data_sparsifier import DataNormSparsifier
    except ImportError:
        from torch.ao.sparsity._experimental.data_sparsifier import DataNormSparsifier

    torch.set_num_threads(threads)
    rows, cols, block, zeros, level = CASES[name]
    torch.manual_seed(0)
    data = torch.randn(rows, cols, dtype=torch.float32)
    sparsifier = DataNormSparsifier(sparsity_level=level, sparse_block_shape=block,
                                    zeros_per_block=zeros, norm="L1")
    sparsifier.add_data("table", data)
    sparsifier.get_mask("table").fill_(1)  # make sure the mask is resident

    before = maxrss_mib()
    times = []
    start = time.perf_counter()
    sparsifier.step()
    times.append(time.perf_counter() - start)
    extra_peak = maxrss_mib() - before
    for _ in range(repeats - 1):
        start = time.perf_counter()
        sparsifier.step()
        times.append(time.perf_counter() - start)

    mask = sparsifier.get_mask("table")
    out.put({
        "case": name, "rows": rows, "cols": cols, "block": list(block), "zeros": zeros,
        "level": level, "threads": torch.get_num_threads(),
        "best_s": min(times), "median_s": statistics.median(times), "steps": len(times),
        "data_MB": data.numel() * data.element_size() / 2**20,
        "extra_peak_MB": extra_peak,
        "zeros_frac": 1.0 - float(mask.to(torch.float64).mean()),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", choices=sorted(CASES), action="append",
                        help="case to run (repeatable; default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")  # a fresh process, hence a fresh ru_maxrss, per case
    for name in args.case or sorted(CASES):
        queue = ctx.Queue()
        child = ctx.Process(target=run_case, args=(name, args.threads, args.repeats, queue))
        child.start()
        result = queue.get()
        child.join()
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(f"case {name}: {result['rows']} x {result['cols']}, block {tuple(result['block'])}, "
                  f"zeros {result['zeros']}, level {result['level']}, {result['threads']} threads: "
                  f"step best {result['best_s'] * 1e3:.0f} ms, median {result['median_s'] * 1e3:.0f} ms "
                  f"({result['steps']} steps); data {result['data_MB']:.0f} MB, "
                  f"extra peak {result['extra_peak_MB']:.0f} MB; zeros {result['zeros_frac']:.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
