"""BENCH.md from the raw report: targets, the tables (tables.py), startup, method."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .loops import LABELS
from .startup import STARTUP_MARKS
from .tables import (
    members_table,
    paired,
    seeds_table,
    set_up_per_job,
    setting,
    sweep1024_table,
    sweep_table,
    workload_table,
)


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
        set_up_row(rows, w["key"], set_up_per_job(w["runs"]["stacked"]))
    if report.get("sweep1024"):
        e = report["sweep1024"]
        set_up_row(rows, e["key"], set_up_per_job([e["run"]]))
    return rows


SET_UP_GOAL_S = 0.010  # the stacked launcher's set-up per job


def set_up_row(rows: list, key: str, per_job: list[float]) -> None:
    """The stacked launcher's set-up per job, median (min–max) over a sweep's runs, in the wall-clock
    column (the log's time stamps give no CPU time)."""
    if not per_job:
        return
    ms = [t * 1e3 for t in per_job]
    spread = f" ({min(ms):.1f}–{max(ms):.1f})" if len(ms) > 1 else ""
    median = statistics.median(per_job)
    rows.append(
        (
            f"{key}: stacked launcher: set-up ≤ {SET_UP_GOAL_S * 1e3:g} ms per job",
            f"{median * 1e3:.1f} ms{spread}",
            "–",
            median <= SET_UP_GOAL_S,
            None,
        )
    )


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
- **Set-up per job** (stacked launcher): from the log line the launcher writes as it starts
  setting up the first job (`#0 : <overrides>`) to its first `training <n> jobs together`, over
  the number of jobs; every job is set up before any stack trains. The stamps are in
  milliseconds. The basic launcher sets each job up just before training it: not measured.
- **The K curve**: one `train(cfg)` with `trainer.seeds=K` on the default experiment for each K,
  in this process, on its device, after one untimed short run; timed by the step clock (steady
  time per optimizer step: epochs 2…E, or steps 2…N of the only epoch). Large K trains fewer
  epochs: K = 1,024 one, its steps half a second each. last.pt is saved once, after the last
  epoch (`trainer.checkpoint_every_n_epochs` = the epochs), so that K checkpoints an epoch do not
  make up a large K's wall time; the steady time leaves epoch boundaries out either way. The
  floor: 6 × Σ in×out × batch FLOPs per member-step (as *% of GEMM peak*) over the best
  2048×2048 matmul rate of the run.
- **The 1,024-point sweep**: once, with the stacked launcher only, after one untimed 2-job
  sweep; every job must finish. The basic launcher would take about half an hour on 2 cores: its
  time is an estimate, the 64-point digits sweep's basic wall seconds per job × 1,024.
- **Startup**: the `dltips-train` command (`trainer.max_epochs=1`) runs as `python -c` with the
  code of the installed script, and nothing imported before it: hooks installed as the modules
  they need load (a finder first in `sys.meta_path`) record the wall clock once the training
  code is imported, when `setup()` returns and at the first optimizer step, then exit. Times are
  from just before the parent launches the process, after one untimed launch. The plain torch
  script (import torch, build the MLP, one step) is the floor.
- **Child processes**: the startup's computes on the torch threads this one uses
  (`OMP_NUM_THREADS`); the sweeps run as a user's command does, `trainer.threads=auto` with
  every core of the machine: a network alone stays on one thread, a stack of at least 250k
  parameters times its own steps on one and on all, and keeps the faster
  (dltips.engine.threads; its `torch threads:` line is in each job's train.log). All with
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
            "basic*: how many times faster, the median of the per-pair ratios. *set-up, ms per job*: the stacked "
            "launcher's, from its log (see Method). The phases, from the log's time stamps: "
            "launch to the first job's `run directory` line (imports, Hydra composing and checking every job's config, "
            "setting up the jobs: all of them and the stack with `stacked`, the first with `basic`), from there to the "
            "last job's result (`basic` sets up each later job in between), and the rest (the sweep's summary and "
            "figure, interpreter exit).",
            "",
        ]
        for w in report["sweeps"]:
            lines += sweep_table(w)
    if report.get("members"):
        lines += [
            "## The K curve: one member-step as the stack grows",
            "",
            "*µs per member-step*: one optimizer step's steady time divided by K; *vs K=1*: how many times faster a "
            "member-step is than one network's step; *share of the floor*: the floor (the member-step's useful FLOPs "
            "over this run's matmul rate) divided by the measured time.",
            "",
            *members_table(report["members"], gemm),
        ]
    if report.get("sweep1024"):
        lines += [
            f"## A {report['sweep1024']['points']:,}-point sweep, run whole",
            "",
            "One fresh `dltips-train -m` process with `hydra/launcher=stacked`, timed from launch to exit. Its stages, "
            "from the log's time stamps: launch to the first job's set-up (imports, Hydra's sweep config), setting up "
            "every job, building each stack (its networks, data and run files, from `training … together` to its "
            "first `run directory`), training (the rest, to the last job's result) and the sweep's summary and exit.",
            "",
            *sweep1024_table(report["sweep1024"], report.get("sweeps", [])),
        ]
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
