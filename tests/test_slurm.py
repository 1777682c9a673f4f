"""Sweeps on SLURM (`hydra/launcher=slurm`). Against a real cluster (tests/slurm_cluster.py:
`$SLURM_CONF`'s, or a single-node one started for these tests; skipped without SLURM): a sweep
with a failing point, a point cancelled while it trains and one requeued before its time limit
still summarises, and its re-run continues what is left; a job that cannot start is told with
SLURM's reason. Without a cluster: what the launcher records for a job SLURM ended, and the
handing-on of the signal that requeues a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dltips.launch.slurm import record_ended, shortest_timeout_min, stuck
from dltips.observe.compare import read_scalars
from dltips.run.interrupt import hand_on, signals_caught
from dltips.train import train
from tests.conftest import compose_config
from tests.slurm_cluster import Cluster, slurm  # noqa: F401 (the fixture)

# Tiny runs: a job's time is mostly its imports (torch), and the machine may have two cores.
RUN = ["data=digits", "model.depth=1", "model.width=32", "trainer.progress=log"]
EPOCHS = 60  # long enough (about 2 s) to be signalled after its first last.pt


def start_sweep(cluster: Cluster, out: Path, name: str, *args: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "dltips.train",
        "-m",
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={cluster.partition}",
        f"hydra.launcher.name={name}",
        "hydra.launcher.timeout_min=10",
        *RUN,
        *args,
        f"hydra.sweep.dir={out}",
    ]
    env = cluster.env | {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(sweep: subprocess.Popen, cluster: Cluster, timeout: float = 240) -> str:
    try:
        output, _ = sweep.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sweep.kill()
        output, _ = sweep.communicate()
        pytest.fail(f"the sweep did not end in {timeout:.0f} s:\n{output}\n{cluster.logs()}")
    return output


def wait_until(what: str, ready, sweep: subprocess.Popen, cluster: Cluster, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if time.monotonic() > deadline or sweep.poll() is not None:
            sweep.kill()
            pytest.fail(f"{what}: not seen\n{sweep.communicate()[0]}\n{cluster.logs()}")
        time.sleep(0.1)
    return value


@pytest.fixture
def name(slurm) -> Iterator[str]:  # noqa: F811
    """A job name of the test's own; its jobs left in the queue are cancelled after it."""
    name = f"dltips-{uuid.uuid4().hex[:8]}"
    yield name
    slurm.run("scancel", f"--name={name}", check=False)


def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_sweep_goes_on_past_cancelled_failed_and_requeued_points_and_its_rerun_continues_them(slurm, name, tmp_path):  # noqa: F811
    out = tmp_path / "sweep"
    # 60 epochs: requeued as at its time limit; 61: cancelled while it trains; -1 fails (a bad value).
    points = [f"max_epochs={EPOCHS}", f"max_epochs={EPOCHS + 1}", "max_epochs=-1"]
    args = [f"trainer.max_epochs={EPOCHS},{EPOCHS + 1},-1"]
    sweep = start_sweep(slurm, out, name, *args)
    jobs = wait_until("the sweep's jobs in squeue", lambda: len(j := slurm.jobs(name)) == 3 and j, sweep, slurm)
    # Three points, MaxArraySize=2 (tests/slurm_cluster.py): two arrays, in the sweep's order.
    assert len({job.split("_")[0] for job in jobs}) == 2
    requeued, cancelled, _ = sorted(jobs, key=lambda i: tuple(int(n) for n in i.split("_")))
    requeued_dir, cancelled_dir = out / points[0], out / points[1]
    wait_until("the first last.pt of the job to requeue", (requeued_dir / "last.pt").is_file, sweep, slurm)
    slurm.run("scancel", "--signal=USR2", requeued)  # what SLURM sends before the time limit (signal_delay_s)
    wait_until("the first last.pt of the job to cancel", (cancelled_dir / "last.pt").is_file, sweep, slurm)
    slurm.run("scancel", cancelled)  # SIGTERM, then SIGKILL KillWait later
    output = finish(sweep, slurm)

    assert sweep.returncode != 0, output
    assert {p: report(out / p)["status"] for p in points} == dict(
        zip(points, ["completed", "interrupted", "failed"])
    ), output
    assert "1 of 3 jobs failed: max_epochs=-1" in output
    assert f"1 of 3 jobs did not finish: max_epochs={EPOCHS + 1} (interrupted)" in output
    assert report(cancelled_dir)["message"].startswith("SIGTERM at step"), output
    assert (out / "summary.md").is_file()

    # The requeued job went on from where the signal stopped it: one run, every step once, and
    # the metrics of a run never interrupted.
    log = (requeued_dir / "train.log").read_text()
    assert "interrupted by SIGUSR2" in log and "resuming" in log, log
    steps = [step for step, _ in read_scalars(requeued_dir)["val/acc"]]
    assert len(steps) == EPOCHS and steps == sorted(set(steps))
    reference = train(compose_config([*RUN, f"trainer.max_epochs={EPOCHS}"], tmp_path / "reference"))
    assert report(requeued_dir)["metrics"] == pytest.approx(reference, rel=1e-6, abs=1e-9)

    # Re-run into the same directory: the finished point is not submitted again, the cancelled
    # one goes on from its last.pt.
    rerun = start_sweep(slurm, out, name, *args)
    output = finish(rerun, slurm)
    assert f"already completed, not submitted: {requeued_dir}" in output, output
    assert "submitted 2 job(s) to SLURM in 1 array(s) of at most 2" in output
    assert {p: report(out / p)["status"] for p in points} == dict(zip(points, ["completed", "completed", "failed"])), (
        output
    )
    assert "resuming the earlier attempt" in (cancelled_dir / "train.log").read_text()
    steps = [step for step, _ in read_scalars(cancelled_dir)["val/acc"]]
    assert len(steps) == EPOCHS + 1 and steps == sorted(set(steps))
    assert rerun.returncode != 0 and "1 of 3 jobs failed: max_epochs=-1" in output and "did not finish" not in output


def task_of(run_dir: Path) -> str:
    """The SLURM job (array task) a point ran in: its hydra.job.id."""
    return OmegaConf.load(run_dir / ".hydra/hydra.yaml").hydra.job.id


def test_a_stacked_sweep_trains_a_stack_per_task_and_its_rerun_continues(slurm, name, tmp_path):  # noqa: F811
    """6 points, stacks of at most 2 with equal batch sizes: 4 array tasks, 2 arrays (MaxArraySize=2),
    one task requeued as at its time limit, one cancelled."""
    out = tmp_path / "sweep"
    args = [
        "hydra.launcher.stack=true",
        "hydra.launcher.max_members=2",
        "optimizer.lr=0.05,0.1,0.2",
        "data.batch_size=32,64",
        f"trainer.max_epochs={EPOCHS}",
    ]
    sweep = start_sweep(slurm, out, name, *args)
    jobs = wait_until("the sweep's tasks in squeue", lambda: len(j := slurm.jobs(name)) == 4 and j, sweep, slurm)
    assert len({job.split("_")[0] for job in jobs}) == 2
    first = wait_until("a first last.pt", lambda: next(out.glob("*/last.pt"), None), sweep, slurm).parent
    requeued = task_of(first)
    slurm.run("scancel", "--signal=USR2", requeued)

    def another() -> Path | None:
        return next((p.parent for p in out.glob("*/last.pt") if task_of(p.parent) != requeued), None)

    cancelled = task_of(wait_until("a last.pt of another task", another, sweep, slurm))
    slurm.run("scancel", cancelled)
    output = finish(sweep, slurm)

    runs = sorted(p.parent for p in out.glob("*/.hydra"))
    assert len(runs) == 6, output
    by_task: dict[str, list[Path]] = {}
    for run_dir in runs:
        by_task.setdefault(task_of(run_dir), []).append(run_dir)
    assert sorted(map(len, by_task.values())) == [1, 1, 2, 2], by_task  # one stack per task
    for run_dir in runs:
        log = (run_dir / "train.log").read_text()
        assert ("training 2 jobs together" in log) == (len(by_task[task_of(run_dir)]) == 2), log
    # Every point of the requeued task went on from its last.pt, each step once; the cancelled
    # task's points are interrupted, with a last.pt to go on from.
    for run_dir in by_task[requeued]:
        assert report(run_dir)["status"] == "completed", output
        assert "interrupted by SIGUSR2" in (run_dir / "train.log").read_text()
        steps = [step for step, _ in read_scalars(run_dir)["val/acc"]]
        assert len(steps) == EPOCHS and steps == sorted(set(steps))
    for run_dir in by_task[cancelled]:
        assert report(run_dir)["status"] == "interrupted" and (run_dir / "last.pt").is_file(), output
    assert sweep.returncode != 0 and f"{len(by_task[cancelled])} of 6 jobs did not finish" in output, output

    # Re-run: only the cancelled task's points are submitted, and they finish from their last.pt.
    rerun = start_sweep(slurm, out, name, *args)
    output = finish(rerun, slurm)
    assert rerun.returncode == 0, output
    assert f"training {len(by_task[cancelled])} points in stacks" in output, output
    for run_dir in runs:
        assert report(run_dir)["status"] == "completed", output
    for run_dir in by_task[cancelled]:
        steps = [step for step, _ in read_scalars(run_dir)["val/acc"]]
        assert len(steps) == EPOCHS and steps == sorted(set(steps))


@pytest.mark.slow
def test_a_job_that_cannot_start_is_told_with_slurms_reason(slurm, name, tmp_path):  # noqa: F811
    out = tmp_path / "sweep"
    sweep = start_sweep(slurm, out, name, "trainer.max_epochs=1,2", "hydra.launcher.cpus_per_task=1000")
    lines: list[str] = []

    def told() -> bool:
        lines.append(sweep.stdout.readline())
        return "PartitionConfig" in lines[-1]

    guard = threading.Timer(90, sweep.kill)  # readline blocks: a sweep that never says it ends here
    guard.start()
    try:
        wait_until("the pending reason", told, sweep, slurm, timeout=60)
    finally:
        guard.cancel()
    assert "2 SLURM job(s) pending (PartitionConfig) and will not start as asked" in lines[-1]
    assert "hydra.launcher.cpus_per_task" in lines[-1]
    for job in slurm.jobs(name):
        slurm.run("scancel", job)
    output = "".join(lines) + finish(sweep, slurm)
    assert sweep.returncode != 0 and "2 of 2 jobs did not finish" in output, output
    assert {report(out / p)["status"] for p in ("max_epochs=1", "max_epochs=2")} == {"cancelled"}


@pytest.mark.slow
def test_a_job_out_of_requeues_stays_interrupted_not_failed(slurm, name, tmp_path):  # noqa: F811
    out = tmp_path / "sweep"
    sweep = start_sweep(
        slurm, out, name, f"trainer.max_epochs={EPOCHS},{EPOCHS + 1}", "hydra.launcher.max_num_timeout=0"
    )
    run_dir = out / f"max_epochs={EPOCHS}"
    wait_until("the first last.pt", (run_dir / "last.pt").is_file, sweep, slurm)
    job = min(slurm.jobs(name), key=lambda i: int(i.split("_")[1]))
    slurm.run("scancel", "--signal=USR2", job)
    output = finish(sweep, slurm)
    assert report(run_dir)["status"] == "interrupted" and (run_dir / "last.pt").is_file(), output
    assert "not requeued" in (run_dir / "train.log").read_text()
    assert sweep.returncode != 0 and f"1 of 2 jobs did not finish: max_epochs={EPOCHS} (interrupted)" in output


# Without a cluster.


def test_pending_reasons_that_waiting_does_not_cure():
    assert "cpus_per_task" in stuck("PartitionConfig")
    assert shortest_timeout_min(60) == 3  # README and configs/hydra/launcher/slurm.yaml say so
    assert stuck("QOSMaxCpuPerJobLimit")  # a per-job limit
    assert stuck("Resources") is None and stuck("Priority") is None and stuck("JobArrayTaskLimit") is None


def test_a_job_slurm_ended_keeps_what_its_run_recorded(tmp_path):
    def write(run: str, status: str, last: bool = False) -> Path:
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.json").write_text(json.dumps({"status": status, "metrics": {}}))
        if last:
            (tmp_path / run / "last.pt").write_bytes(b"")
        return tmp_path / run

    assert record_ended(write("done", "completed"), "7_0", "CANCELLED by 0") == "completed"
    assert record_ended(write("stopped", "interrupted", last=True), "7_1", "CANCELLED by 0") == "interrupted"
    assert report(tmp_path / "stopped")["status"] == "interrupted"
    # Interrupted before its first checkpoint, or never started: cancelled, with SLURM's state.
    assert record_ended(write("early", "interrupted"), "7_2", "OUT_OF_MEMORY") == "cancelled"
    assert (
        "OUT_OF_MEMORY" in report(tmp_path / "early")["message"] and "mem_gb" in report(tmp_path / "early")["message"]
    )
    assert record_ended(tmp_path / "never", "7_3", "CANCELLED by 0") == "cancelled"
    # An exception outside the run (the job could not start it): failed, with the trace.
    assert (
        record_ended(tmp_path / "broken", "7_4", "FAILED", "Traceback ...\nModuleNotFoundError: dltips\n") == "failed"
    )
    assert "ModuleNotFoundError" in (tmp_path / "broken" / "error.txt").read_text()


def test_the_signal_before_a_time_limit_is_handed_on_after_the_step():
    """submitit installs a handler for SIGUSR2 (requeue the job): the loop catches it at a step,
    writes last.pt, and then hand_on runs that handler."""
    called = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: called.append(signum))
    try:
        with signals_caught() as received:
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.01)
            assert received == [signal.SIGUSR2] and called == []
        hand_on(signal.SIGUSR2)
        assert called == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
    # With nobody waiting for it, SIGUSR2 keeps its default action: the loop leaves it alone.
    with signals_caught():
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
