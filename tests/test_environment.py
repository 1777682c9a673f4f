"""environment.json: where a run ran, checked against git and torch themselves."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess

import torch

from dltips.run import environment
from dltips.train import train
from tests.conftest import compose_config

RUN = ["data=synthetic", "data.source.n_samples=200", "trainer.max_epochs=1", "trainer.progress=log"]


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_code_is_the_trees_commit_its_diff_and_its_lock_file(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("x = 1\n")
    (repo / "uv.lock").write_text("lock\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = environment.code_at(repo / "pkg")
    assert clean["git_commit"] == git(repo, "rev-parse", "HEAD").strip() and clean["git_dirty"] is False
    assert clean["uv_lock"] == hashlib.sha256(b"lock\n").hexdigest()[:12]
    (repo / "pkg" / "a.py").write_text("x = 2\n")
    dirty = environment.code_at(repo / "pkg")
    assert dirty["git_dirty"] is True
    assert dirty["git_diff"] == hashlib.sha256(git(repo, "diff", "HEAD").encode()).hexdigest()[:12]
    assert environment.code_at(tmp_path)["git_commit"] == environment.UNKNOWN  # in no git tree


def test_every_run_records_its_environment_and_names_it_in_its_start_line(tmp_path, caplog):
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="dltips"):
        train(compose_config(RUN, run))
    record = json.loads((run / "environment.json").read_text())
    assert record["torch"] == torch.__version__ and record["threads"] == torch.get_num_threads()
    assert record["cuda"] == (torch.version.cuda or "none") and record["device"] == "cpu"
    assert record["deterministic_algorithms"] == torch.are_deterministic_algorithms_enabled()
    assert record == environment.read(run)
    start = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("run directory"))
    assert f"commit {record['git_commit'][:7]}" in start and f"torch {torch.__version__}" in start


def test_a_run_resumed_elsewhere_says_what_changed(tmp_path, caplog):
    run = tmp_path / "run"
    train(compose_config(RUN, run))
    before = environment.read(run) | {"torch": "1.0.0"}
    (run / "environment.json").write_text(json.dumps(before))
    with caplog.at_level(logging.WARNING, logger="dltips"):
        train(compose_config([f"resume={run}", "trainer.max_epochs=2"], tmp_path / "ignored"))
    assert f"resumed in another environment: torch 1.0.0 -> {torch.__version__}" in caplog.text
    assert environment.read(run)["torch"] == torch.__version__
