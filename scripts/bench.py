"""Benchmark dltips' training loop against plain PyTorch loops; writes <out>/BENCH.md.

    uv run python scripts/bench.py [--quick] [--out outputs/bench] [--threads N]

Every loop compared runs with the same torch thread count (--threads, default 1: what
trainer.threads=auto picks for these networks, see dltips.threads).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dltips.bench import benchmark, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, short runs, one startup sample (about a minute)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every loop (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(write(benchmark(args.out, quick=args.quick), args.out))


if __name__ == "__main__":
    main()
