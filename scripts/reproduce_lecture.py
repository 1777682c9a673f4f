"""Reproduce every claim of the lecture on the bundled data and write outputs/lecture/REPORT.md.

    uv run python scripts/reproduce_lecture.py            # full: 5 seeds per variant, 2 CPU cores
    uv run python scripts/reproduce_lecture.py --quick    # 2 seeds, shorter runs: outputs/lecture-quick/

Every run uses trainer.threads=auto: one torch thread for these small networks, and for their seeds
stacked under 250k parameters; a larger stack measures whether all cores are faster (dltips.engine.threads).
The optimizers' paths on 2-D surfaces, for any optimizer config: scripts/trajectories.py.
"""

import argparse
import sys
from pathlib import Path

# The lecture's studies are a client of dltips kept beside it (lecture/), not installed with it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lecture import STUDIES, reproduce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two seeds and shorter runs, into outputs/lecture-quick")
    parser.add_argument(
        "--out",
        default=None,
        help="where REPORT.md, figures/ and runs/ go (default: outputs/lecture, or outputs/lecture-quick with --quick)",
    )
    parser.add_argument("--only", nargs="+", choices=list(STUDIES), help="run only these studies")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="studies run side by side (default: one per core this process may use)",
    )
    args = parser.parse_args()
    if args.workers is not None and args.workers < 1:
        parser.error(f"Invalid --workers: {args.workers}; allowed: an integer >= 1")
    reproduce(args.out, quick=args.quick, only=args.only, workers=args.workers)


if __name__ == "__main__":  # the studies' worker processes import this file again: they must not run it
    main()
