"""Benchmark dltips' training loop against plain PyTorch loops, stacked networks against the same
networks one after another, sweeps by launcher, the cost of a member-step as the stack grows and
a 1,024-point sweep run whole; writes <out>/BENCH.md and <out>/bench.json.

    uv run python scripts/bench.py [--quick] [--only loops,seeds,members,sweeps,sweep1024,startup]
        [--out outputs/bench] [--threads N]

--quick leaves sweep1024 out unless --only names it (then a 16-point sweep in stacks of 8 stands
in for it).

Every loop compared runs with the same torch thread count (--threads, default 1: what
trainer.threads=auto picks for these networks alone, see dltips.engine.threads); so does the
startup's child process. The sweeps run as a user's command does: trainer.threads=auto, every core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from benchmarks import PARTS, QUICK_PARTS, benchmark, write


def parts(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"Invalid --only: {text!r}; allowed: a comma-separated list of {', '.join(PARTS)}"
        )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 repeats, short runs, a 4-job sweep, K = 1 and 4, one startup sample, no sweep1024 (a minute or two)",
    )
    parser.add_argument(
        "--only",
        type=parts,
        metavar="PARTS",
        help=f"run only these parts: {','.join(PARTS)} (default: all; with --quick, all but sweep1024)",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every loop (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = args.only or (QUICK_PARTS if args.quick else PARTS)
    print(write(benchmark(args.out, quick=args.quick, parts=chosen), args.out))


if __name__ == "__main__":
    main()
