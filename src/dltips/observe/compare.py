"""Compare finished runs: one table row per run, mean ± std per group, validation curves and
the runs' gradient flow.

    dltips-compare outputs/sweeps/2026-11-28_10-00-00 --group model.activation

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
from collections import Counter
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from dltips.observe.compare_plots import DDOF, curves_figure, gradient_flow_figure
from dltips.observe.tags import EPOCH, GRADIENTS, old_name, per_layer
from dltips.run import report

FINAL = ("val/acc", "val/loss", "test/acc", "test/loss")
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
# Hydra names single runs "<date>_<time>_<override_dirname>" (configs/hydra/default.yaml).
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_?")


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

    # Its INFO lines say nothing useful here, and its warning "Detected out of order event.step"
    # is the purge a resumed run writes on purpose (steps its killed attempt logged after its last
    # checkpoint are dropped): the summary reads them as TensorBoard shows them.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)

    if not any(path.glob("events.out.tfevents.*")):
        return {}
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


def select(cfg, key: str, overrides: list[str]):
    """A config value, from config.yaml if the run wrote one, else from its overrides."""
    value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False) if cfg is not None else None
    # A config group (optimizer=adam) is a whole node in config.yaml: its name is in the overrides.
    if value is not None and not OmegaConf.is_config(value):
        return value
    for item in overrides:
        k, _, v = item.lstrip("+~").partition("=")
        if k == key:
            return v
    return value


def load_run(
    path: Path | str, root: Path | str | None = None, metric: str = "val/acc", group: str | None = None
) -> dict:
    """One table row. Beyond COLUMNS: `message`, `group` (the value of the group key), `curve`
    ((epochs, values) of `metric`) and `gradients` (first_gradients) for plotting."""
    path = Path(path)
    name = str(path.relative_to(root)) if root is not None else path.name
    overrides = read_overrides(path)
    row = dict.fromkeys(COLUMNS) | {
        "run": path.name if name == "." else name,
        "overrides": " ".join(overrides),
        "message": "",
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
        cfg = OmegaConf.load(path / "config.yaml") if (path / "config.yaml").is_file() else None
        row["group"] = str(select(cfg, group, overrides))
    return row


def group_stats(rows: list[dict]) -> list[dict]:
    """Mean and std (ddof=DDOF) of the final metrics over the runs of each group that have them;
    `left_out`: how many of the others, per status (diverged, failed, incomplete)."""
    out = []
    for label in sorted({r["group"] for r in rows}):
        members = [r for r in rows if r["group"] == label]
        done = [r for r in members if r.get("val/acc") is not None]
        left_out = Counter(r["status"] for r in members if r.get("val/acc") is None)
        stats = {"group": label, "n": len(done), "runs": len(members), "left_out": dict(left_out)}
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
    return columns, [
        [cell(r["group"] if c == group else r[c], 1 if c == "time_s" else 4) for c in columns] for r in rows
    ]


def counted(stats: dict) -> str:
    """'3/5 (2 diverged)': runs with final metrics / all runs of the group, and why the rest lack them."""
    why = ", ".join(f"{n} {status}" for status, n in sorted(stats["left_out"].items()))
    return f"{stats['n']}/{stats['runs']}" + (f" ({why})" if why else "")


def group_table(stats: list[dict], group: str) -> tuple[list[str], list[list[str]]]:
    columns = [group, "runs", *FINAL]
    body = [[s["group"], counted(s)] + [pm(s[f"{k} mean"], s[f"{k} std"]) for k in FINAL] for s in stats]
    return columns, body


def apart_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return list(APART), [[cell(r[c]) for c in APART] for r in rows]


def sections(rows: list[dict], group: str | None) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, columns, body) of each table of a summary, printed and written to summary.md alike."""
    finished = [r for r in rows if r["status"] in FINISHED]
    out = [("Finished runs", *run_table(finished, group))]
    if group:
        heading = f"Final metrics, mean ± std (ddof={DDOF}) over runs per {group}; runs without final metrics left out"
        out.append((heading, *group_table(group_stats(rows), group)))
    diverged = [r for r in rows if r["status"] == report.DIVERGED]
    if diverged:
        out.append(("Diverged: final metrics missing, left out of the means", *apart_table(diverged)))
    unfinished = [r for r in rows if r["status"] not in FINISHED]
    if unfinished:
        out.append(("Not finished: no final metrics, drawn only with --all", *apart_table(unfinished)))
    return out


def text(columns: list[str], body: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(columns, *body)]
    lines = [columns, ["-" * w for w in widths], *body]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in lines)


def markdown(columns: list[str], body: list[list[str]]) -> str:
    lines = [columns, ["---"] * len(columns), *body]
    return "\n".join("| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in lines)


def draw(rows: list[dict], metric: str, group: str | None, out: Path) -> list[str]:
    """curves.png, and gradient_flow.png when some run logged per-layer gradient norms: one line
    per group (--group) or per run. Returns the names of the figures written."""
    label = (lambda r: r["group"]) if group else (lambda r: r["run"])
    curves, norms = {}, {}
    for r in sorted(rows, key=label) if group else rows:
        if len(r["curve"][0]):
            curves.setdefault(label(r), []).append(r["curve"])
        if r["gradients"] is not None:
            norms.setdefault(label(r), []).append(r["gradients"])
    title = f"{metric}: mean ± std over runs, per {group}" if group else f"{metric} per run"
    curves_figure(curves, metric, title, grouped=bool(group)).savefig(out / "curves.png", dpi=120)
    flow = out / "gradient_flow.png"
    if not norms:
        flow.unlink(missing_ok=True)  # one from an earlier comparison would not belong to this summary
        return ["curves.png"]
    title = "Gradient flow at the first logged step, " + (f"geometric mean per {group}" if group else "per run")
    gradient_flow_figure(norms, title, grouped=bool(group)).savefig(flow, dpi=120)
    return ["curves.png", flow.name]


def summarize(
    root: Path | str,
    group: str | None = None,
    metric: str = "val/acc",
    out: Path | str | None = None,
    include_unfinished: bool = False,
) -> list[dict]:
    """Load every run below root; write summary.csv, summary.md and the figures into out (default:
    root itself, where a sweep keeps its own summary). Failed and incomplete runs are drawn only
    with include_unfinished."""
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"no runs found under {root}")
    rows = [load_run(p, root, metric, group) for p in runs]
    out = Path(out) if out is not None else root
    out.mkdir(parents=True, exist_ok=True)

    columns = run_table(rows, group)[0] + ["message"]
    with open(out / "summary.csv", "w", newline="") as f:  # raw numbers, full precision; every run
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([r["group"] if c == group else r.get(c) for c in columns] for r in rows)
    figures = draw([r for r in rows if include_unfinished or r["status"] in FINISHED], metric, group, out)
    md = [f"# Runs under {root}"]
    for heading, columns, body in sections(rows, group):
        md += ["", f"## {heading}", "", markdown(columns, body)]
    md += ["", "## Figures"] + [f"\n![{name}]({name})" for name in figures]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dltips-compare", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a sweep directory, outputs/, or any folder holding runs")
    parser.add_argument("--group", help="config key whose value groups the runs, e.g. model.activation")
    parser.add_argument("--metric", default="val/acc", help="validation curve to plot (default: val/acc)")
    parser.add_argument(
        "--out", type=Path, help=f"where to write summary.csv, summary.md and the figures (default: PATH/{OUT})"
    )
    parser.add_argument("--all", action="store_true", help="draw the curves of failed and incomplete runs too")
    args = parser.parse_args(argv)
    if not args.path.is_dir():
        print(f"dltips-compare: no such directory: {args.path}", file=sys.stderr)
        return 2
    if not find_runs(args.path):
        print(f"dltips-compare: no runs found under {args.path}", file=sys.stderr)
        return 2
    out = args.out or args.path / OUT
    rows = summarize(args.path, args.group, args.metric, out, include_unfinished=args.all)
    print("\n\n".join(f"{heading}\n{text(columns, body)}" for heading, columns, body in sections(rows, args.group)))
    written = ["summary.csv", "summary.md", *(name for name in FIGURES if (out / name).is_file())]
    print(f"\nwrote {', '.join(written)} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
