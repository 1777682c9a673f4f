"""BENCH.md from the raw report: targets, per-step tables, stacked seeds, sweeps, startup, method."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .loops import LABELS
from .startup import STARTUP_MARKS
from .sweeps import PHASES


def paired(runs: dict[str, list[dict]], fast: str, slow: str, key: str = "steady_s") -> tuple[float, float, float]:
    """How many times faster `fast` steps than `slow`: the median (min, max) over repeats of
    t_slow / t_fast, each pair from the same repeat, so machine noise hits both alike."""
    ratios = [b[key] / a[key] for a, b in zip(runs[fast], runs[slow])]
    return statistics.median(ratios), min(ratios), max(ratios)


def targets(report: dict) -> list[tuple[str, str, str, bool | None, bool | None]]:
    """(target, wall-clock ratio, CPU-time ratio, met by wall, met by CPU); None: not measured."""
    rows = []

    def check(name, runs, fast, slow, goal, key, cost=False):
        measured = []
        for k in (key, f"cpu_{key}"):
            r, lo, hi = paired(runs, fast, slow, k)
            text = (
                f"+{(r - 1) * 100:.0f}% ({(lo - 1) * 100:+.0f}…{(hi - 1) * 100:+.0f}%)"
                if cost
                else f"{r:.2f}× ({lo:.2f}–{hi:.2f})"
            )
            measured.append((text, r < goal if cost else r >= goal))
        rows.append((name, measured[0][0], measured[1][0], measured[0][1], measured[1][1]))

    for i, w in enumerate(report["workloads"]):
        runs, short = w["runs"], w["key"]
        if "hand" in runs and "dltips" in runs:
            check(f"{short}: dltips ≥ 0.95× hand-written", runs, "dltips", "hand", 0.95, "steady_s")
            check(f"{short}: the same, per-epoch work included", runs, "dltips", "hand", 0.95, "all_in_s")
        for v, goal in (("dataloader", 3.0), ("lightning", 2.0)) if i == 0 else ():
            name = f"{short}: dltips ≥ {goal:g}× {LABELS[v][4:]}"
            if v in runs:
                check(name, runs, "dltips", v, goal, "steady_s")
            else:
                rows.append((name, w["skipped"].get(v, "not run"), "", None, None))
        if "dltips_diagnostics" in runs:
            check(
                f"{short}: diagnostics=true costs < 25%",
                runs,
                "dltips",
                "dltips_diagnostics",
                1.25,
                "steady_s",
                cost=True,
            )
    for e in report.get("seeds", []):
        measured = [paired(e["runs"], "stacked", "sequential", key) for key in ("wall_s", "cpu_s")]
        rows.append(
            (
                f"digits: trainer.seeds={e['k']} ≥ 2.5× {e['k']} runs one after another{setting(e)}",
                *(f"{r:.2f}× ({lo:.2f}–{hi:.2f})" for r, lo, hi in measured),
                *(r >= 2.5 for r, _, _ in measured),
            )
        )
    for w in report.get("sweeps", []):
        measured = [paired(w["runs"], "stacked", "basic", key) for key in ("wall_s", "cpu_s")]
        goal = w["goal"]
        rows.append(
            (
                f"{w['key']}: hydra/launcher=stacked "
                + (f"≥ {goal:g}× the basic launcher" if goal else "against the basic launcher"),
                *(f"{r:.2f}× ({lo:.2f}–{hi:.2f})" for r, lo, hi in measured),
                *((r >= goal if goal else None) for r, _, _ in measured),
            )
        )
    return rows


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
        "| launcher | wall s | min–max | vs basic | CPU s | vs basic | wall s per job | "
        + " | ".join(f"{p}, s" for p in PHASES)
        + " |",
        "|---|" + "---:|" * (6 + len(PHASES)),
    ]
    for v in ("basic", "stacked"):
        wall = [r["wall_s"] for r in runs[v]]
        cpu = statistics.median(r["cpu_s"] for r in runs[v])
        timed = [r["phases"] for r in runs[v] if r.get("phases")]
        split = [f"{statistics.median(t[p] for t in timed):.1f}" if timed else "–" for p in PHASES]
        lines.append(
            f"| {v} | {statistics.median(wall):.1f} | {min(wall):.1f}–{max(wall):.1f} "
            f"| {paired(runs, v, 'basic', 'wall_s')[0]:.2f}× | {cpu:.1f} | {paired(runs, v, 'basic', 'cpu_s')[0]:.2f}× "
            f"| {statistics.median(wall) / n:.2f} | " + " | ".join(split) + " |"
        )
    return [*lines, ""]


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


METHOD = """\
- **One process, one run.** Every variant trains the same `dltips.nn.MLP` (built from the
  workload's config with the same seed) on the same training tensors (those `setup(cfg)` makes
  for `train(cfg)`), with SGD at the config's learning rate, the same batch size and the same
  number of epochs. Variants are interleaved, the first one rotated each repeat, so a noisy
  neighbour hits all of them alike. Each variant runs once untimed first (full runs).
- **Timed from inside, the same way for all.** A global optimizer post-step hook
  (`torch.optim.optimizer.register_optimizer_step_post_hook`) stamps `perf_counter()` and
  `process_time()` after every `optimizer.step()`, in every variant, `train(cfg)` and Lightning
  included, without touching their code (under 1 µs a step; on CUDA it synchronizes at the
  first and last step of each epoch only).
  - *µs/step*: first to last step of each epoch over the steps in between, epochs 2…E (epoch 1
    is warm-up). The loop itself: indexing, zero_grad, forward, loss, backward, step, and
    dltips' logging every `log_every_n_steps` (except a log that falls on an epoch's last step).
  - *incl. per-epoch work*: last step of epoch 1 to the last step, over the steps in between:
    what running E and E−1 epochs and taking the difference would give, without a second run.
    Adds shuffling and, for dltips, evaluation of train and val, epoch scalars, the event-file
    flush and the checkpoints; for the hand-written loop its evaluation of train and val (eval
    mode, no grad, loss and accuracy: what a plain script does each epoch; it saves its weights
    once, after the last step); for Lightning its checkpoint and logger. The DataLoader loop
    and Lightning evaluate nothing.
  - *run setup*: calling the variant (`train(cfg)`, the loop, `Trainer.fit`) to its first step
    done; composing the config happens before and is not counted.
- **Wall clock and CPU time.** The wall clock is what a user waits for. On a machine shared with
  other work it also counts time spent descheduled, and a process that blocks (a checkpoint's
  fsync, a flush) is descheduled more afterwards, so the variants that write files lose more
  than their own work. CPU time (this process, all threads) ignores other processes; with several
  torch threads it also counts threads spinning while they wait for each other.
- **Median over repeats**, *min–max* the spread. Ratios are steps/s ratios paired by repeat
  (t(b)/t(x) within one repeat), then their median.
- **% of GEMM peak**: useful FLOPs (forward + backward ≈ 6 × Σ in×out per sample; dropout,
  diagnostics and the partial last batch not counted) × samples/s over the best rate of a
  2048×2048 float32 matmul timed in the same run, before and after the workloads.
- **Stacked seeds**: `train(cfg)` with `trainer.seeds=K` against K `train(cfg)` calls with seeds
  0 … K−1, in this process, interleaved pairs, order alternating, after one untimed short run of each.
- **Sweeps**: fresh processes, `python -m dltips.train -m <sweep> trainer.progress=log
  hydra.sweep.dir=<scratch>`, basic and stacked launcher in interleaved pairs (order
  alternating), after one untimed 2-job sweep with each. A sweep counts only if every job
  finished; the jobs' val/acc are compared between the launchers. CPU time: the child's user +
  system time (`getrusage(RUSAGE_CHILDREN)`).
- **Startup**: the `dltips-train` command (`trainer.max_epochs=1`) runs as `python -c` with the
  code of the installed script, plus a hook that records the wall clock when `setup()` returns
  and at the first optimizer step, then exits. Times are from just before the parent launches
  the process, after one untimed launch. The plain torch script (import torch, build the MLP,
  one step) is the floor.
- **Child processes** compute on the torch threads this one uses (`OMP_NUM_THREADS`), with
  Python's bytecode cache on: where `PYTHONDONTWRITEBYTECODE` turns it off, they keep it in the
  scratch directory (`PYTHONPYCACHEPREFIX`), or every launch would compile torch from source
  again, seconds no installed package pays."""


def busy_warning(m: dict) -> list[str]:
    """Other work on the cores makes multi-threaded ops wait for each other (OpenMP barriers)."""
    load = max((m.get(k) or (0,))[0] for k in ("load_average", "load_average_end"))
    if load < 0.5 * m["cores"] or m["threads"] == 1:
        return []
    return [
        f"**Busy machine**: load average up to {load:.1f} on {m['cores']} cores while torch used {m['threads']} "
        "threads per op; each op waits for its slowest thread, so single runs can be many times slower. Rerun on an "
        "idle machine, or compare with `--threads 1`.",
        "",
    ]


def loads(m: dict, key: str) -> str:
    return ", ".join(f"{x:.2f}" for x in m[key]) if m.get(key) else "n/a"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**not met**"


def previous_targets(path: Path) -> dict[str, str]:
    """The wall-clock column of the targets table in an earlier BENCH.md, by target name (the
    old name trainer.ensemble read as trainer.seeds)."""
    if not path.is_file():
        return {}
    rows = [line.split(" | ") for line in path.read_text().split("## Targets", 1)[-1].split("\n## ", 1)[0].splitlines()]
    return {
        r[0].removeprefix("| ").replace("trainer.ensemble=", "trainer.seeds="): r[1]
        for r in rows
        if len(r) >= 5 and r[1] not in ("wall clock", "---")
    }


def render(report: dict) -> str:
    m, gemm = report["machine"], report["gemm_flops"]
    previous = report.get("previous") or {}
    parts = report.get("parts")
    lines = [
        "# dltips benchmark: its loop against plain PyTorch, stacked networks, sweeps by launcher",
        "",
        f"torch {m['torch']} · Python {m['python']} · device {m['device']} · CPU {m['cpu']} ({m['cores']} cores) · "
        f"{m['threads']} torch threads · Lightning {m['lightning'] or 'not installed'}",
        f"{'quick' if report['quick'] else 'full'} run"
        + (f" of {', '.join(parts)}" if parts else "")
        + f", up to {report['repeats']} repeats"
        + (f" · {report['date']}, {report['duration_s'] / 60:.0f} min" if report.get("date") else "")
        + f" · 2048×2048 float32 matmul: {gemm / 1e9:.1f} GFLOP/s · load average {loads(m, 'load_average')} at start, "
        f"{loads(m, 'load_average_end')} at the end",
        "",
        *busy_warning(m),
        "## Targets",
        "",
        "How many times faster (steps/s; whole runs and sweeps: their time), median (min–max) of the per-repeat "
        "ratios; diagnostics: extra time per step."
        + (" *Previous*: the wall-clock figure in the BENCH.md this run replaced." if previous else ""),
        "",
        "| target | wall clock | met | CPU time | met |" + (" previous |" if previous else ""),
        "|---|---|---|---|---|" + ("---|" if previous else ""),
    ]
    for name, wall, cpu, met_wall, met_cpu in targets(report):
        lines.append(
            f"| {name} | {wall} | {verdict(met_wall)} | {cpu} | {verdict(met_cpu)} |"
            + (f" {previous.get(name, '–')} |" if previous else "")
        )
    lines.append("")
    if report["workloads"]:
        lines += ["## Per step", ""]
    for w in report["workloads"]:
        lines += workload_table(w, gemm)
    if report.get("seeds"):
        lines += [
            "## Many seeds at once: trainer.seeds=K",
            "",
            "*µs per member-step*: one optimizer step's time divided by the networks it trains.",
            "",
        ]
        for e in report["seeds"]:
            lines += seeds_table(e)
    if report.get("sweeps"):
        lines += [
            "## Sweeps: hydra/launcher=stacked against the basic launcher",
            "",
            "Each sweep is a fresh `dltips-train -m` process (`python -m dltips.train -m ... trainer.progress=log`), "
            "timed from launch to exit: imports, every job's config and files, training and the sweep's summary. *vs "
            "basic*: how many times faster, the median of the per-pair ratios. The phases, from the log's time stamps: "
            "launch to the first job's `run directory` line (imports, Hydra composing and checking every job's config, "
            "setting up the jobs: all of them and the stack with `stacked`, the first with `basic`), from there to the "
            "last job's result (`basic` sets up each later job in between), and the rest (the sweep's summary and "
            "figure, interpreter exit).",
            "",
        ]
        for w in report["sweeps"]:
            lines += sweep_table(w)
    if report["startup"]:
        n = len(next(iter(report["startup"].values())))
        lines += [
            "## Startup: process start to the first optimizer step",
            "",
            f"Median seconds from launch over {n} run(s).",
            "",
            "| command | interpreter up | imports done "
            "| setup done (config, data, model, optimizer) | first step done |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, marks in report["startup"].items():
            med = [statistics.median(x[k] for x in marks) for k in STARTUP_MARKS]
            lines.append(f"| {name} | " + " | ".join(f"{t:.2f}" for t in med) + " |")
        lines.append("")
    return "\n".join([*lines, "## Method", "", METHOD, ""])


def write(report: dict, out: Path) -> str:
    """BENCH.md and bench.json into `out`, BENCH.md's targets next to the ones it replaces."""
    report["previous"] = previous_targets(out / "BENCH.md")
    text = render(report)
    (out / "BENCH.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    return text
