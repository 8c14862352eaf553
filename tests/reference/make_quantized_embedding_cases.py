"""PyTorch's own post_training_sparse_quantize (torch.ao.sparsity._experimental
.data_sparsifier.quantization_utils, Debian's python3-torch 1.13) on a seeded
model, for the C++ ReferenceQuantizedEmbedding tests to compare with.

Writes, with torch.save, a dict:
  "weights": {module name: the float weight before anything}
  "sparsify_first" / "quantize_first": {module name: {"dequantized", "scales",
      "zero_points", "codes"}} of the reference's quantized weight
  "bags": list of {"name", "mode", "input", "offsets", "per_sample_weights"
      (or None), "output"}: torch.nn.functional.embedding_bag over the
      reference's dequantized table (sparsify_first). (The reference's
      QuantizedEmbeddingBag.from_float keeps mode "sum" whatever the float
      module's mode, so its mean and max outputs are not EmbeddingBag's.)
"""
import argparse
import copy

import torch
import torch.nn as nn
from torch.ao.sparsity._experimental.data_sparsifier import DataNormSparsifier
from torch.ao.sparsity._experimental.data_sparsifier import quantization_utils

SPARSE_CONFIG = {"sparsity_level": 0.8, "sparse_block_shape": (1, 4), "zeros_per_block": 4}


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 12)
        self.towers = nn.Sequential(nn.EmbeddingBag(64, 16, mode="sum"), nn.Linear(16, 4))


def quantized(model, sparsify_first):
    m = copy.deepcopy(model)
    quantization_utils.post_training_sparse_quantize(m, DataNormSparsifier, sparsify_first=sparsify_first,
                                                     **SPARSE_CONFIG)
    out = {}
    for name, module in [("emb", m.emb), ("towers.0", m.towers[0])]:
        w = module.weight()
        out[name] = {"dequantized": torch.dequantize(w).clone(), "scales": w.q_per_channel_scales().float().clone(),
                     "zero_points": w.q_per_channel_zero_points().float().clone(), "codes": w.int_repr().clone()}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Model()
    cases = {"weights": {"emb": model.emb.weight.detach().clone(), "towers.0": model.towers[0].weight.detach().clone()},
             "sparsify_first": quantized(model, True), "quantize_first": quantized(model, False), "bags": []}
    g = torch.Generator().manual_seed(1)
    table = cases["sparsify_first"]["towers.0"]["dequantized"]
    for mode in ["sum", "mean", "max"]:
        for weighted in ([False, True] if mode == "sum" else [False]):
            inp = torch.randint(0, 64, (30,), generator=g)
            offsets = torch.tensor([0, 5, 5, 12, 20, 29])
            psw = torch.rand(30, generator=g) if weighted else None
            output = nn.functional.embedding_bag(inp, table, offsets, mode=mode, per_sample_weights=psw)
            cases["bags"].append({"name": "towers.0", "mode": mode, "input": inp, "offsets": offsets,
                                  "per_sample_weights": psw, "output": output})
    torch.save(cases, args.output)
    print(f"wrote the reference's quantized tables and {len(cases['bags'])} bag cases to {args.output}")


if __name__ == "__main__":
    main()
