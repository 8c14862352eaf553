"""One epoch of the epoch benchmark in Python PyTorch: the loop a PyTorch user
writes for the MLP that bench/epoch_bench.cpp trains with our Trainer.

Prints one JSON line: {"threads": T, "epoch_seconds": [...], "blas": "..."}.
Run by epoch_bench (see bench/README.md); by hand:
  /usr/bin/python3 bench/epoch_reference.py --threads 2 --epochs 3
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def loaded_blas():
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line and "/" in line}
    return ", ".join(sorted(paths))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=54000)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    images = read_idx(f"{args.data_dir}/train-images-idx3-ubyte.gz")[: args.examples]
    labels = read_idx(f"{args.data_dir}/train-labels-idx1-ubyte.gz")[: args.examples]
    inputs = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 784)
    targets = torch.from_numpy(labels.astype(np.int64))

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = 128
    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(inputs.shape[0])
        total = 0.0
        for i in range(0, inputs.shape[0], batch):
            index = order[i:i + batch]
            loss = F.cross_entropy(model(inputs[index]), targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"threads": torch.get_num_threads(), "epoch_seconds": seconds,
                      "final_loss": total / ((inputs.shape[0] + batch - 1) // batch),
                      "blas": loaded_blas()}))


if __name__ == "__main__":
    main()
