"""Values of PyTorch's own CubicSL schedule (torch.ao.sparsity, Debian's
python3-torch 1.13) over a grid of arguments, for the C++ ReferenceSchedules
tests to compare with.

Writes, with torch.save, a list of dicts {"s_0", "s_f", "t_0", "dt", "n",
"initially_zero", "values"} where values[t] is the reference's level at epoch t.
"""
import argparse

import torch
from torch.ao.sparsity import CubicSL


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    cases = []
    for s_0, s_f in [(0.0, 0.8), (0.0, 0.5), (0.1, 0.9), (0.3, 0.3), (0.0, 1.0)]:
        for t_0 in [0, 3]:
            for dt, n in [(1, 10), (2, 5), (10, 100), (3, 1)]:
                for initially_zero in [False, True]:
                    horizon = t_0 + dt * n + 5
                    values = [float(CubicSL.sparsity_compute_fn(s_0, s_f, t, t_0, dt, n, initially_zero))
                              for t in range(horizon)]
                    cases.append({"s_0": s_0, "s_f": s_f, "t_0": t_0, "dt": dt, "n": n,
                                  "initially_zero": initially_zero, "values": values})
    torch.save(cases, args.output)
    print(f"wrote {len(cases)} CubicSL schedules to {args.output}")


if __name__ == "__main__":
    main()
