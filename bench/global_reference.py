#!/usr/bin/python3
"""Times torch.nn.utils.prune.global_unstructured (L1Unstructured, Debian's
python3-torch 1.13) on the models of BM_GlobalStep in data_norm_sparsifier_bench.

    /usr/bin/python3 bench/global_reference.py [--threads 2] [--repeats 5]

Each model runs in its own spawned process, so that the extra peak memory of
its first call (the rise of ru_maxrss, which cannot be reset) is its own. The
call prunes fresh modules each time (prune.remove between calls, untimed).
"""

import argparse
import multiprocessing as mp
import resource
import sys
import time

# As model_shapes() in data_norm_sparsifier_bench.cpp.
MODELS = {
    0: [(128, 784), (64, 128), (10, 64)],
    1: [(4096, 1024), (1024, 4096), (2048, 2048), (2048, 2048), (1024, 1024),
        (1024, 1024), (1024, 1024), (1024, 1024), (10, 1000)],
}


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_model(model, level, threads, repeats, out):
    import torch
    from torch import nn
    from torch.nn.utils import prune

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = []
    for rows, cols in MODELS[model]:
        layer = nn.Module()
        layer.weight = nn.Parameter(torch.randn(rows, cols) / cols ** 0.5)
        layers.append(layer)
    params = [(layer, "weight") for layer in layers]
    seconds = []
    extra_peak = None
    for _ in range(repeats):
        before = peak_rss_mb()
        start = time.perf_counter()
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=level)
        seconds.append(time.perf_counter() - start)
        if extra_peak is None:
            extra_peak = peak_rss_mb() - before
        zeros = sum(int((layer.weight_mask == 0).sum()) for layer in layers)
        for layer in layers:
            prune.remove(layer, "weight")
    numel = sum(r * c for r, c in MODELS[model])
    out.put((model, threads, min(seconds), extra_peak, numel * 4 / 2**20, zeros / numel))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--level", type=float, default=0.9)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    for model in MODELS:
        queue = ctx.Queue()
        child = ctx.Process(target=time_model, args=(model, args.level, args.threads, args.repeats, queue))
        child.start()
        model, threads, best, extra_peak, data_mb, zeros = queue.get()
        child.join()
        print(f"model {model}: global_unstructured best {best * 1e3:.2f} ms ({threads} threads), "
              f"data {data_mb:.1f} MB, extra peak {extra_peak:.0f} MB, zeros {zeros:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
