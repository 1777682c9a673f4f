"""A sweep on SLURM (`hydra/launcher=slurm`, the launcher in hydra_plugins.dltips_slurm): what the
launching process decides about each point from its run directory, and what it tells about jobs
that will not start.

- A point whose run directory says `completed` or `diverged` is not submitted again.
- A job SLURM ends before the run could (cancelled, killed by a node failure or the out-of-memory
  killer, past its time limit without being requeued) is a point of the sweep like any other:
  its metrics.json says `cancelled`, or keeps the `interrupted` the run wrote with its last.pt,
  and re-running the sweep into its directory continues it.
- A job pending for a reason that will not change by itself (it asks for more than the partition
  has, its node is down) is reported with SLURM's reason and what to change.
- The points are submitted as job arrays of at most the cluster's MaxArraySize tasks, one point
  per task, or with `hydra.launcher.stack=true` one stack of compatible points per task
  (dltips.config.stackable; hydra_plugins.dltips_slurm.slurm_launcher.StackTask), each point
  still in its own run directory: what SLURM does to a task it does to each of its points.

Nothing here imports torch: the launching process only submits and waits.
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf, open_dict, read_write

from dltips.config.stackable import in_stacks, stack_key
from dltips.launch.compose import compose_job
from dltips.run import report

log = logging.getLogger("dltips")

# squeue's pending reasons that waiting does not cure (the others wait for resources, priority,
# a dependency, a begin time, a group limit), and what to do about them.
STUCK = {
    "PartitionConfig": "it asks for more CPUs, memory or GPUs per job than the partition's nodes have: "
    "lower hydra.launcher.cpus_per_task, mem_gb or gpus_per_task, or pick another hydra.launcher.partition",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "PartitionTimeLimit": "its time limit is above the partition's: lower hydra.launcher.timeout_min",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "ReqNodeNotAvail": "the nodes it can run on are down, drained or reserved",
    "NodeDown": "a node it needs is down",
    "BadConstraints": "its constraints cannot be met by any node",
    "InvalidAccount": "its account is not valid: set hydra.launcher.account",
    "InvalidQOS": "its QOS is not valid: set hydra.launcher.qos",
    "JobHeldAdmin": "an administrator holds it",
    "JobHeldUser": "it is held: scontrol release <job>",
    "DependencyNeverSatisfied": "it depends on a job that failed",
}
# What to change after sacct's state of a job SLURM ended.
HINTS = {
    "OUT_OF_MEMORY": ": raise hydra.launcher.mem_gb",
    "TIMEOUT": ": raise hydra.launcher.timeout_min or hydra.launcher.max_num_timeout",
}
# SLURM's own default MaxArraySize (slurm.conf).
DEFAULT_MAX_ARRAY_SIZE = 1001
# How long a job is out of squeue, and not done for sacct, before it counts as ended.
GONE_S = 5


@dataclass
class Point:
    idx: int  # hydra.job.num
    overrides: list[str]
    run_dir: Path
    key: str = ""  # points with equal keys may train in one stack (dltips.config.stackable)


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """The launch of hydra_submitit_launcher's SlurmLauncher (`launcher`), point by point, or
    stack by stack with `hydra.launcher.stack=true`."""
    from dltips.launch.job import training_code_loaded  # torch: not to import the module

    training_code_loaded()  # the collector on again while this process waits for the cluster
    points = [point(launcher, o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
    returns, todo = {}, []
    for p in points:
        ended = report.finished(p.run_dir)
        if ended:
            log.info("already %s, not submitted: %s", ended["status"], p.run_dir)
            returns[p.idx] = job_return(launcher, p, report.objective(ended))
        else:
            todo.append(p)
    if todo:
        if launcher.stack:  # one task per stack of points with equal keys
            tasks = [[todo[i] for i in stack] for stack in in_stacks([p.key for p in todo], launcher.max_members)]
        else:
            tasks = [[p] for p in todo]
        returns |= wait(launcher, submit(launcher, tasks), tasks)
    return [returns[p.idx] for p in points]


def point(launcher: Any, overrides: Sequence[str], idx: int) -> Point:
    """The point: the directory the job will run in, resolved as Hydra's run_job resolves it in
    the job, and, in a stacked sweep, its stack key."""
    config = compose_job(launcher.hydra_context.config_loader, launcher.config, overrides)
    with open_dict(config.hydra.job):
        config.hydra.job.num = idx
    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)
    try:
        run_dir = (Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)).absolute()
        key = ""
        if launcher.stack:
            with read_write(config), open_dict(config):  # the job's own config, as it will train
                del config["hydra"]
                config.output_dir = str(run_dir)
            # Alone, as hydra/launcher=stacked trains them: a job of several seeds, one resumed.
            key = "" if config.get("resume") or config.trainer.seeds != 1 else stack_key(config)
        return Point(idx, list(overrides), run_dir, key)
    finally:
        HydraConfig.instance().cfg = before


def job_return(launcher: Any, point: Point, value: float) -> JobReturn:
    """What the sweeper gets for a point that ran no job now (finished before, or ended by SLURM)."""
    ret = JobReturn(overrides=point.overrides, working_dir=str(point.run_dir), task_name=launcher.config.hydra.job.name)
    ret.status, ret.return_value = JobStatus.COMPLETED, value
    return ret


def max_array_size() -> int:
    """The cluster's MaxArraySize (scontrol show config): an array's indices run below it, so
    no array holds more tasks. SLURM's default, 1001, where scontrol cannot say."""
    try:
        shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    for line in shown.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return max(1, int(value))
    return DEFAULT_MAX_ARRAY_SIZE


def submit(launcher: Any, tasks: list[list[Point]]) -> list:
    """Submit the tasks (one point each, or a stack of points) as job arrays of at most the
    cluster's MaxArraySize tasks (or hydra.launcher.max_array_size), with the launcher's
    parameters (as its own launch)."""
    import submitit
    from submitit.core.utils import FailedJobError

    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params, executor_name = launcher.params, launcher._EXECUTOR
    executor = submitit.AutoExecutor(
        cluster=executor_name,
        folder=params["submitit_folder"],
        **{f"{executor_name}_max_num_timeout": params["max_num_timeout"]},
    )
    common = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{
            k if k in common else f"{executor_name}_{k}": v
            for k, v in params.items()
            if k not in ("submitit_folder", "max_num_timeout")
        }
    )
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    shortest = shortest_timeout_min(params["signal_delay_s"])
    if params["timeout_min"] < shortest:
        log.warning(
            "hydra.launcher.timeout_min=%s: SLURM's signal to stop "
            "(signal_delay_s=%s s before the limit, up to a minute "
            "earlier) may come before a job has started training; use at least %d",
            params["timeout_min"],
            params["signal_delay_s"],
            shortest,
        )
    state = Singleton.get_state()
    for task in tasks:
        for p in task:
            log.info("\t#%d : %s", p.idx, " ".join(filter_overrides(p.overrides)))
    size, jobs = launcher.max_array_size or max_array_size(), []
    try:
        for start in range(0, len(tasks), size):
            chunk = tasks[start : start + size]
            if launcher.stack:
                from hydra_plugins.dltips_slurm.slurm_launcher import StackTask

                args = [([(p.overrides, p.idx) for p in task], state) for task in chunk]
                jobs += executor.map_array(StackTask(launcher), *zip(*args))
            else:
                args = [(p.overrides, "hydra.sweep.dir", p.idx, f"job_id_for_{p.idx}", state) for [p] in chunk]
                jobs += executor.map_array(launcher, *zip(*args))
    except FailedJobError as err:  # sbatch's own message: a partition, GPU or memory it cannot give
        asked = ", ".join(
            f"{k}={params.get(k)}" for k in ("partition", "cpus_per_task", "gpus_per_task", "mem_gb", "timeout_min")
        )
        raise SystemExit(f"SLURM refused the sweep's jobs ({asked}): {str(err).strip().splitlines()[-1]}") from None
    arrays = list(dict.fromkeys(j.job_id.split("_")[0] for j in jobs))
    log.info(
        "submitted %d job(s)%s to SLURM in %d array(s) of at most %d (MaxArraySize): %s (squeue --jobs=%s)",
        len(jobs),
        f" training {sum(map(len, tasks))} points in stacks" if launcher.stack else "",
        len(arrays),
        size,
        " ".join(j.job_id for j in jobs),
        ",".join(arrays),
    )
    return jobs


def shortest_timeout_min(signal_delay_s: int) -> int:
    """The shortest time limit that leaves a job its start-up (imports, about 15 s) before the
    signal SLURM sends signal_delay_s, give or take its one-minute timer, before the limit."""
    return math.ceil((signal_delay_s + 60) / 60) + 1


def wait(launcher: Any, jobs: list, tasks: list[list[Point]]) -> dict[int, JobReturn]:
    """Wait for every job. squeue, asked now and then, tells why a job stays pending (said once
    when waiting will not help) and which jobs left the queue without a trace in sacct (an array
    task cancelled before it started has none): those end a few seconds later."""
    left, returns, told = dict(zip(jobs, tasks)), {}, set()
    names = {job.job_id: " ".join(p.run_dir.name for p in task) for job, task in left.items()}
    started, check, gone, seen = time.monotonic(), time.monotonic() + 3, {}, {}
    while left:
        now = time.monotonic()
        if now >= check:
            listed = queue([job.job_id for job in left])
            if listed is not None:
                warn_stuck({i: reason for i, (state, reason) in listed.items() if state == "PENDING"}, names, told)
                gone = {job: gone.get(job, now) for job in left if job.job_id not in listed}
                seen |= {i: state for i, (state, _) in listed.items()}
            check = now + min(30, max(3, (now - started) / 10))  # every 3 s at first, every 30 s after 5 min
        for job in [job for job in left if job.done() or now - gone.get(job, now) > GONE_S]:
            task = left.pop(job)
            for p, ret in zip(task, outcome(launcher, job, task, seen.get(job.job_id, "PENDING"))):
                returns[p.idx] = ret
        if left:
            time.sleep(1)
    return returns


def outcome(launcher: Any, job: Any, task: list[Point], last_seen: str) -> list[JobReturn]:
    """A finished job's JobReturn for each of its points: their own, or, when SLURM ended it
    first, recorded points."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    error = None
    if job.paths.result_pickle.exists() or job.state.startswith("COMPLETED"):
        try:
            result = job.results()[0]
            return result if isinstance(result, list) else [result]
        except FailedJobError as err:  # raised outside the run (dltips.launch.job.run catches the run's own)
            error = str(err)
        except UncompletedJobError:
            pass
    state = job.state
    if state == "UNKNOWN":  # no accounting record: a task cancelled before it started, or no sacct
        state = f"left the queue when {last_seen}, and sacct has no record of it"
    returns = []
    for p in task:
        status = record_ended(p.run_dir, job.job_id, state, error)
        log.warning("SLURM job %s ended before its run did (%s): %s is %s", job.job_id, state, p.run_dir, status)
        returns.append(job_return(launcher, p, math.nan))
    return returns


def stuck(reason: str) -> str | None:
    """What a pending reason means when waiting will not cure it; None when it will."""
    if reason in STUCK:
        return STUCK[reason]
    if "PerJob" in reason:  # QOSMaxCpuPerJobLimit, AssocMaxWallDurationPerJobLimit, ...
        return "it is above a per-job limit of its QOS or account"
    return None


def record_ended(run_dir: Path, job_id: str, state: str, error: str | None = None) -> str:
    """A job SLURM ended without the run's own result (`state`: sacct's, `error`: the trace of
    an exception raised outside the run): keep what the run recorded (a final status, or
    `interrupted` with a last.pt to go on from), else record it; returns the status it has."""
    status = (report.read(run_dir) or {}).get("status")
    if status in (*report.FINISHED, report.FAILED) or (
        status == report.INTERRUPTED and (run_dir / "last.pt").is_file()
    ):
        return status
    run_dir.mkdir(parents=True, exist_ok=True)
    if error:
        status, message = report.FAILED, f"SLURM job {job_id} ({state}) raised: {error.strip().splitlines()[-1]}"
        (run_dir / "error.txt").write_text(error)
    else:
        status, message = (
            report.CANCELLED,
            f"SLURM job {job_id} ended before the run did: {state}{HINTS.get(state.split()[0], '')}",
        )
    report.write(run_dir, status, message)
    return status


def queue(job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """squeue's state and reason of each of these jobs still in the queue (array tasks one by
    one); None when squeue cannot say."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    try:
        done = subprocess.run(
            ["squeue", "--noheader", "--array", "--format=%i|%T|%r", "--jobs", ",".join(arrays)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode:  # every job gone and purged reads "Invalid job id specified"
        return {} if "Invalid job id" in done.stderr else None
    rows = (line.split("|") for line in done.stdout.splitlines())
    return {row[0]: (row[1], row[2]) for row in rows if len(row) == 3}


def warn_stuck(reasons: dict[str, str], names: dict[str, str], told: set[tuple[str, str]]) -> None:
    """Warn once per job and reason about jobs pending for a reason that waiting does not cure
    (`names`: job id -> the point's run directory name)."""
    by_reason: dict[str, list[str]] = {}
    for job_id, reason in reasons.items():
        if stuck(reason) and (job_id, reason) not in told:
            told.add((job_id, reason))
            by_reason.setdefault(reason, []).append(job_id)
    for reason, ids in by_reason.items():
        shown = ", ".join(f"{i} ({names.get(i, '?')})" for i in ids[:5]) + (
            f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        )
        log.warning(
            "%d SLURM job(s) pending (%s) and will not start as asked: %s. Jobs: %s",
            len(ids),
            reason,
            stuck(reason),
            shown,
        )
