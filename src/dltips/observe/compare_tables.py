"""The tables of dltips-compare: each setting's final metrics as the mean over its runs with the
95% t-interval of that mean, the difference of every two settings with its interval (--test),
and how a table is printed and written in Markdown. The maths is dltips.observe.intervals'.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

from dltips.observe.compare_groups import order
from dltips.observe.intervals import LEVEL, mean_ci, paired, welch

FINAL = ("val/acc", "val/loss", "test/acc", "test/loss")
# The final metrics --test compares settings on.
TESTED = ("val/acc", "test/acc")
PAIRED, WELCH = "paired", "Welch"
# Pairing needs an interval: two seeds at least that both settings trained.
MIN_PAIRS = 2


def cell(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def interval(mean: float, low: float, high: float, sign: str = "") -> str:
    """'0.9120 [0.9050, 0.9190]'; the mean alone where there is no interval (one run, NaN)."""
    if math.isnan(mean):
        return "-"
    if math.isnan(low) or math.isnan(high):
        return f"{mean:{sign}.4f}"
    return f"{mean:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"


def groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Group label -> its runs, groups in the order of their values (numbers by size)."""
    out: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: order(r["values"])):
        out.setdefault(r["group"], []).append(r)
    return out


def group_stats(rows: list[dict]) -> list[dict]:
    """Per group, over its runs that have final metrics: `{key} mean` and `{key} ci` (the
    half-width of the 95% t-interval of the mean, 0 for one run) of each final metric; `n` such
    runs of `runs`; `left_out`: how many of the others, per status (diverged, failed, incomplete)."""
    out = []
    for label, members in groups(rows).items():
        done = [r for r in members if r.get("val/acc") is not None]
        left_out = Counter(r["status"] for r in members if r.get("val/acc") is None)
        stats = {"group": label, "values": members[0]["values"], "n": len(done), "runs": len(members)}
        stats["left_out"] = dict(left_out)
        for key in FINAL:
            values = [r[key] for r in done if r[key] is not None]
            stats[f"{key} mean"], stats[f"{key} ci"] = mean_ci(values) if values else (math.nan, math.nan)
        out.append(stats)
    return out


def counted(stats: dict) -> str:
    """'3/5 (2 diverged)': runs with final metrics / all runs of the group, and why the rest lack them."""
    why = ", ".join(f"{n} {status}" for status, n in sorted(stats["left_out"].items()))
    return f"{stats['n']}/{stats['runs']}" + (f" ({why})" if why else "")


def group_table(stats: list[dict], keys: list[str]) -> tuple[list[str], list[list[str]]]:
    columns = [*(keys or ["group"]), "n", "runs", *FINAL]
    body = []
    for s in stats:
        labels = [str(v) for v in s["values"]] if keys else [s["group"]]
        means = [(s[f"{k} mean"], s[f"{k} ci"]) for k in FINAL]
        # One run: no interval, the mean alone.
        cells = [interval(m, m - h, m + h) if s["n"] > 1 else interval(m, math.nan, math.nan) for m, h in means]
        body.append([*labels, str(s["n"]), counted(s), *cells])
    return columns, body


def by_seed(runs: list[dict]) -> dict | None:
    """seed -> run; None where two runs share a seed (another key varies within the group)."""
    seeds = [r["settings"].get("seed") for r in runs]
    return None if None in seeds or len(set(map(str, seeds))) < len(seeds) else dict(zip(map(str, seeds), runs))


def difference(a: list[dict], b: list[dict]) -> dict:
    """A − B over the final metrics of two groups' runs: seed by seed (`paired`) on the seeds both
    trained when they share MIN_PAIRS of them, else Welch's interval over all their runs.
    {"test": PAIRED | WELCH, "n": what it compared, metric: (difference, lower, upper)}."""
    a, b = ([r for r in runs if r.get("val/acc") is not None] for runs in (a, b))
    sa, sb = by_seed(a), by_seed(b)
    common = sorted(sa.keys() & sb.keys(), key=lambda s: order((s,))) if sa and sb else []
    out = {"test": PAIRED if len(common) >= MIN_PAIRS else WELCH}
    if out["test"] == PAIRED:
        out["n"] = f"{len(common)} seeds"
        for key in TESTED:
            pairs = [(sa[s][key], sb[s][key]) for s in common if sa[s][key] is not None and sb[s][key] is not None]
            out[key] = paired(*zip(*pairs)) if pairs else (math.nan,) * 3
        return out
    out["n"] = f"{len(a)} vs {len(b)}"
    for key in TESTED:
        va, vb = ([r[key] for r in runs if r[key] is not None] for runs in (a, b))
        out[key] = welch(va, vb) if va and vb else (math.nan,) * 3
    return out


def differences(rows: list[dict]) -> list[dict]:
    """difference() of every two groups, A before B in the groups' order; `a`, `b`: their labels."""
    runs = groups(rows)
    return [{"a": a, "b": b} | difference(runs[a], runs[b]) for a, b in combinations(runs, 2)]


def difference_table(diffs: list[dict]) -> tuple[list[str], list[list[str]]]:
    columns = ["A", "B", "test", "n", *(f"{key} A − B" for key in TESTED)]
    body = [[d["a"], d["b"], d["test"], d["n"], *(interval(*d[key], sign="+") for key in TESTED)] for d in diffs]
    return columns, body


DIFFERENCE_HEADING = (
    f"Differences between settings, A − B with its {LEVEL:.0%} interval: {PAIRED} by seed on the seeds "
    f"both trained, {WELCH}'s t-interval where they share fewer than {MIN_PAIRS}; an interval "
    "without 0 says the settings differ"
)
GROUP_HEADING = (
    f"Final metrics per setting: mean over its runs [{LEVEL:.0%} t-interval of the mean], n runs with "
    "final metrics; runs without them left out"
)


def text(columns: list[str], body: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(columns, *body)]
    lines = [columns, ["-" * w for w in widths], *body]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in lines)


def markdown(columns: list[str], body: list[list[str]]) -> str:
    lines = [columns, ["---"] * len(columns), *body]
    return "\n".join("| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in lines)
