"""BENCH.md's tables, one function per section: per step, stacked seeds, sweeps, the K curve and
the 1,024-point sweep."""

from __future__ import annotations

import re
import statistics

from .loops import LABELS
from .sweeps import PHASES, STAGES


def paired(runs: dict[str, list[dict]], fast: str, slow: str, key: str = "steady_s") -> tuple[float, float, float]:
    """How many times faster `fast` steps than `slow`: the median (min, max) over repeats of
    t_slow / t_fast, each pair from the same repeat, so machine noise hits both alike."""
    ratios = [b[key] / a[key] for a, b in zip(runs[fast], runs[slow])]
    return statistics.median(ratios), min(ratios), max(ratios)


def setting(e: dict) -> str:
    return f" ({' '.join(e['overrides'])})" if e["overrides"] else ""


def seeds_table(e: dict) -> list[str]:
    """Whole runs and single optimizer steps: K runs one after another against one K-member run."""
    k, runs = e["k"], e["runs"]
    med = {v: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for v, rs in runs.items()}
    per_member = {"sequential": med["sequential"]["step_s"], "stacked": med["stacked"]["step_s"] / k}
    lines = [
        f"### {' '.join(e['overrides']) or 'Defaults'}",
        "",
        f"{e['name']}; {e['steps_per_epoch']} steps per epoch; median of {len(runs['stacked'])} interleaved pair(s). "
        f"Whole `train(cfg)` calls: data, per-epoch evaluation, logging and checkpoints included.",
        "",
        "| variant | wall s | vs sequential | CPU s | vs sequential "
        "| µs per optimizer step | µs per member-step | vs sequential |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v, label in (("sequential", f"{k} runs one after another"), ("stacked", f"trainer.seeds={k}")):
        lines.append(
            f"| {label} | {med[v]['wall_s']:.1f} | {paired(runs, v, 'sequential', 'wall_s')[0]:.2f}× "
            f"| {med[v]['cpu_s']:.1f} | {paired(runs, v, 'sequential', 'cpu_s')[0]:.2f}× "
            f"| {med[v]['step_s'] * 1e6:,.0f} | {per_member[v] * 1e6:,.0f} "
            f"| {per_member['sequential'] / per_member[v]:.2f}× |"
        )
    return [*lines, ""]


def sweep_table(w: dict) -> list[str]:
    """Whole sweeps, launch to exit, by launcher."""
    runs, n = w["runs"], w["points"]
    loads = [r["load"] for rs in runs.values() for r in rs if r.get("load") is not None]
    same = w["max_val_acc_difference"]
    lines = [
        f"### {w['key']}: {w['name']}",
        "",
        f"`{w['command']}`, with and without `hydra/launcher=stacked`; median of {len(runs['stacked'])} interleaved "
        f"pair(s)"
        + (f", 1-minute load average {min(loads):.1f}–{max(loads):.1f} as each sweep ended" if loads else "")
        + ". "
        + (
            "Every job's val/acc is the same with both launchers."
            if same == 0
            else f"{w.get('equal_jobs', '?')} of {n} jobs end with the same val/acc with both launchers; the largest "
            f"difference is {same:.2g} (a batched matmul rounds differently from a plain one: ~1e-7 a step, which a "
            "long run at a high learning rate can grow)."
        ),
        "",
        "| launcher | wall s | min–max | vs basic | CPU s | vs basic | wall s per job | set-up, ms per job | "
        + " | ".join(f"{p}, s" for p in PHASES)
        + " | torch threads |",
        "|---|" + "---:|" * (7 + len(PHASES)) + "---|",
    ]
    for v in ("basic", "stacked"):
        wall = [r["wall_s"] for r in runs[v]]
        cpu = statistics.median(r["cpu_s"] for r in runs[v])
        timed = [r["phases"] for r in runs[v] if r.get("phases")]
        split = [f"{statistics.median(t[p] for t in timed):.1f}" if timed else "–" for p in PHASES]
        per_job = set_up_per_job(runs[v])
        lines.append(
            f"| {v} | {statistics.median(wall):.1f} | {min(wall):.1f}–{max(wall):.1f} "
            f"| {paired(runs, v, 'basic', 'wall_s')[0]:.2f}× | {cpu:.1f} | {paired(runs, v, 'basic', 'cpu_s')[0]:.2f}× "
            f"| {statistics.median(wall) / n:.2f} | {f'{statistics.median(per_job) * 1e3:.1f}' if per_job else '–'} | "
            + " | ".join(split)
            + f" | {threads_text(runs[v])} |"
        )
    return [*lines, ""]


def threads_text(runs: list[dict]) -> str:
    """The torch threads a launcher's jobs trained on: 1 (trainer.threads=auto's start for these
    networks) unless their steps measured another count faster (dltips.engine.threads)."""
    switched = sorted({n for r in runs for n in r.get("threads", [])})
    return "1" if not switched else ", ".join(map(str, switched)) + " (measured faster than 1)"


def set_up_per_job(runs: list[dict]) -> list[float]:
    """The stacked launcher's set-up seconds per job of each run whose log shows it."""
    return [r["set_up_s_per_job"] for r in runs if r.get("set_up_s_per_job") is not None]


def members_table(e: dict, gemm: float) -> list[str]:
    """The K curve: one optimizer step of a K-member stack, per member, against the floor."""
    rows, flops = e["rows"], e["flops_per_member_step"]
    floor = flops / gemm
    one = next((r["step_s"] for r in rows if r["k"] == 1), None)
    lines = [
        f"{e['name']}, {e['steps_per_epoch']} steps per epoch, on {e['device']}; one `train(cfg)` with "
        f"`trainer.seeds=K` per row. Floor: {flops / 1e6:.2f} MFLOP per member-step ÷ {gemm / 1e9:.1f} GFLOP/s "
        f"= {floor * 1e6:.0f} µs.",
        "",
        "| K | epochs | µs per optimizer step | µs per member-step | vs K=1 | CPU µs per member-step "
        "| share of the floor | to the first step, s | whole run, s |",
        "|---:|" + "---:|" * 8,
    ]
    for r in rows:
        k, member = r["k"], r["step_s"] / r["k"]
        lines.append(
            f"| {k:,} | {r['epochs']} | {r['step_s'] * 1e6:,.0f} | {member * 1e6:,.0f} "
            f"| {f'{one / member:.2f}×' if one else '–'} | {r['cpu_step_s'] / k * 1e6:,.0f} "
            f"| {100 * floor / member:.1f}% | {r['setup_s']:.2f} | {r['wall_s']:.1f} |"
        )
    return [*lines, ""]


def sweep1024_table(e: dict, sweeps: list[dict]) -> list[str]:
    """The whole sweep with the stacked launcher, and the basic launcher's estimated time."""
    run, n = e["run"], e["points"]
    stages = run.get("stages") or {}
    per_job = run.get("set_up_s_per_job")
    statuses = ", ".join(f"{count:,} {status}" for status, count in sorted(e["statuses"].items()))
    lines = [
        f"### {e['key']}: {e['name']}",
        "",
        f"`{e['command']}`, run once: {statuses}.",
        "",
        "| launcher | wall s | jobs per second | CPU s | "
        + " | ".join(f"{p}, s" for p in STAGES)
        + " | set-up, ms per job |",
        "|---|" + "---:|" * (4 + len(STAGES)),
        f"| stacked | {run['wall_s']:.1f} | {n / run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
        + " | ".join(f"{stages[p]:.1f}" if p in stages else "–" for p in STAGES)
        + f" | {f'{per_job * 1e3:.1f}' if per_job is not None else '–'} |",
    ]
    basic = next((w for w in sweeps if w["key"] == e["estimated_from"]), None)
    if basic:
        per = statistics.median(r["wall_s"] for r in basic["runs"]["basic"]) / basic["points"]
        lines.append(
            f"| basic, estimated: {n:,} × {per:.2f} s | {n * per:.0f} | {1 / per:.1f} | |" + " |" * len(STAGES) + " |"
        )
    if basic:
        there, here = epochs(basic["command"]), epochs(e["command"])
        note = (
            f"*basic, estimated*: not run, {n:,} jobs × the basic launcher's wall seconds per job in the "
            f"{e['estimated_from']}"
            + (
                f" ({there} epochs a job, these train {here}: an upper bound)"
                if there and here and there > here
                else ""
            )
            + "."
        )
    else:
        note = f"The basic launcher is not run; its estimate needs the {e['estimated_from']} (the sweeps part)."
    return [*lines, "", note, ""]


def epochs(command: str) -> int | None:
    """trainer.max_epochs on a command line, None where it is not set there."""
    found = re.search(r"trainer\.max_epochs=(\d+)", command)
    return int(found.group(1)) if found else None


def workload_table(w: dict, gemm: float) -> list[str]:
    lines = [
        f"### {w['name']}",
        "",
        f"{w['n_train']} training samples, {w['steps_per_epoch']} steps per epoch, {w['epochs']} epochs per run "
        f"(the first is warm-up), {w['repeats']} repeats, {w['flops_per_sample'] * w['batch_size'] / 1e6:.2f} MFLOP "
        "per full step.",
        "",
        "| variant | µs/step | min–max | steps/s vs (b) | CPU µs/step | vs (b) | samples/s | % of GEMM peak "
        "| µs/step incl. per-epoch work | vs (b) | CPU, incl. per-epoch | vs (b) | run setup, s |",
        "|---|" + "---:|" * 12,
    ]
    runs = w["runs"]
    for v, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        steady = [r["steady_s"] * 1e6 for r in rs]
        cells = [f"{med['steady_s'] * 1e6:,.0f}", f"{min(steady):,.0f}–{max(steady):,.0f}"]
        for key in ("steady_s", "cpu_steady_s", "all_in_s", "cpu_all_in_s"):
            if key != "steady_s":
                cells.append(f"{med[key] * 1e6:,.0f}")
            cells.append(f"{paired(runs, v, 'hand', key)[0]:.2f}×" if "hand" in runs else "–")
            if key == "cpu_steady_s":
                cells += [
                    f"{med['samples_per_s']:,.0f}",
                    f"{100 * w['flops_per_sample'] * med['samples_per_s'] / gemm:.2f}%",
                ]
        lines.append(f"| {LABELS[v]} | " + " | ".join([*cells, f"{med['setup_s']:.2f}"]) + " |")
    for v, why in w["skipped"].items():
        lines.append(f"| {LABELS[v]} | skipped: {why} |" + " |" * 11)
    spread = max(max(r["steady_s"] for r in rs) / min(r["steady_s"] for r in rs) for rs in runs.values())
    if spread > 1.5:
        lines += [
            "",
            f"Noisy: one variant's slowest repeat took {spread:.1f}× its fastest (wall clock); the CPU-time columns "
            "are steadier.",
        ]
    return [*lines, ""]
