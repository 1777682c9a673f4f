"""What dltips relies on beyond its dependencies' public API, pinned to their own behaviour: an
upgrade that changes one fails here, naming the dltips module to re-check (see STYLE.md). The
versions these pass with are the upper bounds of pyproject.toml's dependencies."""

from __future__ import annotations

import ast
import inspect
import os
import signal
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf, open_dict


def changed(dependency: str, module: str, what: str) -> str:
    """The failure's message: what changed, and what to re-check."""
    return (
        f"{dependency} changed {what}, which {module} relies on: re-check {module} against the installed version, "
        "then this test and the version bound in pyproject.toml"
    )


# --- TensorBoard: dltips.observe.writer swaps the writer thread for writes in the calling thread


def test_summary_writers_event_file_holds_tensorboards_async_writer(tmp_path):
    from tensorboard.summary.writer.event_file_writer import _AsyncWriter
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    threaded = getattr(writer.file_writer.event_writer, "_async_writer", None)
    why = changed(
        "tensorboard/torch", "dltips.observe.writer.open_writer", "SummaryWriter.file_writer.event_writer._async_writer"
    )
    assert isinstance(threaded, _AsyncWriter), why
    assert callable(threaded._worker.stop) and all(
        callable(getattr(threaded._writer, m)) for m in ("write", "flush", "close")
    ), why
    writer.close()


def test_open_writer_writes_in_the_calling_thread_what_tensorboard_reads_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    from dltips.observe.writer import SyncRecords, log_scalars, open_writer

    why = changed("tensorboard/torch", "dltips.observe.writer", "how a SummaryWriter writes its event file")
    threads = sum(isinstance(t, _AsyncWriterThread) for t in threading.enumerate())
    writer = open_writer(tmp_path, purge_step=2)
    # open_writer leaves an unknown writer as it is: without this, the 6% it saves would go silently
    assert isinstance(writer.file_writer.event_writer._async_writer, SyncRecords), why
    assert sum(isinstance(t, _AsyncWriterThread) for t in threading.enumerate()) == threads, (
        why + " (its thread is left running)"
    )
    writer.add_scalar("train/loss", 0.5, 3)
    log_scalars(writer, {"val/acc": torch.tensor(0.25), "epoch": 1}, 4)
    writer.flush()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    events = list(EventFileLoader(str(path)).Load())
    assert events[0].file_version == "brain.Event:2", why + " (the file's first event is its version)"
    assert [e.session_log.status for e in events if e.HasField("session_log")] == [1] and events[2].step == 2, (
        why + " (purge_step's START)"
    )
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    assert scalars == {"train/loss": [(3, 0.5)], "val/acc": [(4, 0.25)], "epoch": [(4, 1.0)]}, why
    writer.close()
    writer.close()  # the recorder closes it, and so may whoever opened it


# --- Hydra: dltips.launch.stacked is a copy of Hydra's BasicLauncher.launch

BASIC_LAUNCH_CALLS = [  # the calls of hydra 1.3's BasicLauncher.launch, in order
    "setup_globals",
    "configure_log",
    "Path(str(sweep_dir)).mkdir",
    "Path",
    "str",
    "log.info",
    "len",
    "enumerate",
    "' '.join",
    "filter_overrides",
    "log.info",
    "self.hydra_context.config_loader.load_sweep_config",
    "list",
    "open_dict",
    "run_job",
    "runs.append",
    "configure_log",
]


def test_basic_launcher_launches_as_the_stacked_launcher_copies_it():
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    tree = ast.parse(textwrap.dedent(inspect.getsource(BasicLauncher.launch)))
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    why = changed("hydra-core", "dltips.launch.stacked.launch", "BasicLauncher.launch, of which it is a copy")
    assert [ast.unparse(c.func) for c in calls] == BASIC_LAUNCH_CALLS, why
    (run,) = [c for c in calls if ast.unparse(c.func) == "run_job"]
    keywords = {k.arg: ast.unparse(k.value) for k in run.keywords}
    assert keywords == {
        "hydra_context": "self.hydra_context",
        "task_function": "self.task_function",
        "config": "sweep_config",
        "job_dir_key": "'hydra.sweep.dir'",
        "job_subdir_key": "'hydra.sweep.subdir'",
    }, why
    assigned = {ast.unparse(t) for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets}
    assert {"sweep_config.hydra.job.id", "sweep_config.hydra.job.num"} <= assigned, why


@pytest.fixture
def hydra_context(tmp_path):
    """Hydra's context and a sweep's master config, of a config `x` whose sweep.subdir needs
    HydraConfig (`hydra:`); logging left as it is."""
    from hydra import initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import HydraContext, RunMode

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/config.yaml").write_text("x: 0\nhydra:\n  sweep:\n    subdir: ${hydra:job.num}_${x}\n")
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        overrides = [f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra/job_logging=none", "hydra/hydra_logging=none"]
        master = loader.load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)
        yield HydraContext(config_loader=loader, callbacks=Callbacks()), master


def test_run_job_runs_a_job_as_the_stacked_and_slurm_launchers_expect(hydra_context, tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals

    from dltips.launch.slurm import point

    context, master = hydra_context
    why = changed(
        "hydra-core",
        "dltips.launch.stacked.launch and dltips.launch.slurm.point",
        "hydra.core.utils.run_job or the HydraConfig singleton",
    )
    before = HydraConfig.instance().cfg
    setup_globals()
    configure_log(master.hydra.hydra_logging, master.hydra.verbose)
    assert list(filter_overrides(["x=1", "hydra.verbose=true"])) == ["x=1"], why
    sweep_config = context.config_loader.load_sweep_config(master, ["x=1"])
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = sweep_config.hydra.job.num = 3
    ret = run_job(
        hydra_context=context,
        task_function=lambda cfg: HydraConfig.get().runtime.output_dir,
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    out = tmp_path / "sweep" / "3_1"
    assert (
        ret.status == JobStatus.COMPLETED and ret.return_value == str(out) and (out / ".hydra/config.yaml").is_file()
    ), why
    assert "job_logging" in ret.hydra_cfg.hydra, why
    ret.return_value = 0.5  # the stacked launcher's value, set after the stack trained
    assert ret.return_value == 0.5, why
    assert HydraConfig.instance().cfg is before, why + " (run_job restores the singleton's cfg, as point does)"
    # dltips.launch.slurm resolves the directory as run_job does, with HydraConfig set to the job's config
    launcher = SimpleNamespace(hydra_context=context, config=master, stack=False)
    assert point(launcher, ["x=1"], 3).run_dir == out and HydraConfig.instance().cfg is before, why
    done = JobReturn(overrides=["x=1"], working_dir=str(out), task_name="config")
    done.status, done.return_value = JobStatus.COMPLETED, 0.5
    assert done.return_value == 0.5, why


# --- hydra-submitit-launcher and submitit: dltips.launch.slurm submits the launcher's jobs itself


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """srun and sbatch that submit nothing (submitit's SLURM executor asks for both); sbatch
    keeps the script it is given (bin/submitted.sh)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (
        ("srun", "exit 0"),
        ("sbatch", 'cp "$1" "$(dirname "$0")/submitted.sh"; echo Submitted batch job 4242'),
    ):
        (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_slurm_launchers_jobs_are_submitted_as_submitits_launcher_submits_them(fake_slurm, tmp_path):
    from hydra.core.singleton import Singleton
    from submitit.helpers import DelayedSubmission

    from dltips.launch.slurm import Point, submit
    from hydra_plugins.dltips_slurm.slurm_launcher import SlurmLauncher
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

    why = changed(
        "hydra-submitit-launcher/submitit",
        "dltips.launch.slurm.submit",
        "the SlurmLauncher's internals or submitit's executor",
    )
    params = OmegaConf.to_container(OmegaConf.structured(SlurmQueueConf))
    params |= {"submitit_folder": str(tmp_path / "submitit/%j"), "name": "pinned"}
    del params["_target_"]
    launcher = SlurmLauncher(**params)  # as Hydra instantiates it
    launcher.setup(
        hydra_context=None,
        task_function=print,
        config=OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}}),
    )
    assert launcher._EXECUTOR == "slurm" and launcher.params == params and launcher.config is not None, why
    call = ["self", "sweep_overrides", "job_dir_key", "job_num", "job_id", "singleton_state"]
    assert list(inspect.signature(BaseSubmititLauncher.__call__).parameters) == call, why
    assert callable(getattr(launcher, "checkpoint", None)), why + " (submitit requeues only a callable with checkpoint)"
    # submitit's executor accepts every parameter as submit() names it (it raises on one it does not know)
    jobs = submit(launcher, [[Point(5, ["x=1"], tmp_path / "a")], [Point(6, ["x=2"], tmp_path / "b")]])
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1"], why  # one array, as dltips.launch.slurm.wait expects
    # SLURM's signal before the time limit: the one dltips.run.interrupt hands on to submitit's handler
    assert f"--signal=USR2@{params['signal_delay_s']}" in (fake_slurm / "submitted.sh").read_text(), why
    for job, idx, overrides in zip(jobs, (5, 6), (["x=1"], ["x=2"])):
        delayed = DelayedSubmission.load(job.paths.submitted_pickle)
        assert isinstance(delayed.function, SlurmLauncher), why
        args = inspect.signature(delayed.function.__call__).bind(*delayed.args, **delayed.kwargs).arguments
        assert (args["sweep_overrides"], args["job_dir_key"], args["job_num"]) == (overrides, "hydra.sweep.dir", idx), (
            why
        )
        assert set(args["singleton_state"]) == set(Singleton.get_state()), why
        # what submitit's signal handler calls to requeue the job at its time limit
        requeued = delayed.function.checkpoint(*delayed.args)
        assert (
            isinstance(requeued, DelayedSubmission)
            and requeued.function is delayed.function
            and requeued.args == delayed.args
        ), why
    assert callable(jobs[0].done) and callable(jobs[0].results) and isinstance(jobs[0].paths.result_pickle, Path), why


def test_a_stacked_slurm_sweep_submits_one_task_per_stack_in_arrays_of_max_array_size(fake_slurm, tmp_path):
    from submitit.helpers import DelayedSubmission

    from dltips.launch.slurm import Point, submit
    from hydra_plugins.dltips_slurm.slurm_launcher import SlurmLauncher, StackTask
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    why = changed("hydra-submitit-launcher/submitit", "dltips.launch.slurm.submit", "submitit's executor")
    params = OmegaConf.to_container(OmegaConf.structured(SlurmQueueConf))
    params |= {"submitit_folder": str(tmp_path / "submitit/%j")}
    del params["_target_"]
    launcher = SlurmLauncher(stack=True, max_members=2, max_array_size=2, **params)
    assert launcher.params == params, "dltips' own keys are not handed to sbatch"
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    launcher.setup(hydra_context=None, task_function=print, config=config)
    a, b, c, d = (Point(i, [f"x={i}"], tmp_path / str(i)) for i in range(4))
    jobs = submit(launcher, [[a, b], [c], [d]])
    # an array of 2 tasks, then one of 1 (which submitit submits as a plain job)
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242"], "arrays of at most max_array_size=2 tasks"
    points = [[(["x=0"], 0), (["x=1"], 1)], [(["x=2"], 2)], [(["x=3"], 3)]]
    for job, expected in zip(jobs, points):
        delayed = DelayedSubmission.load(job.paths.submitted_pickle)
        assert isinstance(delayed.function, StackTask) and delayed.args[0] == expected, why
        requeued = delayed.function.checkpoint(*delayed.args)  # submitit's handler, at the time limit
        assert requeued.function is delayed.function and requeued.args == delayed.args, why


@pytest.mark.parametrize("key,value", [("max_members", 0), ("max_array_size", -1), ("max_members", "8")])
def test_slurm_launchers_own_keys_are_checked(key, value):
    from hydra_plugins.dltips_slurm.slurm_launcher import SlurmLauncher

    with pytest.raises(ValueError, match=rf"^Invalid hydra.launcher.{key}: {value!r}; allowed: an integer >= 1$"):
        SlurmLauncher(**{key: value})


def test_submitits_refusal_to_requeue_is_what_the_job_recognises():
    from submitit.core.job_environment import SignalHandler
    from submitit.core.utils import FailedJobError, UncompletedJobError
    from submitit.helpers import DelayedSubmission

    from dltips.launch.job import not_requeued

    why = changed("submitit", "dltips.launch.job.not_requeued and dltips.run.interrupt.hand_on", "its SIGUSR2 handler")
    assert issubclass(FailedJobError, UncompletedJobError), why
    delayed = DelayedSubmission(print)
    delayed.set_timeout(0, 0)  # at its time limit with no requeue left
    handler = SignalHandler(SimpleNamespace(global_rank=0), None, delayed)
    with pytest.raises(UncompletedJobError) as refused:
        handler.checkpoint_and_try_requeue(signal.SIGUSR2, None)  # as hand_on calls it
    assert not_requeued(refused.value), why
