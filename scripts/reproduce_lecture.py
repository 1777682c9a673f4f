"""Reproduce every claim of the lecture on the bundled digits and write outputs/lecture/REPORT.md.

    uv run python scripts/reproduce_lecture.py            # ~4–8 min on 2 CPU cores, 3 seeds
    uv run python scripts/reproduce_lecture.py --quick    # ~2 min, 1 seed, shorter runs

Every run uses trainer.threads=auto: one torch thread for these small networks (dltips.threads).
"""
import argparse

from dltips.lecture import STUDIES, reproduce

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="one seed and shorter runs")
parser.add_argument("--out", default="outputs/lecture", help="where REPORT.md, figures/ and runs/ go")
parser.add_argument("--only", nargs="+", choices=list(STUDIES), help="run only these studies")
args = parser.parse_args()
reproduce(args.out, quick=args.quick, only=args.only)
