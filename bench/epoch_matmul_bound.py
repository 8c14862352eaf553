"""The least time an epoch of epoch_bench's MLP can take on this BLAS: its
matrix products alone (forward, weight gradients, input gradients but the
first layer's), batch 128, 422 batches, one thread.

    /usr/bin/python3 bench/epoch_matmul_bound.py [--threads 1]
"""
import argparse
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()
torch.set_num_threads(args.threads)
B = 128
sizes = [(784, 128), (128, 64), (64, 10)]
x = [torch.randn(B, i) for i, o in sizes]
w = [torch.randn(o, i) for i, o in sizes]
g = [torch.randn(B, o) for i, o in sizes]


def batch():
    for k in range(3):
        torch.mm(x[k], w[k].t())  # forward
        torch.mm(g[k].t(), x[k])  # weight gradient
        if k > 0:
            torch.mm(g[k], w[k])  # input gradient (none for the first layer)


for _ in range(3):
    start = time.perf_counter()
    for _ in range(422):
        batch()
    print(f"matrix products of one epoch, {args.threads} thread(s): {time.perf_counter() - start:.3f} s")
