"""Compare finished runs by setting: a table of every run, each setting's final metrics as the
mean over its seeds with a 95% interval, their differences, validation curves and gradient flow.

    dltips-compare outputs/sweeps/2026-11-28_10-00-00                     # by what the sweep varies
    dltips-compare outputs --group model.activation,optimizer.lr --test   # by these keys, and A − B
    dltips-compare --diff outputs/runs/A outputs/runs/B                   # what differs between two runs

A setting is a run's config values except the seed (dltips.observe.compare_groups). The command
reads only what each run wrote (metrics.json, config.yaml, .hydra/overrides.yaml, TensorBoard
events) and writes summary.csv, summary.md, curves.png and, when runs logged per-layer gradient
norms, gradient_flow.png into PATH/compare (or --out), so that a sweep's own summary stays as the
sweep wrote it. Failed and incomplete runs are listed apart and not drawn (unless --all); a
diverged run has no final metrics: they are missing in the tables and left out of the means.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
import sys
from pathlib import Path

import numpy as np

from dltips.observe.compare_diff import diff
from dltips.observe.compare_groups import (
    NONE,
    UnknownKey,
    group_keys,
    group_label,
    read_overrides,
    settings,
)
from dltips.observe.compare_tables import (
    DIFFERENCE_HEADING,
    FINAL,
    GROUP_HEADING,
    cell,
    difference_table,
    differences,
    group_stats,
    group_table,
    markdown,
    text,
)
from dltips.observe.tags import EPOCH, GRADIENTS, old_name, per_layer
from dltips.run import report

COLUMNS = ("run", "overrides", "status", *FINAL, "best val/acc", "best val/loss", "epochs", "time_s")
APART = ("run", "overrides", "status", "message")  # the runs listed apart: diverged, not finished
# Runs that ended on their own (a diverged one stops itself); failed and incomplete ones are listed apart.
FINISHED = report.FINISHED
# The command's default output folder inside PATH; never searched for runs.
OUT = "compare"
FIGURES = ("curves.png", "gradient_flow.png")
# ‖∂C/∂W^l‖ of layer l, under its current and its old tag name.
GRADIENT_TAG = re.compile(
    rf"^(?:{re.escape(per_layer(GRADIENTS, ''))}|{re.escape(old_name(per_layer(GRADIENTS, '')))})(\d+)$"
)


def is_run(path: Path) -> bool:
    return report.path(path).is_file() or (path / ".hydra").is_dir() or any(path.glob("events.out.tfevents.*"))


def find_runs(root: Path | str) -> list[Path]:
    """Every run directory at or below root, sorted; a run's own subfolders are not searched."""
    root = Path(root)
    members = sorted(p for p in root.glob("member_*") if is_run(p))
    if members:  # a trainer.seeds=K run: its members are the runs to compare
        return members
    if is_run(root):
        return [root]
    runs = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != OUT):
        runs += find_runs(child)
    return runs


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] over all event files directly in the run directory; read once per
    version of those files (a sweep's end reads each run for its summary and for its means)."""
    files = sorted(Path(path).glob("events.out.tfevents.*"))
    if not files:
        return {}
    key = (str(Path(path).resolve()), tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    if key not in SCALARS:
        if len(SCALARS) >= KEPT:  # a long process (the lecture's studies) does not grow without end
            SCALARS.clear()
        SCALARS[key] = load_scalars(path)
    return SCALARS[key]


# Runs whose scalars stay read (shared: not to be changed by callers): a 1,024-point sweep's.
KEPT = 2048
SCALARS: dict[tuple, dict] = {}


def load_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # Its INFO lines say nothing useful here, and its warning "Detected out of order event.step"
    # is the purge a resumed run writes on purpose (steps its killed attempt logged after its last
    # checkpoint are dropped): the summary reads them as TensorBoard shows them.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    # 0 keeps every scalar (the default samples 10 000); histograms and images are not needed.
    events = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 1, "images": 1, "tensors": 1})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def curve(scalars: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The metric against the epoch: the loop logs `epoch` at the same steps as val/*. Non-finite
    values (a diverged run's last point, in older runs) are left out: they would void a mean."""
    points = [(step, v) for step, v in scalars.get(metric, []) if math.isfinite(v)]
    epoch_at = {step: value for step, value in scalars.get(EPOCH) or scalars.get(old_name(EPOCH), [])}
    # Without `epoch` scalars (older runs) the i-th value is taken to be epoch i.
    epochs = [epoch_at.get(step, i) for i, (step, _) in enumerate(points)]
    return np.array(epochs, dtype=float), np.array([v for _, v in points], dtype=float)


def first_gradients(scalars: dict) -> np.ndarray | None:
    """‖∂C/∂W^l‖ for l = 1 … L at the run's first logged step, (L,) with NaN where a layer has
    none; None when the run logged no per-layer gradient norms."""
    layers = {int(m[1]): points for tag, points in scalars.items() if (m := GRADIENT_TAG.match(tag))}
    if not layers:
        return None
    first = min(step for points in layers.values() for step, _ in points)
    norms = np.full(max(layers), np.nan)
    for l, points in layers.items():
        norms[l - 1] = next((v for step, v in points if step == first), np.nan)
    return norms


def load_run(
    path: Path | str, root: Path | str | None = None, metric: str = "val/acc", group: str | list[str] | None = None
) -> dict:
    """One table row. Beyond COLUMNS: `message`, `settings` (its config values, flat), `curve`
    ((epochs, values) of `metric`), `gradients` (first_gradients) and, with `group` (a key or a
    list of keys), the group's `values` and label `group`."""
    path = Path(path)
    name = str(path.relative_to(root)) if root is not None else path.name
    overrides = read_overrides(path)
    row = dict.fromkeys(COLUMNS) | {
        "run": path.name if name == "." else name,
        "overrides": " ".join(overrides),
        "message": "",
        "settings": settings(path, overrides),
    }
    recorded = report.read(path)
    if recorded is not None:
        metrics = recorded["metrics"]
        row |= {"status": recorded["status"], "message": recorded.get("message", ""), "time_s": recorded.get("time_s")}
        row |= {key: metrics.get(key) for key in (*FINAL, "epochs")}
        if recorded["status"] != report.COMPLETED:  # NaN logits: argmax says class 0, val/acc ≈ 0.1, no result
            row |= dict.fromkeys(FINAL)
    elif (path / "error.txt").is_file():
        lines = (path / "error.txt").read_text().strip().splitlines()
        row |= {"status": report.FAILED, "message": lines[-1] if lines else ""}
    else:  # still running, or killed before it could write anything
        row["status"] = "incomplete"
    scalars = read_scalars(path)
    val_acc, val_loss = (curve(scalars, tag)[1] for tag in ("val/acc", "val/loss"))
    row["best val/acc"] = float(val_acc.max()) if len(val_acc) else None
    row["best val/loss"] = float(val_loss.min()) if len(val_loss) else None
    row["curve"], row["gradients"] = curve(scalars, metric), first_gradients(scalars)
    if group is not None:
        assign_group(row, [group] if isinstance(group, str) else group)
    return row


def assign_group(row: dict, keys: list[str]) -> None:
    """The row's group: its `values` of the keys and their label `group`."""
    row["values"] = tuple(row["settings"].get(key) for key in keys)
    row["group"] = group_label(row["values"], keys)


def load_runs(
    root: Path | str, group: str | list[str] | None = None, metric: str = "val/acc"
) -> tuple[list[dict], list[str] | None]:
    """(rows, keys): every run below root, labelled by its group of `keys` (group_keys; None:
    one per run). Raises UnknownKey before anything is written."""
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"no runs found under {root}")
    rows = [load_run(p, root, metric) for p in runs]
    keys = group_keys(group, root, [r["settings"] for r in rows])
    for r in rows if keys is not None else []:
        assign_group(r, keys)
    return rows, keys


def run_table(rows: list[dict], keys: list[str] | None) -> tuple[list[str], list[list[str]]]:
    columns = [*COLUMNS[:2], *(keys or []), *COLUMNS[2:]]
    body = []
    for r in rows:
        values = dict(zip(keys or [], r.get("values", ())))
        # A key's value as the config has it (lr 0.01, not 0.0100).
        body.append([str(values[c]) if c in values else cell(r[c], 1 if c == "time_s" else 4) for c in columns])
    return columns, body


def apart_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return list(APART), [[cell(r[c]) for c in APART] for r in rows]


def sections(rows: list[dict], keys: list[str] | None, test: bool = False) -> list[tuple[str, list, list]]:
    """(heading, columns, body) of each table of a summary, printed and written to summary.md alike."""
    finished = [r for r in rows if r["status"] in FINISHED]
    out = [("Finished runs", *run_table(finished, keys))]
    if keys is not None:
        out.append((GROUP_HEADING, *group_table(group_stats(rows), keys)))
        if test:
            out.append((DIFFERENCE_HEADING, *difference_table(differences(rows))))
    diverged = [r for r in rows if r["status"] == report.DIVERGED]
    if diverged:
        out.append(("Diverged: final metrics missing, left out of the means", *apart_table(diverged)))
    unfinished = [r for r in rows if r["status"] not in FINISHED]
    if unfinished:
        out.append(("Not finished: no final metrics, drawn only with --all", *apart_table(unfinished)))
    return out


def write_summary(
    root: Path,
    rows: list[dict],
    keys: list[str] | None,
    metric: str,
    out: Path,
    include_unfinished: bool,
    test: bool,
    figures: bool = True,
) -> list[tuple[str, list, list]]:
    """summary.csv (every run, full precision), summary.md and, with `figures`, the figures;
    returns the tables of summary.md (`sections`)."""
    out.mkdir(parents=True, exist_ok=True)
    columns = run_table(rows, keys)[0] + ["message"]
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            values = dict(zip(keys or [], r.get("values", ())))
            writer.writerow([values[c] if c in values else r.get(c) for c in columns])
    drawn = []
    if figures:
        from dltips.observe.compare_plots import draw  # matplotlib: a second and more to import

        drawn = draw([r for r in rows if include_unfinished or r["status"] in FINISHED], metric, keys, out)
    md, tables = [f"# Runs under {root}"], sections(rows, keys, test)
    for heading, columns, body in tables:
        md += ["", f"## {heading}", "", markdown(columns, body)]
    md += ["", "## Figures"] + [f"\n![{name}]({name})" for name in drawn]
    if not figures:
        md.append(f"\n`dltips-compare {root}` draws the curves (and the gradient flow) into {root / 'compare'}.")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    return tables


def summarize(
    root: Path | str,
    group: str | list[str] | None = None,
    metric: str = "val/acc",
    out: Path | str | None = None,
    include_unfinished: bool = False,
    test: bool = False,
    figures: bool = True,
) -> list[dict]:
    """Load every run below root, grouped by `group` (load_runs: by default what the sweep varies;
    NONE: one row per run); write summary.csv, summary.md and, with `figures`, the figures into
    out (default: root itself, where a sweep keeps its own summary). Failed and incomplete runs
    are drawn only with include_unfinished; test adds the differences between groups."""
    root = Path(root)
    rows, keys = load_runs(root, group, metric)
    out = Path(out) if out is not None else root
    write_summary(root, rows, keys, metric, out, include_unfinished, test, figures)
    return rows


DESCRIPTION = (
    "Compare runs by setting (a run's config values except the seed): a table of every run, each "
    "setting's final metrics as the mean over its runs with a 95% interval, validation curves and "
    "the gradient flow, written to PATH/compare."
)
EPILOG = (
    "Without --group, runs are grouped by the keys the sweep at PATH varies (its sweep.yaml), else by "
    "the keys whose values differ between the runs; seed and data.split_seed never make a group."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dltips-compare", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("path", nargs="?", type=Path, help="a sweep directory, outputs/, or any folder holding runs")
    parser.add_argument(
        "--group",
        help="comma-separated config keys whose values make a setting, e.g. model.activation,optimizer.lr "
        f"('{NONE}': one row per run, no groups)",
    )
    parser.add_argument(
        "--test",
        action="store_true",
        help="A − B of every two settings with its 95%% interval, paired by seed or Welch's",
    )
    parser.add_argument("--metric", default="val/acc", help="validation curve to plot (default: val/acc)")
    parser.add_argument(
        "--out", type=Path, help=f"where to write summary.csv, summary.md and the figures (default: PATH/{OUT})"
    )
    parser.add_argument("--all", action="store_true", help="draw the curves of failed and incomplete runs too")
    parser.add_argument(
        "--diff",
        nargs=2,
        type=Path,
        metavar=("RUN_A", "RUN_B"),
        help="print the config keys (and environment.json entries) that differ between two runs; no PATH",
    )
    args = parser.parse_args(argv)
    if args.diff:
        return print_diff(parser, args)
    if args.path is None:
        parser.error("PATH is required (or --diff RUN_A RUN_B)")
    if not args.path.is_dir():
        return fail(f"no such directory: {args.path}")
    if not find_runs(args.path):
        return fail(f"no runs found under {args.path}")
    try:
        rows, keys = load_runs(args.path, args.group, args.metric)
    except UnknownKey as err:
        return fail(f"error: {err}")
    if args.test and keys is None:
        return fail(f"error: --test compares settings: not with --group {NONE}")
    out = args.out or args.path / OUT
    tables = write_summary(args.path, rows, keys, args.metric, out, args.all, args.test)
    print("\n\n".join(f"{heading}\n{text(columns, body)}" for heading, columns, body in tables))
    written = ["summary.csv", "summary.md", *(name for name in FIGURES if (out / name).is_file())]
    print(f"\nwrote {', '.join(written)} to {out}")
    return 0


def print_diff(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.path is not None:
        parser.error("--diff RUN_A RUN_B takes no PATH")
    for run in args.diff:
        if not run.is_dir():
            return fail(f"no such directory: {run}")
    try:
        print(diff(*args.diff))
    except FileNotFoundError as err:
        return fail(str(err))
    return 0


def fail(message: str) -> int:
    """One line on stderr, exit status 2 (argparse's for a bad command line)."""
    print(f"dltips-compare: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
