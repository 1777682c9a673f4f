"""Compare finished runs: one table row per run, mean ± std per group, validation curves.

    dltips-compare outputs/sweeps/2026-11-28_10-00-00 --group model.activation

reads only what each run wrote (metrics.json, config.yaml, .hydra/overrides.yaml, TensorBoard
events) and writes summary.csv, summary.md and curves.png next to them (or into --out).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import re
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from omegaconf import OmegaConf

from dltips.tags import EPOCH, old_name

FINAL = ("val/acc", "val/loss", "test/acc", "test/loss")
COLUMNS = ("run", "overrides", "status", *FINAL, "best val/acc", "best val/loss", "epochs", "time_s")
# Sample standard deviation over the runs of a group (seeds are a sample of possible runs).
DDOF = 1
# Hydra names single runs "<date>_<time>_<override_dirname>" (configs/hydra/default.yaml).
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_?")


def is_run(path: Path) -> bool:
    return (
        (path / "metrics.json").is_file()
        or (path / ".hydra").is_dir()
        or any(path.glob("events.out.tfevents.*"))
    )


def find_runs(root: Path | str) -> list[Path]:
    """Every run directory at or below root, sorted; a run's own subfolders are not searched."""
    root = Path(root)
    members = sorted(p for p in root.glob("member_*") if is_run(p))
    if members:  # a trainer.ensemble=K run: its members are the runs to compare
        return members
    if is_run(root):
        return [root]
    runs = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        runs += find_runs(child)
    return runs


def parse_overrides(name: str) -> list[str]:
    """'k=v,k2=v2' (Hydra's override_dirname) -> ['k=v', 'k2=v2']; a comma starts a new
    override only where a 'key=' follows, so list values like 'x=[1,2]' stay whole."""
    name = TIMESTAMP.sub("", name)
    return [item for item in re.split(r",(?=[\w.+~/-]+=)", name) if "=" in item]


def read_overrides(path: Path) -> list[str]:
    if path.name.startswith("member_") and (path / "config.yaml").is_file():
        # An ensemble member: its ensemble's overrides, with its own seed in place of the ensemble's.
        seed = OmegaConf.load(path / "config.yaml").seed
        return [item for item in read_overrides(path.parent) if not item.startswith("seed=")] + [f"seed={seed}"]
    file = path / ".hydra" / "overrides.yaml"
    if file.is_file():
        return [str(item) for item in OmegaConf.load(file)]
    return parse_overrides(path.name)


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] over all event files directly in the run directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # its INFO lines say nothing useful here

    if not any(path.glob("events.out.tfevents.*")):
        return {}
    # 0 keeps every scalar (the default samples 10 000); histograms and images are not needed.
    events = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 1, "images": 1, "tensors": 1})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def curve(scalars: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The metric against the epoch: the loop logs `epoch` at the same steps as val/*."""
    points = scalars.get(metric, [])
    epoch_at = {step: value for step, value in scalars.get(EPOCH) or scalars.get(old_name(EPOCH), [])}
    # Without `epoch` scalars (older runs) the i-th value is taken to be epoch i.
    epochs = [epoch_at.get(step, i) for i, (step, _) in enumerate(points)]
    return np.array(epochs, dtype=float), np.array([v for _, v in points], dtype=float)


def select(cfg, key: str, overrides: list[str]):
    """A config value, from config.yaml if the run wrote one, else from its overrides."""
    if cfg is not None:
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if value is not None:
            return value
    for item in overrides:
        k, _, v = item.lstrip("+~").partition("=")
        if k == key:
            return v
    return None


def load_run(path: Path | str, root: Path | str | None = None, metric: str = "val/acc", group: str | None = None) -> dict:
    """One table row. Beyond COLUMNS: `message`, `group` (the value of the group key) and
    `curve` ((epochs, values) of `metric`) for plotting."""
    path = Path(path)
    name = str(path.relative_to(root)) if root is not None else path.name
    overrides = read_overrides(path)
    row = dict.fromkeys(COLUMNS) | {"run": path.name if name == "." else name, "overrides": " ".join(overrides), "message": ""}
    if (path / "metrics.json").is_file():
        report = json.loads((path / "metrics.json").read_text())
        metrics = report["metrics"]
        row |= {"status": report["status"], "message": report.get("message", ""), "time_s": report.get("time_s")}
        row |= {key: metrics.get(key) for key in (*FINAL, "epochs")}
    elif (path / "error.txt").is_file():
        lines = (path / "error.txt").read_text().strip().splitlines()
        row |= {"status": "failed", "message": lines[-1] if lines else ""}
    else:  # still running, or killed before it could write anything
        row["status"] = "incomplete"
    scalars = read_scalars(path)
    val_acc, val_loss = [v for _, v in scalars.get("val/acc", [])], [v for _, v in scalars.get("val/loss", [])]
    row["best val/acc"] = max(val_acc) if val_acc else None
    row["best val/loss"] = min(val_loss) if val_loss else None
    row["curve"] = curve(scalars, metric)
    if group is not None:
        cfg = OmegaConf.load(path / "config.yaml") if (path / "config.yaml").is_file() else None
        row["group"] = str(select(cfg, group, overrides))
    return row


def group_stats(rows: list[dict]) -> list[dict]:
    """Mean and std (ddof=DDOF) of the final metrics over the runs of each group that have them."""
    out = []
    for label in sorted({r["group"] for r in rows}):
        done = [r for r in rows if r["group"] == label and r.get("val/acc") is not None]
        stats = {"group": label, "n": len(done), "runs": sum(r["group"] == label for r in rows)}
        for key in FINAL:
            values = np.array([r[key] for r in done], dtype=float)
            stats[f"{key} mean"] = float(values.mean()) if len(values) else math.nan
            # One run gives no spread estimate: nan, shown as the mean alone.
            stats[f"{key} std"] = float(values.std(ddof=DDOF)) if len(values) > DDOF else math.nan
        out.append(stats)
    return out


def cell(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def pm(mean: float, std: float) -> str:
    return cell(mean) if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def run_table(rows: list[dict], group: str | None) -> tuple[list[str], list[list[str]]]:
    columns = list(COLUMNS)
    if group:
        columns.insert(2, group)
    return columns, [[cell(r["group"] if c == group else r[c], 1 if c == "time_s" else 4) for c in columns] for r in rows]


def group_table(stats: list[dict], group: str) -> tuple[list[str], list[list[str]]]:
    columns = [group, "runs", *FINAL]
    body = [[s["group"], f"{s['n']}/{s['runs']}"] + [pm(s[f"{k} mean"], s[f"{k} std"]) for k in FINAL] for s in stats]
    return columns, body


def text(columns: list[str], body: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(columns, *body)]
    lines = [columns, ["-" * w for w in widths], *body]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in lines)


def markdown(columns: list[str], body: list[list[str]]) -> str:
    lines = [columns, ["---"] * len(columns), *body]
    return "\n".join("| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in lines)


def plot(rows: list[dict], metric: str, path: Path, grouped: bool) -> None:
    """The metric against the epoch: mean ± std band per group, or one line per run."""
    # A bare Figure renders with Agg and leaves pyplot's global state (and backend) alone.
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    series = {}
    for r in rows:
        if len(r["curve"][0]):
            series.setdefault(r["group"] if grouped else r["run"], []).append(r["curve"])
    for label, curves in series.items():
        epochs = np.unique(np.concatenate([e for e, _ in curves]))
        # Runs may stop at different epochs (early stopping): each epoch averages the runs that reached it.
        at = [[v[e == x][-1] for e, v in curves if (e == x).any()] for x in epochs]
        mean = np.array([np.mean(a) for a in at])
        std = np.array([np.std(a, ddof=DDOF) if len(a) > DDOF else 0.0 for a in at])
        (line,) = ax.plot(epochs, mean, marker="o", markersize=3, label=f"{label} (n={len(curves)})" if grouped else label)
        if grouped and len(curves) > 1:
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean ± std over runs" if grouped else metric)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=120)


def summarize(root: Path | str, group: str | None = None, metric: str = "val/acc", out: Path | str | None = None) -> list[dict]:
    """Load every run below root; write summary.csv, summary.md and curves.png into out (default root)."""
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"no runs found under {root}")
    rows = [load_run(p, root, metric, group) for p in runs]
    out = Path(out) if out is not None else root
    out.mkdir(parents=True, exist_ok=True)

    columns = run_table(rows, group)[0] + ["message"]
    with open(out / "summary.csv", "w", newline="") as f:  # raw numbers, full precision
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([r["group"] if c == group else r.get(c) for c in columns] for r in rows)
    md = [f"# Runs under {root}", "", markdown(*run_table(rows, group))]
    if group:
        md += ["", f"## Final metrics, mean ± std (ddof={DDOF}) over runs per {group}", ""]
        md += [markdown(*group_table(group_stats(rows), group))]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    plot(rows, metric, out / "curves.png", grouped=group is not None)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dltips-compare", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a sweep directory, outputs/, or any folder holding runs")
    parser.add_argument("--group", help="config key whose value groups the runs, e.g. model.activation")
    parser.add_argument("--metric", default="val/acc", help="validation curve to plot (default: val/acc)")
    parser.add_argument("--out", type=Path, help="where to write summary.csv, summary.md, curves.png (default: PATH)")
    args = parser.parse_args(argv)
    if not args.path.is_dir():
        print(f"dltips-compare: no such directory: {args.path}", file=sys.stderr)
        return 2
    if not find_runs(args.path):
        print(f"dltips-compare: no runs found under {args.path}", file=sys.stderr)
        return 2
    rows = summarize(args.path, args.group, args.metric, args.out)
    print(text(*run_table(rows, args.group)))
    if args.group:
        print(f"\nmean ± std (ddof={DDOF}) over runs per {args.group}")
        print(text(*group_table(group_stats(rows), args.group)))
    print(f"\nwrote summary.csv, summary.md, curves.png to {args.out or args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
