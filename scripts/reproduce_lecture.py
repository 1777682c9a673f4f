"""Reproduce every claim of the lecture on the bundled digits and write outputs/lecture/REPORT.md.

    uv run python scripts/reproduce_lecture.py            # ~4–8 min on 2 CPU cores, 3 seeds
    uv run python scripts/reproduce_lecture.py --quick    # ~2 min, 1 seed, shorter runs
"""
import argparse

import torch

from dltips.lecture import STUDIES, reproduce

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="one seed and shorter runs")
parser.add_argument("--out", default="outputs/lecture", help="where REPORT.md, figures/ and runs/ go")
# The lecture's networks are small: a second intra-op thread buys little and, on a busy machine,
# each op waits for its slowest thread.
parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
parser.add_argument("--only", nargs="+", choices=list(STUDIES), help="run only these studies")
args = parser.parse_args()
torch.set_num_threads(args.threads)
reproduce(args.out, quick=args.quick, only=args.only)
