"""Process start to the first optimizer step, for `dltips-train` and a plain torch script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

STARTUP_MARKS = ("interpreter", "imports", "setup", "first_step")


STARTUP_CHILDREN = {
    # Exactly what the dltips-train script runs, nothing imported before it: the marks are taken
    # as the modules they need finish loading (a finder first in sys.meta_path), and a hook
    # records the first step and exits.
    "dltips-train": """
import importlib.util, json, os, sys, time
marks = {"interpreter": time.time()}
def first_step(*_):
    marks["first_step"] = time.time()
    print("BENCH-MARKS " + json.dumps(marks), flush=True)
    os._exit(0)
def on_build(build):  # dltips.engine.build: torch and the training code imported
    marks["imports"] = time.time()
    setup = build.setup
    def timed_setup(*args, **kwargs):  # build_networks() looks setup up at call time
        s = setup(*args, **kwargs)
        marks["setup"] = time.time()
        return s
    build.setup = timed_setup
AFTER = {"dltips.engine.build": on_build,
         "torch.optim.optimizer": lambda m: m.register_optimizer_step_post_hook(first_step)}
class After:
    def find_spec(self, name, path=None, target=None):
        if name not in AFTER:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run, then = spec.loader.exec_module, AFTER.pop(name)
        def exec_module(module):
            run(module)
            then(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, After())
import dltips.launch.cli
sys.argv = ["dltips-train", *sys.argv[1:]]
dltips.launch.cli.main()
""",
    # The floor: import torch, build the digits MLP, one step on random data.
    "plain torch script": """
import json, sys, time
marks = {"interpreter": time.time()}
import torch
marks["imports"] = time.time()
model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), \
torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
marks["setup"] = time.time()
torch.nn.functional.cross_entropy(model(torch.randn(32, 64)), torch.randint(0, 10, (32,))).backward()
optimizer.step()
marks["first_step"] = time.time()
print("BENCH-MARKS " + json.dumps(marks), flush=True)
""",
}


def parse_marks(output: str, launched: float) -> dict[str, float]:
    """Seconds from launch: interpreter up, imports done, setup done, first optimizer step done."""
    line = next(line for line in output.splitlines() if line.startswith("BENCH-MARKS "))
    marks = json.loads(line.removeprefix("BENCH-MARKS "))
    return {key: marks[key] - launched for key in STARTUP_MARKS}


def child_env(pycache: Path, same_threads: bool = True) -> dict[str, str]:
    """A timed child's environment: the torch threads this process uses (`same_threads`; else
    the machine's own, as a user's command has them), and Python's bytecode cache on. Where
    PYTHONDONTWRITEBYTECODE turns it off (some sandboxes and CI images), every process would
    compile torch from source again, seconds that no installed package pays: the children then
    keep their cache under `pycache` instead."""
    env = os.environ | ({"OMP_NUM_THREADS": str(torch.get_num_threads())} if same_threads else {})
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def time_startup(name: str, run_dir: Path, pycache: Path) -> dict[str, float]:
    args = (
        ["trainer.max_epochs=1", "trainer.progress=log", f"hydra.run.dir={run_dir}"] if name == "dltips-train" else []
    )
    launched = time.time()  # wall clock: the child's marks use the same one
    proc = subprocess.run(
        [sys.executable, "-c", STARTUP_CHILDREN[name], *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=child_env(pycache),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return parse_marks(proc.stdout, launched)
