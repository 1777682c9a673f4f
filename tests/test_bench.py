"""The benchmark's functions on a tiny workload: every variant runs and is timed; BENCH.md renders.
No timing thresholds: these check the plumbing, scripts/bench.py measures."""
from __future__ import annotations

import pytest

from dltips import bench

TINY = bench.Workload(
    "tiny",
    "tiny synthetic MLP",
    ("data=synthetic", "data.source.n_samples=200", "data.batch_size=32", "model.width=8"),
    ("dltips", "dltips_diagnostics", "hand", "dataloader", "lightning"),
)
RUN_KEYS = {"steady_s", "all_in_s", "cpu_steady_s", "cpu_all_in_s", "samples_per_s", "setup_s", "wall_s"}
MACHINE = {"torch": "2.x", "python": "3.x", "threads": 2, "cores": 2, "cpu": "test", "device": "cpu", "lightning": None,
           "load_average": (1.0, 1.0, 1.0), "load_average_end": None}  # fmt: skip


def test_step_clock_stamps_every_optimizer_step_of_any_loop(tmp_path):
    case = bench.make_case(TINY, tmp_path)
    assert case.steps_per_epoch == 5  # 140 training samples in batches of 32
    with bench.StepClock(case.steps_per_epoch, cuda=False) as clock:
        bench.hand_written(case, 3)
    assert len(clock.times) == 3 * case.steps_per_epoch
    run = clock.run(len(case.y), case.batch_size)
    assert run.steady_s > 0 and run.all_in_s > 0 and run.samples_per_s > 0
    bench.hand_written(case, 1)  # the hook is gone once the clock is closed
    assert len(clock.times) == 3 * case.steps_per_epoch


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


def test_ensemble_mode_is_timed_against_the_same_runs_one_after_another(tmp_path):
    e = bench.bench_ensemble(tmp_path, k=2, epochs=2, repeats=1, overrides=("trainer.checkpoint_every_n_epochs=2",), log=lambda _: None)
    assert e["k"] == 2 and set(e["runs"]) == {"sequential", "ensemble"}
    for runs in e["runs"].values():
        assert len(runs) == 1 and all(runs[0][key] > 0 for key in ("wall_s", "cpu_s", "step_s"))
    report = {"quick": True, "repeats": 1, "machine": MACHINE, "startup": {}, "gemm_flops": 1e9, "workloads": [], "ensemble": [e]}
    text = bench.render(report)
    assert "| digits: trainer.ensemble=2 ≥ 2.5× 2 runs one after another (trainer.checkpoint_every_n_epochs=2) |" in text
    assert "### trainer.checkpoint_every_n_epochs=2" in text
    assert "| trainer.ensemble=2 |" in text and "| 2 runs one after another |" in text
