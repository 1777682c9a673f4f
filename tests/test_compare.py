"""dltips-compare on hand-made run directories with known numbers, and once on real runs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from dltips.compare import DDOF, find_runs, group_stats, load_run, main, parse_overrides, summarize
from tests.conftest import compose_config

BASE = {"sigmoid": 0.25, "relu": 0.5}
SEEDS = (0, 1, 2)
STEPS_PER_EPOCH = 10


def curves(activation: str, seed: int) -> tuple[list[float], list[float]]:
    """val/acc peaks at epoch 2, val/loss bottoms out there; multiples of 1/64 are exact in
    float32, so what comes back from the event file equals what went in."""
    acc = [BASE[activation] + (k + seed / 2) / 32 for k in (0, 2, 3, 1)]
    loss = [x + seed / 64 for x in (1.0, 0.5, 0.25, 0.375)]
    return acc, loss


def final(activation: str, seed: int) -> dict[str, float]:
    # Not float32 values: metrics.json numbers must come through untouched.
    b = BASE[activation]
    return {"val/acc": b + 0.11 * seed, "val/loss": 1.3 - 0.07 * seed, "test/acc": b + 0.013 * seed, "test/loss": 1.1 + 0.3 * seed}


def make_run(path: Path, activation: str, seed: int, hydra: bool = True) -> None:
    path.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"seed": seed, "model": {"activation": activation, "depth": 2}}), path / "config.yaml")
    if hydra:
        (path / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create([f"model.activation={activation}", f"seed={seed}"]), path / ".hydra" / "overrides.yaml")
    acc, loss = curves(activation, seed)
    writer = SummaryWriter(log_dir=str(path))
    for epoch, (a, l) in enumerate(zip(acc, loss)):
        step = STEPS_PER_EPOCH * (epoch + 1)  # x axis = optimizer step, as the loop logs it
        writer.add_scalar("val/acc", a, step)
        writer.add_scalar("val/loss", l, step)
        writer.add_scalar("epoch", epoch, step)
    writer.close()
    metrics = final(activation, seed) | {"train/loss": 0.1, "train/acc": 0.9, "epochs": len(acc), "steps": STEPS_PER_EPOCH * len(acc)}
    report = {"status": "completed", "message": "", "stopped_early": False, "metrics": metrics, "time_s": 1.5 + seed}
    (path / "metrics.json").write_text(json.dumps(report))


def name(activation: str, seed: int) -> str:
    return f"model.activation={activation},seed={seed}"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """2 activations × 3 seeds, summarized once (grouped by activation) for all tests below."""
    root = tmp_path_factory.mktemp("sweep")
    for activation in BASE:
        for seed in SEEDS:
            make_run(root / name(activation, seed), activation, seed)
    rows = summarize(root, group="model.activation")
    return root, {r["run"]: r for r in rows}


def test_find_runs_finds_every_run(sweep):
    root, _ = sweep
    assert find_runs(root) == sorted(root / name(a, s) for a in BASE for s in SEEDS)


def test_rows_hold_final_and_best_metrics(sweep):
    _, rows = sweep
    assert len(rows) == 6
    for activation in BASE:
        for seed in SEEDS:
            row, acc, loss = rows[name(activation, seed)], *curves(activation, seed)
            assert {k: row[k] for k in final(activation, seed)} == final(activation, seed)
            assert row["best val/acc"] == max(acc) and row["best val/loss"] == min(loss)
            assert row["status"] == "completed" and row["epochs"] == 4 and row["time_s"] == 1.5 + seed
            assert row["overrides"] == f"model.activation={activation} seed={seed}"
            assert row["group"] == activation
            np.testing.assert_array_equal(row["curve"][0], [0, 1, 2, 3])  # against epoch, not step
            np.testing.assert_array_equal(row["curve"][1], acc)


def test_csv_and_markdown_contain_the_numbers(sweep):
    root, rows = sweep
    with open(root / "summary.csv") as f:
        table = {r["run"]: r for r in csv.DictReader(f)}
    assert table.keys() == rows.keys()
    md = (root / "summary.md").read_text()
    for run, row in rows.items():
        for key in ("val/acc", "val/loss", "test/acc", "test/loss", "best val/acc", "best val/loss"):
            assert float(table[run][key]) == row[key]  # full precision in the CSV
            assert f"{row[key]:.4f}" in md
        assert table[run]["model.activation"] == row["group"]
        assert f"| {run} |" in md


def test_group_mean_and_std_match_numpy(sweep):
    root, rows = sweep
    stats = {s["group"]: s for s in group_stats(list(rows.values()))}
    assert stats.keys() == set(BASE)
    md = (root / "summary.md").read_text()
    assert DDOF == 1  # sample std over seeds, as below
    for activation in BASE:
        assert stats[activation]["n"] == 3
        for key in ("val/acc", "val/loss", "test/acc", "test/loss"):
            values = np.array([final(activation, s)[key] for s in SEEDS])
            mean, std = stats[activation][f"{key} mean"], stats[activation][f"{key} std"]
            assert mean == pytest.approx(values.mean(), rel=1e-12)
            assert std == pytest.approx(values.std(ddof=1), rel=1e-12)
            assert f"{mean:.4f} ± {std:.4f}" in md


def test_curves_png_is_a_real_image(sweep):
    root, _ = sweep
    data = (root / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_failed_and_incomplete_runs_are_listed(tmp_path, capsys):
    make_run(tmp_path / "done", "relu", 0)
    failed = tmp_path / "crashed"
    (failed / ".hydra").mkdir(parents=True)
    (failed / "error.txt").write_text("Traceback ...\nRuntimeError: out of memory\n")
    (tmp_path / "running" / ".hydra").mkdir(parents=True)
    rows = {r["run"]: r for r in summarize(tmp_path, group="model.activation", out=tmp_path / "report")}
    assert rows.keys() == {"done", "crashed", "running"}
    assert rows["crashed"]["status"] == "failed" and rows["crashed"]["message"] == "RuntimeError: out of memory"
    assert rows["running"]["status"] == "incomplete" and rows["running"]["val/acc"] is None
    # Runs without numbers don't enter the group statistics.
    assert {s["group"]: s["n"] for s in group_stats(list(rows.values()))} == {"relu": 1, "None": 0}
    assert (tmp_path / "report" / "summary.md").is_file() and not (tmp_path / "summary.md").exists()
    # Ungrouped: no group table, one curve per run.
    assert main([str(tmp_path), "--out", str(tmp_path / "plain")]) == 0
    printed = capsys.readouterr().out
    assert "crashed" in printed and "failed" in printed and "mean ± std" not in printed
    assert (tmp_path / "plain" / "curves.png").is_file()


def test_overrides_from_the_directory_name():
    assert parse_overrides("2026-11-28_00-38-43_trainer.max_epochs=3,model.widths=[1,2]") == [
        "trainer.max_epochs=3",
        "model.widths=[1,2]",
    ]
    assert parse_overrides("2026-11-28_00-39-09") == [] and parse_overrides("0") == []


def test_load_run_falls_back_to_the_name_without_hydra(tmp_path):
    make_run(tmp_path / "model.activation=relu,seed=1", "relu", 1, hydra=False)
    row = load_run(tmp_path / "model.activation=relu,seed=1", group="seed")
    assert row["overrides"] == "model.activation=relu seed=1" and row["group"] == "1"


def test_main_prints_tables_and_exits_0(sweep, tmp_path, capsys):
    root, _ = sweep
    assert main([str(root), "--group", "model.activation", "--metric", "val/loss", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert name("relu", 2) in printed and "mean ± std" in printed
    assert {p.name for p in tmp_path.iterdir()} == {"summary.csv", "summary.md", "curves.png"}


def test_main_rejects_missing_path_and_empty_dir(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main([str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no runs" in capsys.readouterr().err


def test_summarize_real_runs(tmp_path):
    from dltips.train import train

    fast = ["data=synthetic", "data.source.n_samples=300", "trainer.max_epochs=2", "trainer.progress=log"]
    returned = {}
    for activation in ("sigmoid", "relu"):
        run = tmp_path / "sweep" / f"model.activation={activation}"
        cfg = compose_config([*fast, f"model.activation={activation}"])
        cfg.output_dir = str(run)  # set directly: the '=' in the path would not parse as an override
        returned[run.name] = train(cfg)
    rows = summarize(tmp_path / "sweep", group="model.activation")
    assert [r["run"] for r in rows] == sorted(returned)
    for row in rows:
        metrics = returned[row["run"]]
        assert row["status"] == "completed" and row["epochs"] == 2
        assert row["val/acc"] == metrics["val/acc"] and row["test/loss"] == metrics["test/loss"]
        # The last epoch's val/acc is the final one (no early stopping), stored as float32.
        assert row["best val/acc"] >= metrics["val/acc"] - 1e-6
        assert row["group"] == row["overrides"].split("=")[1]
        assert len(row["curve"][1]) == 2
    assert (tmp_path / "sweep" / "curves.png").stat().st_size > 10_000
