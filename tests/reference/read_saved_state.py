"""Reads a saved sparsifier state with Python's torch.load and prints what a
Python user gets from it, one line per name: the data's shape, the decoded
mask's count of kept elements, the mask encoding, the parametrized flag, the
sum of data * mask, and the config and extra state as JSON. Used by the C++ tests to prove the file is readable from Python,
and by docs/data_sparsifier.md as the example of decoding masks."""
import json
import sys

import numpy as np
import torch


def decode_mask(encoded):
    """The uint8 mask of an encoded mask dict (see docs/data_sparsifier.md)."""
    shape = list(encoded["shape"])
    numel = int(np.prod(shape)) if shape else 1
    if encoded["encoding"] == "bitpacked":
        bits = encoded["bits"].numpy()
        flat = np.unpackbits(bits, bitorder="little")[:numel]
    elif encoded["encoding"] == "sparse":
        flat = np.full(numel, encoded["fill"], dtype=np.uint8)
        flat[encoded["indices"].numpy().astype(np.int64)] = 1 - encoded["fill"]
    else:
        raise ValueError(f"unknown encoding {encoded['encoding']}")
    return torch.from_numpy(flat.astype(np.uint8).reshape(shape))


def main(path):
    state = torch.load(path)
    assert state["format"] == "sparsity.BaseDataSparsifier", state["format"]
    print("defaults", json.dumps(state["defaults"], sort_keys=True))
    for name in state["names"]:
        data = state["data"][name]
        encoded = state["state"][name]["mask"]
        mask = decode_mask(encoded)
        assert mask.shape == data.shape, (name, mask.shape, data.shape)
        extra = {k: v for k, v in state["state"][name].items() if k != "mask"}
        print(f"{name} shape={list(data.shape)} kept={int(mask.sum())} "
              f"encoding={encoded['encoding']} parametrized={state['parametrized'][name]} "
              f"masked_sum={float((data.double() * mask.double()).sum()):.4f} "
              f"config={json.dumps(state['data_groups'][name], sort_keys=True)} "
              f"state={json.dumps(extra, sort_keys=True)}")


if __name__ == "__main__":
    main(sys.argv[1])
