"""The bench the lecture's studies run on: runs over seeds, curves, tables, figures, the report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from dltips.config.validate import compose_train
from dltips.engine.loop import train_networks
from dltips.engine.members import HydraContext
from dltips.engine.seeds import member_dir, seed_configs
from dltips.observe.compare import read_scalars
from dltips.observe.intervals import mean_ci, paired, t_critical
from dltips.run import report
from dltips.train import prepare


@dataclass
class Run:
    metrics: dict[str, float]
    scalars: dict[str, list[tuple[int, float]]]
    path: Path


@dataclass
class Section:
    title: str
    claim: str
    rule: str  # the verdict rule, and the result that would have made the claim fail
    held: bool
    headline: str  # the one number that decided it
    table: str  # Markdown
    figure: str  # file name under figures/; "" where the section before shows it
    data: str = "digits"  # the data set the claim was measured on
    published: str = "—"  # published numbers only; an outside or earlier check goes in notes
    notes: list[str] = field(default_factory=list)
    held_out: tuple[str, int] | None = None  # ("test", rows): the set the headline's intervals are measured on
    history: list[str] = field(default_factory=list)  # what changed after a first result, and why


@dataclass
class Lab:
    """Where runs go and how big they are; `run` trains one variant over the seeds."""

    root: Path
    quick: bool
    seeds: int
    runs_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.runs_dir = self.root / "runs" / time.strftime("%Y-%m-%d_%H-%M-%S")
        (self.root / "figures").mkdir(parents=True, exist_ok=True)

    def epochs(self, full: int) -> int:
        return max(2, full // 2) if self.quick else full

    def run(
        self, study: str, name: str, overrides: list[str], seeds: int | None = None, shared_split: bool = False
    ) -> list[Run]:
        """Seeds 0 … n−1 of one variant, trained together as one stack, each member equal to its
        seed trained alone. Each seed draws its own split (data.split_seed = seed), so that the
        spread over seeds holds the split's noise as well as the initialization's; `shared_split`:
        every seed on split 0, for networks whose predictions are averaged on one test set."""
        n, out = seeds or self.seeds, self.runs_dir / study / name
        cfg = prepare(compose_train([*overrides, "trainer.progress=log", "seed=0", f"trainer.seeds={n}"], out))
        members = seed_configs(cfg) if n > 1 else [cfg]  # seeds 0 … n−1, each in its member_<k>/
        for member in members:
            member.data.split_seed = 0 if shared_split else member.seed
        train_networks(members, [HydraContext()] * n, root=cfg if n > 1 else None)
        paths = [member_dir(out, k) for k in range(n)] if n > 1 else [out]
        runs = [Run(report.read(p)["metrics"], read_scalars(p), p) for p in paths]
        test = [r.metrics.get("test/acc") for r in runs]  # None where a run diverged
        print(f"  {study}/{name}: test/acc {fmt([np.nan if t is None else t for t in test])}", flush=True)
        return runs

    def figure(self, fig: Figure, name: str) -> str:
        """Save under figures/ (the figure brings its own layout); returns the file name."""
        fig.savefig(self.root / "figures" / name, dpi=110)
        return name


def sample(n: int, k: int, seed: int) -> torch.Tensor:
    """k of a split's n rows drawn at random (seeded): never its first k, since a split lists its
    rows in the order of the file, and some files (mnist5k) are sorted by class."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]


def default_root(quick: bool) -> Path:
    """Where a reproduction writes: a quick one never over the full report."""
    return Path("outputs/lecture-quick" if quick else "outputs/lecture")


def mean_std(values) -> tuple[float, float]:
    values = np.asarray(list(values), dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def fmt(values, digits: int = 3) -> str:
    """mean ± half-width of the 95% t-interval over seeds."""
    m, h = mean_ci(values)
    return f"{m:.{digits}f} ± {h:.{digits}f}"


def fmt_paired(a, b, digits: int = 3) -> str:
    m, low, high = paired(a, b)
    return f"{m:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def series(runs: list[Run], tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-epoch curve of `tag` over a variant's seeds: (epoch, mean, std)."""
    curves = [np.array([v for _, v in r.scalars[tag]]) for r in runs]
    n = min(len(c) for c in curves)
    stacked = np.stack([c[:n] for c in curves])
    std = stacked.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(n)
    return np.arange(n), stacked.mean(axis=0), std


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def verdict(held: bool, quick: bool) -> str:
    """A claim's verdict; a quick run's is marked: its two seeds' intervals are too wide to decide."""
    return ("held" if held else "did not hold") + (" (quick run: not evidence)" if quick else "")


def quick_warning(seeds: int) -> str:
    t = t_critical(seeds) if seeds > 1 else float("inf")
    return (
        f"**A quick run: {seeds} seed(s) per variant and shorter training. The 95% t-interval of a "
        f"mean over {seeds} seeds is ±{t:.1f} standard errors wide, so a verdict below can flip "
        "with the next seed: it checks that the studies run, it is not evidence. The report is "
        "`scripts/reproduce_lecture.py` without `--quick`.**"
    )


SMALL = 500  # a held-out set under this many rows is named beside its interval


def held_out_note(held_out: tuple[str, int] | None) -> str:
    """Beside an interval measured on a small held-out set: how coarse its accuracy is."""
    if held_out is None or held_out[1] >= SMALL:
        return ""
    name, rows = held_out
    return f" *({name} set of {rows} rows, under {SMALL}: one row is {1 / rows:.3f} of accuracy)*"


def write_report(
    lab: Lab, sections: list[Section], seconds: float, times: dict[str, float] | None = None, workers: int = 1
) -> Path:
    """REPORT.md; `times`: each study's own seconds, `workers`: how many ran side by side."""
    held = sum(s.held for s in sections)
    spent = ", ".join(f"{name} {t / 60:.1f}" for name, t in (times or {}).items())
    lines = [
        "# The lecture, reproduced",
        "",
        f"`uv run python scripts/reproduce_lecture.py{' --quick' if lab.quick else ''}` — "
        f"{len(sections)} claims, {held} held, {len(sections) - held} did not; "
        f"{lab.seeds} seed(s) per variant; {seconds / 60:.1f} min"
        f"{f' ({workers} studies at a time, one torch thread each)' if workers > 1 else ''}.",
        *([f"Minutes per study: {spent}."] if spent else []),
        f"TensorBoard: `uv run tensorboard --logdir {lab.runs_dir}`",
        *(["", quick_warning(lab.seeds)] if lab.quick else []),
        "",
        "Numbers are the mean over seeds ± the half-width of its 95% t-interval; a difference "
        "[in brackets] is taken seed by seed (same seed: same data split and, where the variants "
        "share an architecture, the same initial weights) with its 95% t-interval. Each seed draws "
        "its own train/validation/test split (data.split_seed = seed), so the intervals hold the "
        "split's noise as well as the initialization's; where the set an interval is measured on "
        f"has under {SMALL} rows, the interval says so. Each rule is written in the code (lecture/) "
        "together with the result that would have made it fail, and applied to the numbers as "
        "they come. The rules are not pre-registered: where a claim's data, rule or setting "
        "changed after a first result, its section says what changed and why (**History.**). "
        "The published column holds published numbers only; an outside check is a note.",
        "",
        table(
            ["claim", "data set", "ours (95% CI)", "published", "verdict"],
            [
                [
                    s.title,
                    s.data,
                    s.headline + held_out_note(s.held_out),
                    s.published,
                    verdict(s.held, lab.quick) if s.held else f"**{verdict(s.held, lab.quick)}**",
                ]
                for s in sections
            ],
        ),
    ]
    for s in sections:
        lines += [
            "",
            f"## {s.title}",
            "",
            f"**Claim.** {s.claim}",
            "",
            f"**Rule.** {s.rule}",
            "",
            f"**Data.** {s.data}. **Published.** {s.published}",
            "",
            f"**Verdict: {verdict(s.held, lab.quick)}** — {s.headline}{held_out_note(s.held_out)}",
            "",
            *([f"**History.** {' '.join(s.history)}", ""] if s.history else []),
            s.table,
            *(["", f"![{s.title}](figures/{s.figure})"] if s.figure else []),  # a chain's later steps share its first's
        ]
        lines += [""] + [f"- {note}" for note in s.notes] if s.notes else []
    path = lab.root / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path
