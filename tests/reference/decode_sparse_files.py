"""Reads the compact files that the C++ test ReferenceSparseFile.WritesFilesForPython
wrote, with the Python decoder of docs/sparse_file.md (taken from the document
itself, so the documented decoder is the tested one), and compares:

- with what C++'s load_sparse decoded (TYPE.decoded.pt): bit for bit;
- with the dense state (dense.pt): float32 bit for bit, float16 the half
  rounding of each value, int8 within max|row| / 254; zeros exactly zero.
"""
import argparse
import re

import torch


def documented_decoder(doc_path):
    text = open(doc_path, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next(b for b in blocks if "def decode_sparse_file" in b)
    scope = {}
    exec(compile(code, doc_path, "exec"), scope)
    return scope["decode_sparse_file"]


def bits(t):
    return t.contiguous().reshape(-1).view(torch.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--doc", required=True)
    args = parser.parse_args()
    decode_sparse_file = documented_decoder(args.doc)
    dense = torch.load(f"{args.dir}/dense.pt")
    for value_type in ["float32", "float16", "int8"]:
        state = decode_sparse_file(f"{args.dir}/{value_type}.pt")
        decoded = torch.load(f"{args.dir}/{value_type}.decoded.pt")
        assert list(state) == list(dense), (value_type, list(state), list(dense))
        for name, want in dense.items():
            got = state[name]
            assert got.dtype == want.dtype and got.shape == want.shape, (value_type, name, got.dtype, got.shape)
            assert torch.equal(bits(got), bits(decoded[name])), (value_type, name, "differs from C++")
            if not want.is_floating_point() or value_type == "float32":
                if want.is_floating_point():  # -0.0 is a zero, decoded as +0.0
                    want = torch.where(want == 0, torch.zeros_like(want), want)
                assert torch.equal(bits(got), bits(want)), (value_type, name)
                continue
            assert not bool(((want == 0) & (got != 0)).any()), (value_type, name, "a zero is no longer zero")
            if value_type == "float16":
                assert torch.equal(got, want.half().to(want.dtype)), (value_type, name)
            else:
                rows = want.shape[0] if want.dim() >= 2 else 1
                w, g = want.double().reshape(rows, -1), got.double().reshape(rows, -1)
                bound = w.abs().amax(1, keepdim=True) / 254 * (1 + 1e-6)
                assert bool(((g - w).abs() <= bound).all()), (value_type, name, float((g - w).abs().max()))
        print(f"{value_type}: {len(state)} tensors decoded, match C++ and the dense state")


if __name__ == "__main__":
    main()
