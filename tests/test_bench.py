"""The benchmark's functions on a tiny workload: every variant runs and is timed; BENCH.md renders.
No timing thresholds: these check the plumbing, scripts/bench.py measures."""

from __future__ import annotations

import json
import math

import pytest

from scripts import benchmarks as bench

TINY = bench.Workload(
    "tiny",
    "tiny synthetic MLP",
    ("data=synthetic", "data.source.n_samples=200", "data.batch_size=32", "model.width=8"),
    ("dltips", "dltips_diagnostics", "hand", "dataloader", "lightning"),
)
RUN_KEYS = {"steady_s", "all_in_s", "cpu_steady_s", "cpu_all_in_s", "samples_per_s", "setup_s", "wall_s"}
MACHINE = {
    "torch": "2.x",
    "python": "3.x",
    "threads": 2,
    "cores": 2,
    "cpu": "test",
    "device": "cpu",
    "lightning": None,
    "load_average": (1.0, 1.0, 1.0),
    "load_average_end": None,
}


def test_step_clock_stamps_every_optimizer_step_of_any_loop(tmp_path):
    case = bench.make_case(TINY, tmp_path)
    assert case.steps_per_epoch == 5  # 140 training samples in batches of 32
    with bench.StepClock(case.steps_per_epoch, cuda=False) as clock:
        scores = bench.hand_written(case, 3, tmp_path)
    assert len(clock.times) == 3 * case.steps_per_epoch
    run = clock.run(len(case.y), case.batch_size)
    assert run.steady_s > 0 and run.all_in_s > 0 and run.samples_per_s > 0
    bench.hand_written(case, 1)  # the hook is gone once the clock is closed
    assert len(clock.times) == 3 * case.steps_per_epoch
    # The floor a whole run is held to evaluates train and val every epoch and saves at the end.
    assert len(scores) == 3 and all(len(s) == 4 and 0 <= s[1] <= 1 and 0 <= s[3] <= 1 for s in scores)
    assert (tmp_path / "last.pt").is_file()


def test_every_variant_runs_a_few_steps_and_the_report_renders(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.timing, "lightning_module", lambda: None)  # the skip path, installed or not
    lines = []
    w = bench.bench_workload(TINY, tmp_path, repeats=1, target_s=0.0, warmup=False, log=lines.append)
    assert w["epochs"] == 2 and lines
    assert set(w["runs"]) == {"dltips", "dltips_diagnostics", "hand", "dataloader"}
    assert w["skipped"] == {"lightning": "not installed: `uv sync --group bench`"}
    for runs in w["runs"].values():
        assert len(runs) == 1 and set(runs[0]) == RUN_KEYS
        assert all(runs[0][k] > 0 for k in RUN_KEYS)
    report = {"quick": True, "repeats": 1, "machine": MACHINE, "startup": {}, "gemm_flops": bench.gemm_rate(256, 1)}
    text = bench.render(report | {"workloads": [w]})
    assert "| variant | µs/step | min–max | steps/s vs (b) | CPU µs/step | vs (b) |" in text
    assert "| (b) hand-written loop |" in text and "| 1.00× |" in text
    assert "| (d) Lightning defaults | skipped: not installed" in text
    assert "| target | wall clock | met | CPU time | met |" in text
    assert "| tiny: dltips ≥ 0.95× hand-written |" in text
    assert "tiny: diagnostics=true costs < 25%" in text
    assert "| tiny: dltips ≥ 2× Lightning defaults | not installed: `uv sync --group bench` | n/a |  | n/a |" in text
    assert "## Method" in text


@pytest.mark.slow
def test_lightning_variant_when_installed(tmp_path):
    pytest.importorskip("lightning")
    case = bench.make_case(TINY, tmp_path)
    run = bench.time_run("lightning", case, 2, tmp_path)
    assert run.steady_s > 0


def test_startup_marks_are_seconds_from_launch():
    output = 'hydra says hi\nBENCH-MARKS {"interpreter": 10.5, "imports": 12.0, "setup": 13.0, "first_step": 13.25}\n'
    marks = bench.parse_marks(output, launched=10.0)
    assert marks == {"interpreter": 0.5, "imports": 2.0, "setup": 3.0, "first_step": 3.25}


def test_stacked_seeds_are_timed_against_the_same_runs_one_after_another(tmp_path):
    e = bench.bench_seeds(
        tmp_path, k=2, epochs=2, repeats=1, overrides=("trainer.checkpoint_every_n_epochs=2",), log=lambda _: None
    )
    assert e["k"] == 2 and set(e["runs"]) == {"sequential", "stacked"}
    for runs in e["runs"].values():
        assert len(runs) == 1 and all(runs[0][key] > 0 for key in ("wall_s", "cpu_s", "step_s"))
    report = {
        "quick": True,
        "repeats": 1,
        "machine": MACHINE,
        "startup": {},
        "gemm_flops": 1e9,
        "workloads": [],
        "seeds": [e],
    }
    text = bench.render(report)
    assert "| digits: trainer.seeds=2 ≥ 2.5× 2 runs one after another (trainer.checkpoint_every_n_epochs=2) |" in text
    assert "### trainer.checkpoint_every_n_epochs=2" in text
    assert "| trainer.seeds=2 |" in text and "| 2 runs one after another |" in text
    assert "## Per step" not in text  # no workload was run


def sweep_result(walls: dict[str, list[float]], difference: float = 0.0, set_up=(0.012, 0.008, 0.020)) -> dict:
    runs = {v: [{"wall_s": w, "cpu_s": w * 0.9, "load": 1.5, "phases": None} for w in ws] for v, ws in walls.items()}
    for run, per_job in zip(runs["stacked"], set_up):
        run["set_up_s_per_job"] = per_job  # the basic launcher's log does not show it
    return {
        "key": "tiny sweep",
        "name": "2 seeds",
        "points": 2,
        "goal": 3.0,
        "command": "dltips-train -m seed=0,1",
        "max_val_acc_difference": difference,
        "runs": runs,
    }


def test_sweep_report_pairs_the_launchers_by_repeat():
    w = sweep_result({"basic": [30.0, 40.0, 36.0], "stacked": [10.0, 20.0, 9.0]})
    w["runs"]["stacked"][1]["threads"] = [2]  # a stack's steps measured faster on 2 threads (its log's line)
    report = {
        "quick": False,
        "repeats": 3,
        "machine": MACHINE,
        "startup": {},
        "gemm_flops": 1e9,
        "workloads": [],
        "sweeps": [w],
    }
    text = bench.render(report)
    # per-pair ratios 3.0, 2.0, 4.0: median 3.00, range 2.00–4.00
    assert (
        "| tiny sweep: hydra/launcher=stacked ≥ 3× the basic launcher | 3.00× (2.00–4.00) | met "
        "| 3.00× (2.00–4.00) | met |" in text
    )
    assert "| basic | 36.0 | 30.0–40.0 | 1.00× | 32.4 | 1.00× | 18.00 | – | – | – | – | 1 |" in text
    assert (
        "| stacked | 10.0 | 9.0–20.0 | 3.00× | 9.0 | 3.00× | 5.00 | 12.0 | – | – | – | 2 (measured faster than 1) |"
        in text
    )
    # The stacked launcher's set-up per job, median (min–max) over its runs: a target of its own.
    assert (
        "| tiny sweep: stacked launcher: set-up ≤ 10 ms per job | 12.0 ms (8.0–20.0) | **not met** | – | n/a |" in text
    )
    assert "Every job's val/acc is the same with both launchers." in text
    assert "1-minute load average 1.5–1.5" in text
    other = bench.render(
        report
        | {
            "sweeps": [
                sweep_result({"basic": [3.0], "stacked": [2.0]}, 0.004, set_up=(0.0095,))
                | {"goal": None, "equal_jobs": 1}
            ]
        }
    )
    assert "| tiny sweep: hydra/launcher=stacked against the basic launcher | 1.50× (1.50–1.50) | n/a |" in other
    assert "1 of 2 jobs end with the same val/acc with both launchers; the largest difference is 0.004" in other
    assert "| tiny sweep: stacked launcher: set-up ≤ 10 ms per job | 9.5 ms | met | – | n/a |" in other


def test_sweep_sizes_results_and_differences(tmp_path):
    assert [(s.points, s.goal) for s in bench.SWEEPS] == [(16, 3.0), (64, 3.0), (64, None)]
    assert (
        bench.SWEEPS[1].key == bench.sweep1024.ESTIMATED_FROM and "trainer.max_epochs=20" in bench.SWEEPS[1].overrides
    )
    assert bench.QUICK[0].points == 4
    assert bench.sweep1024.SWEEP.points == 1024 and bench.sweep1024.QUICK.points == 16
    assert "sweep1024" in bench.PARTS and "sweep1024" not in bench.QUICK_PARTS and "members" in bench.QUICK_PARTS
    assert "hydra/launcher=stacked" in bench.sweeps.command(bench.SWEEPS[0], "stacked", tmp_path)
    assert "hydra/launcher=stacked" not in bench.sweeps.command(bench.SWEEPS[0], "basic", tmp_path)
    for name, status, acc in (("seed=0", "completed", 0.5), ("seed=1", "diverged", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"status": status, "metrics": {"val/acc": acc}}))
    found = bench.sweeps.job_results(tmp_path)
    assert found == {"seed=0": ("completed", 0.5), "seed=1": ("diverged", None)}
    assert bench.sweeps.largest_difference(found, found) == 0.0
    assert bench.sweeps.largest_difference(found, {"seed=0": ("completed", 0.25), "seed=1": ("diverged", None)}) == 0.25
    assert math.isinf(
        bench.sweeps.largest_difference(found, {"seed=0": ("completed", 0.5), "seed=1": ("completed", 0.1)})
    )


def test_sweep_phases_come_from_the_log_time_stamps():
    log = (
        "[2026-11-29 05:10:18,000][HYDRA] Launching 2 jobs in stacks of up to 64\n"
        "[2026-11-29 05:10:20,500][HYDRA] run directory: /tmp/s/seed=0 (watch it: ...)\n"
        "[2026-11-29 05:10:21,000][HYDRA] run directory: /tmp/s/seed=1 (watch it: ...)\n"
        "[2026-11-29 05:10:25,000][dltips][INFO] - completed: test/acc 0.9 ...\n"
        "[2026-11-29 05:10:26,250][HYDRA] diverged: test/acc nan ...\n"
        "[2026-11-29 05:10:27,000][HYDRA] sweep summary: /tmp/s/summary.md\n"
    )
    launched = bench.sweeps.datetime(2026, 11, 29, 5, 10, 15).timestamp()
    found = bench.sweeps.phases(log, launched, launched + 13.0)
    assert found == pytest.approx({"to the first run": 5.5, "training": 5.75, "summary and exit": 1.75})
    assert bench.sweeps.phases("no time stamps here", launched, launched + 1) is None


STACKED_LOG = (  # two stacks of two; the dltips lines on stdout, Hydra's on stderr
    "[2026-11-29 05:10:18,000][dltips][INFO] - training 2 jobs together: seed=0, seed=1\n"
    "[2026-11-29 05:10:19,000][dltips][INFO] - run directory: /tmp/s/seed=0 (watch it: ...)\n"
    "[2026-11-29 05:10:21,000][dltips][INFO] - completed: test/acc 0.9 ...\n"
    "[2026-11-29 05:10:21,500][dltips][INFO] - training 2 jobs together: seed=2, seed=3\n"
    "[2026-11-29 05:10:22,000][dltips][INFO] - run directory: /tmp/s/seed=2 (watch it: ...)\n"
    "[2026-11-29 05:10:24,000][dltips][INFO] - diverged: test/acc nan ...\n",
    "[2026-11-29 05:10:17,000][HYDRA] Launching 4 jobs in stacks of up to 2\n"
    "[2026-11-29 05:10:17,000][HYDRA] \t#0 : seed=0 trainer.progress=log\n"
    "[2026-11-29 05:10:17,010][HYDRA] \t#1 : seed=1 trainer.progress=log\n"
    "[2026-11-29 05:10:17,020][HYDRA] \t#2 : seed=2 trainer.progress=log\n"
    "[2026-11-29 05:10:17,030][HYDRA] \t#3 : seed=3 trainer.progress=log\n"
    "[2026-11-29 05:10:25,000][HYDRA] sweep summary: /tmp/s/summary.md\n",
)


def test_stacked_set_up_and_stages_come_from_its_own_log_lines():
    stdout, stderr = STACKED_LOG
    launched = bench.sweeps.datetime(2026, 11, 29, 5, 10, 15).timestamp()
    # #0 at 17.000 to the first "training … together" at 18.000, over 4 jobs
    assert bench.sweeps.set_up_per_job(stdout + stderr) == pytest.approx(0.25)
    found = bench.sweeps.stages(stdout + stderr, launched, launched + 10.5)
    assert found == pytest.approx(
        # building: 18.0 → 19.0 and 21.5 → 22.0; training: 18.0 → 24.0 less those 1.5 s
        {"start-up": 2.0, "set-up": 1.0, "building stacks": 1.5, "training": 4.5, "summary and exit": 1.5}
    )
    assert sum(found.values()) == pytest.approx(10.5)
    assert bench.sweeps.phases(stdout + stderr, launched, launched + 10.5) == pytest.approx(
        {"to the first run": 4.0, "training": 5.0, "summary and exit": 1.5}
    )
    assert bench.sweeps.switched_threads(stdout + stderr) == []
    switched = "[2026-11-29 05:10:20,000][dltips][INFO] - torch threads: 2, not 1 (a step took 3.40 ms on 2, ...)\n"
    assert bench.sweeps.switched_threads(stdout + switched + switched) == [2, 2]
    basic = "\n".join(line for line in stderr.splitlines() if "#" in line) + "\n" + stdout.replace("training", "-")
    assert bench.sweeps.set_up_per_job(basic) is None and bench.sweeps.stages(basic, launched, launched + 9) is None


def test_the_k_curve_times_a_member_step_against_the_floor(tmp_path):
    stamps = [0.0, 1.0, 2.0, 10.0, 10.5, 11.0]  # two epochs of three steps: epoch 1 is left out
    assert bench.members.steady(stamps, 3) == 0.5 and bench.members.steady(stamps[:3], 3) == 1.0
    with pytest.raises(RuntimeError, match="whole epochs of 3 steps"):
        bench.members.steady(stamps[:4], 3)
    e = bench.bench_members(tmp_path, {1: 2, 2: 1}, TINY.overrides, log=lambda _: None)
    assert [(r["k"], r["epochs"]) for r in e["rows"]] == [(1, 2), (2, 1)]
    assert e["steps_per_epoch"] == 5 and e["name"] == "synthetic MLP 20-8-8-4, batch 32"
    assert e["flops_per_member_step"] == 6 * (20 * 8 + 8 * 8 + 8 * 4) * 32
    assert all(r[key] > 0 for r in e["rows"] for key in ("step_s", "cpu_step_s", "setup_s", "wall_s"))
    # Round numbers: 1 ms a step for K=1, 1.2 ms for K=2 (0.6 ms per member-step), against a floor
    # of flops / gemm = 0.1 ms.
    e["rows"][0] |= {"step_s": 1e-3, "cpu_step_s": 1e-3}
    e["rows"][1] |= {"step_s": 1.2e-3, "cpu_step_s": 1.2e-3}
    report = {"quick": True, "repeats": 1, "machine": MACHINE, "startup": {}, "workloads": [], "members": e}
    text = bench.render(report | {"gemm_flops": e["flops_per_member_step"] / 1e-4})
    assert "## The K curve: one member-step as the stack grows" in text
    assert "| 1 | 2 | 1,000 | 1,000 | 1.00× | 1,000 | 10.0% |" in text
    assert "| 2 | 1 | 1,200 | 600 | 1.67× | 600 | 16.7% |" in text
    assert "= 100 µs." in text and "**The K curve**" in text


def test_a_large_stack_may_open_more_files_than_the_soft_limit(monkeypatch):
    calls = []
    monkeypatch.setattr(bench.members.resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(bench.members.resource, "setrlimit", lambda _, limits: calls.append(limits))
    bench.members.allow_open_files(64)  # 2 × 64 + 256 files fit
    bench.members.allow_open_files(1024)
    bench.members.allow_open_files(4096)  # no further than the hard limit
    assert calls == [(2304, 4096), (4096, 4096)]


def test_the_whole_sweep_renders_its_stages_and_the_basic_estimate():
    stdout, stderr = STACKED_LOG
    launched = bench.sweeps.datetime(2026, 11, 29, 5, 10, 15).timestamp()
    run = {
        "wall_s": 10.5,
        "cpu_s": 9.0,
        "load": 1.0,
        "stages": bench.sweeps.stages(stdout + stderr, launched, launched + 10.5),
        "set_up_s_per_job": bench.sweeps.set_up_per_job(stdout + stderr),
    }
    e = {
        "key": "tiny whole sweep",
        "name": "4 seeds in stacks of 2",
        "points": 4,
        "command": "dltips-train -m hydra/launcher=stacked seed=0,1,2,3 hydra.launcher.max_members=2",
        "statuses": {"completed": 3, "diverged": 1},
        "estimated_from": "tiny sweep",
        "run": run,
    }
    report = {"quick": True, "repeats": 1, "machine": MACHINE, "startup": {}, "workloads": [], "gemm_flops": 1e9}
    text = bench.render(report | {"sweep1024": e})
    assert "## A 4-point sweep, run whole" in text and "run once: 3 completed, 1 diverged." in text
    assert "| stacked | 10.5 | 0.4 | 9.0 | 2.0 | 1.0 | 1.5 | 4.5 | 1.5 | 250.0 |" in text
    assert "| tiny whole sweep: stacked launcher: set-up ≤ 10 ms per job | 250.0 ms | **not met** |" in text
    assert "The basic launcher is not run; its estimate needs the tiny sweep (the sweeps part)." in text
    # With the sweep it is estimated from: 4 × its basic launcher's wall per job (median 27 s over 2 jobs).
    sweeps = [sweep_result({"basic": [36.0, 18.0], "stacked": [10.0, 9.0]})]
    text = bench.render(report | {"sweep1024": e, "sweeps": sweeps})
    assert "| basic, estimated: 4 × 13.50 s | 54 | 0.1 | |" + " |" * 6 in text
    assert "not run, 4 jobs × the basic launcher's wall seconds per job in the tiny sweep." in text
    longer = sweeps[0] | {"command": "dltips-train -m seed=0,1 trainer.max_epochs=20"}
    text = bench.render(
        report | {"sweep1024": e | {"command": e["command"] + " trainer.max_epochs=5"}, "sweeps": [longer]}
    )
    assert "in the tiny sweep (20 epochs a job, these train 5: an upper bound)." in text


def test_previous_figures_are_read_from_the_bench_md_replaced(tmp_path):
    (tmp_path / "BENCH.md").write_text(
        "# old\n\n## Targets\n\n| target | wall clock | met | CPU time | met |\n|---|---|---|---|---|\n"
        "| digits: the same, per-epoch work included | 0.74× (0.46–0.80) | **not met** | 0.77× | **not met** |\n"
        "| digits: trainer.ensemble=16 ≥ 2.5× 16 runs one after another | 2.37× (2.19–2.45) | **not met** "
        "| 2.44× | **not met** |\n"
        "\n## Per step\n\n| variant | µs/step | a | b | c |\n"
    )
    previous = bench.report.previous_targets(tmp_path / "BENCH.md")
    assert previous == {
        "digits: the same, per-epoch work included": "0.74× (0.46–0.80)",
        "digits: trainer.seeds=16 ≥ 2.5× 16 runs one after another": "2.37× (2.19–2.45)",
    }
    assert bench.report.previous_targets(tmp_path / "missing.md") == {}


@pytest.mark.slow
def test_a_tiny_sweep_is_timed_with_both_launchers(tmp_path):
    sweep = bench.Sweep(
        "tiny", "2 seeds", ("data=synthetic", "data.source.n_samples=200", "seed=0,1", "trainer.max_epochs=2")
    )
    w = bench.bench_sweep(sweep, tmp_path, repeats=1, pycache=tmp_path / "pycache", log=lambda _: None)
    assert w["points"] == 2 and w["max_val_acc_difference"] < 1e-6 and w["equal_jobs"] >= 0
    for runs in w["runs"].values():
        assert len(runs) == 1 and runs[0]["wall_s"] > 0 and runs[0]["cpu_s"] > 0
        assert sum(runs[0]["phases"].values()) == pytest.approx(runs[0]["wall_s"], abs=0.01)


@pytest.mark.slow
def test_a_tiny_sweep_is_run_whole_with_the_stacked_launcher(tmp_path):
    sweep = bench.Sweep(
        "tiny", "4 seeds", ("data=synthetic", "data.source.n_samples=200", "seed=0,1,2,3", "trainer.max_epochs=2")
    )
    e = bench.bench_sweep1024(
        bench.Sweep(sweep.key, sweep.name, (*sweep.overrides, "hydra.launcher.max_members=2")),
        tmp_path,
        tmp_path / "pycache",
        warm=False,
        log=lambda _: None,
    )
    assert e["points"] == 4 and sum(e["statuses"].values()) == 4 and "hydra/launcher=stacked" in e["command"]
    run = e["run"]
    assert "results" not in run and run["set_up_s_per_job"] > 0
    assert set(run["stages"]) == set(bench.sweeps.STAGES) and all(t >= 0 for t in run["stages"].values())
    assert sum(run["stages"].values()) == pytest.approx(run["wall_s"], abs=0.01)
