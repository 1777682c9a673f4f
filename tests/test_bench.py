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


def sweep_result(walls: dict[str, list[float]], difference: float = 0.0) -> dict:
    runs = {v: [{"wall_s": w, "cpu_s": w * 0.9, "load": 1.5, "phases": None} for w in ws] for v, ws in walls.items()}
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
    assert "| basic | 36.0 | 30.0–40.0 | 1.00× | 32.4 | 1.00× | 18.00 | – | – | – |" in text
    assert "| stacked | 10.0 | 9.0–20.0 | 3.00× | 9.0 | 3.00× | 5.00 |" in text
    assert "Every job's val/acc is the same with both launchers." in text
    assert "1-minute load average 1.5–1.5" in text
    other = bench.render(
        report | {"sweeps": [sweep_result({"basic": [3.0], "stacked": [2.0]}, 0.004) | {"goal": None, "equal_jobs": 1}]}
    )
    assert "| tiny sweep: hydra/launcher=stacked against the basic launcher | 1.50× (1.50–1.50) | n/a |" in other
    assert "1 of 2 jobs end with the same val/acc with both launchers; the largest difference is 0.004" in other


def test_sweep_sizes_results_and_differences(tmp_path):
    assert bench.SWEEPS[0].points == 16 and bench.SWEEPS[1].points == 64 and bench.QUICK[0].points == 4
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
