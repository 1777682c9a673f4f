"""The `dltips-train` command's own help page, and that it answers without importing torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dltips.config.resolvers import CONFIG_DIR
from dltips.config.validate import compose_train

# Exactly what the dltips-train console script runs, then whether torch came with it.
COMMAND = """
import sys
from dltips.launch.cli import main
sys.argv = ["dltips-train", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert exit.code in (None, 0), exit.code
print("torch imported:", "torch" in sys.modules)
"""


def dltips_train(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", COMMAND, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def help_page(tmp_path_factory) -> str:
    cwd = tmp_path_factory.mktemp("help")
    page = dltips_train("--help", cwd=cwd)
    assert not any(cwd.iterdir())  # a help page writes no run directory
    return page


def test_help_is_dltips_own_page(help_page):
    assert help_page.startswith("dltips-train: train a network")
    assert "powered by Hydra" not in help_page
    for section in ("== Config groups", "== Main keys", "== Outputs", "== Examples"):
        assert section in help_page
    assert "outputs/runs/<date>_<time>_<overrides>/" in help_page
    assert "outputs/sweeps/<date>_<time>/<swept keys>/" in help_page
    assert "dltips-train -m experiment=vanishing_gradient" in help_page
    assert "tensorboard --logdir outputs" in help_page


def test_help_lists_every_config_group_with_its_options(help_page):
    """Hydra's $APP_CONFIG_GROUPS, checked against configs/ itself."""
    groups = sorted(p for p in Path(CONFIG_DIR).iterdir() if p.is_dir() and p.name != "hydra")
    assert {"data", "model", "optimizer", "experiment"} <= {g.name for g in groups}
    for group in groups:
        options = ", ".join(sorted(p.stem for p in group.glob("*.yaml")))
        assert f"\n{group.name}: {options}\n" in help_page
    assert re.search(r"\noptimizer: .*\badagrad\b.*\bmomentum\b", help_page)


def test_help_main_keys_are_real_keys(help_page):
    section = help_page.split("== Main keys")[1].split("== Outputs")[0]
    rows = [line for line in section.splitlines() if re.match(r"[a-z_.]+(, [a-z_.]+)*  ", line)]
    keys = [key for row in rows for key in re.split(r"\s{2,}", row)[0].split(", ")]
    assert {"seed", "model.activation", "optimizer.lr", "regularizer.early_stopping.patience", "trainer.seeds"} <= set(
        keys
    )
    cfg = compose_train([])
    missing = object()
    assert [k for k in keys if OmegaConf.select(cfg, k, default=missing) is missing] == []


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["--info"], ["optimizer=adam", "--help"]])
def test_answers_without_importing_torch(args, tmp_path):
    assert dltips_train(*args, cwd=tmp_path).splitlines()[-1] == "torch imported: False"


# The command's start, watched by a callback on every pass of Python's garbage collector.
START = """
import gc, sys
passes = []
gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
from dltips.launch import cli, collector
passes.clear()
collector.start_uncollected()  # as cli.main does for a command that trains
from omegaconf import OmegaConf
OmegaConf.create({"a": [{"b": i} for i in range(20000)]})  # as Hydra composing: garbage, and no pass
from dltips.launch.job import training_code_loaded
training_code_loaded()
training_code_loaded()  # once a process
print(len(passes), gc.get_freeze_count(), gc.isenabled(), "torch" in sys.modules)
"""


def test_a_run_imports_torch_without_a_collector_pass_then_leaves_it_out_of_every_pass():
    done = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    passes, frozen, enabled, torch_imported = done.stdout.split()
    # torch is about a million objects: each full pass over them took 60 ms, five of them a start
    assert (passes, enabled, torch_imported) == ("0", "True", "True")
    assert int(frozen) > 200_000
    assert "leaked" not in done.stderr  # unfrozen for the interpreter's exit (nanobind counts its objects)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "--cfg", "job"], "dltips-train: error: --multirun and --cfg do not go together"),
        (["-m", "--info"], "dltips-train: error: --multirun and --info do not go together"),
        (["-m", "hydra/launcher=nonexistent", "seed=0,1"], "dltips-train: error: In 'hydra/config': Could not find"),
        (["optimizer=nonexistent"], "dltips-train: error: In 'train': Could not find 'optimizer/nonexistent'"),
        (["optimizer.momentum=0.5"], "dltips-train: error: Could not override 'optimizer.momentum'. To append"),
    ],
)
def test_hydras_own_errors_are_one_line_without_an_unrelated_hint(args, message, tmp_path):
    done = subprocess.run([sys.executable, "-m", "dltips.train", *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1, done.stderr
    if "Could not find" in message:  # the group's options, in the same line
        assert "; allowed: " in done.stderr and ("adam" in done.stderr or "stacked" in done.stderr)
    assert "hydra.run.dir / hydra.sweep.dir in a writable directory" not in done.stderr
    assert not (tmp_path / "outputs").exists()


INTERRUPTED_WHILE_LOADING = """
import importlib.abc, runpy, signal, sys

class Interrupting(importlib.abc.MetaPathFinder):  # Ctrl-C while the command's modules load
    def find_spec(self, name, path, target=None):
        if name == "omegaconf":  # the first of Hydra's, torch's and dltips' own heavy imports
            raise KeyboardInterrupt(signal.SIGINT)

sys.meta_path.insert(0, Interrupting())
"""

STARTS = {
    "dltips-train": "from dltips.launch.command import main\nmain()",
    "python -m dltips.train": "runpy.run_module('dltips.train', run_name='__main__', alter_sys=True)",
}


@pytest.mark.parametrize("start", sorted(STARTS))
def test_a_signal_while_the_command_loads_is_one_line(start, tmp_path):
    pyproject = (Path(CONFIG_DIR).parent / "pyproject.toml").read_text()
    assert 'dltips-train = "dltips.launch.command:main"' in pyproject  # the console script starts here
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WHILE_LOADING + STARTS[start]], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "dltips-train: interrupted by SIGINT while starting"


ENDS = """
import atexit, pathlib, sys
from dltips.launch import cli, command

def run():
    atexit.register(lambda: pathlib.Path("handler-ran").write_text("yes"))  # a handler of the run's
    print("buffered", end="")  # still in stdout's buffer when the process ends
    {end}

cli.main = run
command.main()
"""


@pytest.mark.parametrize(
    "end, code, stderr",
    [
        ("return", 0, ""),
        ("sys.exit(2)", 2, ""),
        ("sys.exit('dltips-train: error: one line')", 1, "dltips-train: error: one line"),
        ("raise RuntimeError('boom')", 1, "RuntimeError: boom"),
    ],
)
def test_the_command_ends_with_its_status_after_every_exit_handler(end, code, stderr, tmp_path):
    # The interpreter's teardown is skipped (dltips.launch.command.end_now): what it would do
    # that matters still happens — the status, the handlers, the buffered output.
    done = subprocess.run(
        [sys.executable, "-c", ENDS.format(end=end)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == "buffered" and stderr in done.stderr
    assert (tmp_path / "handler-ran").read_text() == "yes"
