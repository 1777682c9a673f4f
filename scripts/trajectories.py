"""Watch optimizers move on 2-D cost surfaces: Beale's function, a saddle, a local minimum before the global one.

    uv run python scripts/trajectories.py                                   # sgd, momentum, adagrad, adam
    uv run python scripts/trajectories.py optimizer=rmsprop optimizer.lr=0.01   # yours, beside gradient descent
    uv run python scripts/trajectories.py optimizer=momentum optimizer.momentum=0.5 --surface two_minima --steps 1000

Overrides are those of `dltips-train` for the optimizer group: the same configs
(configs/optimizer/*.yaml), the same classes. Writes trajectories.png and trajectories.gif.
"""

import argparse
import sys
from pathlib import Path

# The lecture's studies are a client of dltips kept beside it (lecture/), not installed with it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lecture.surfaces import SURFACES, optimizer_factory, trajectory

parser = argparse.ArgumentParser(
    description=__doc__.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog="\n".join(__doc__.splitlines()[2:5]),
)
parser.add_argument("overrides", nargs="*", help="optimizer overrides, e.g. optimizer=adam optimizer.lr=0.05")
parser.add_argument("--surface", choices=[*SURFACES, "all"], default="all")
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--start", type=float, nargs=2, metavar=("X", "Y"), help="default: each surface's own")
parser.add_argument("--out", type=Path, default=Path("outputs/trajectories"))
args = parser.parse_args()

from lecture.trajectories import OPTIMIZERS, animate, lecture_optimizer, trajectories_figure  # noqa: E402

surfaces = list(SURFACES) if args.surface == "all" else [args.surface]
paths, lrs = {}, {}
for s in surfaces:
    surf, start = SURFACES[s], tuple(args.start) if args.start else SURFACES[s].start
    if args.overrides:
        make = optimizer_factory(args.overrides)
        name = next((o.partition("=")[2] for o in args.overrides if o.startswith("optimizer=")), "sgd")
        chosen = {"sgd": (lecture_optimizer("sgd", surf.lr["sgd"]), surf.lr["sgd"]), name: (make, make.keywords["lr"])}
    else:
        chosen = {o: (lecture_optimizer(o, surf.lr[o]), surf.lr[o]) for o in OPTIMIZERS}
    paths[s] = {o: trajectory(surf.fn, make, start, args.steps) for o, (make, _) in chosen.items()}
    lrs[s] = {o: lr for o, (_, lr) in chosen.items()}
    for o, p in paths[s].items():
        print(
            f"{s:10s} {o:10s} lr {lrs[s][o]:<8g} {len(p) - 1:5d} steps, ends at ({p[-1][0]:.4g}, {p[-1][1]:.4g}), "
            f"f = {surf.fn(__import__('torch').from_numpy(p[-1])).item():.4g}"
        )
args.out.mkdir(parents=True, exist_ok=True)
trajectories_figure(paths, lrs).savefig(args.out / "trajectories.png", dpi=110)
animate(paths, lrs, args.out / "trajectories.gif")
print(f"wrote {args.out / 'trajectories.png'} and {args.out / 'trajectories.gif'}")
