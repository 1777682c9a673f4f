"""dltips-compare on hand-made run directories with known numbers, and once on real runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from dltips.observe import compare_plots
from dltips.observe.compare import find_runs, group_stats, load_run, main, summarize
from dltips.observe.compare_groups import parse_overrides
from dltips.observe.compare_plots import CYCLE, WIDTH, band, curves_figure, geometric_mean, styles
from dltips.observe.intervals import mean_ci, mean_ci_curves
from dltips.observe.plots import COLORS
from dltips.observe.tags import EPOCH, GRADIENTS, old_name, per_layer
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
    return {
        "val/acc": b + 0.11 * seed,
        "val/loss": 1.3 - 0.07 * seed,
        "test/acc": b + 0.013 * seed,
        "test/loss": 1.1 + 0.3 * seed,
    }


def gradients(activation: str, seed: int) -> list[float]:
    """‖∂C/∂W^l‖, l = 1 … 3, at the first logged step: powers of 2, exact in float32; sigmoid's
    shrink by 4 per layer towards the input, relu's by 2."""
    base = 4.0 if activation == "sigmoid" else 2.0
    return [base ** (l - 3) * 2.0**-seed for l in (1, 2, 3)]


def write_gradients(writer: SummaryWriter, activation: str, seed: int, old_tags: bool) -> None:
    for l, g in enumerate(gradients(activation, seed), start=1):
        tag = old_name(per_layer(GRADIENTS, l)) if old_tags else per_layer(GRADIENTS, l)
        writer.add_scalar(tag, g, 5)  # the first logged step, before the first epoch ends
        writer.add_scalar(tag, 1.0, 15)
        writer.add_scalar(tag.replace("layer_", "log10_layer_"), math.log10(g), 5)  # not a norm
        writer.add_scalar(f"~delta/layer_{l}", 3.0, 5)  # another family


def make_run(
    path: Path,
    activation: str,
    seed: int,
    hydra: bool = True,
    status: str = "completed",
    grads: str | None = None,
    epoch_tag: str = "epoch",
) -> None:
    """A finished run; status "diverged": it stops after 2 epochs with the metrics of NaN logits.
    grads: "new" or "old" writes per-layer gradient norms under that tag name."""
    path.mkdir(parents=True)
    OmegaConf.save(
        OmegaConf.create({"seed": seed, "model": {"activation": activation, "depth": 2}}), path / "config.yaml"
    )
    if hydra:
        (path / ".hydra").mkdir()
        OmegaConf.save(
            OmegaConf.create([f"model.activation={activation}", f"seed={seed}"]), path / ".hydra" / "overrides.yaml"
        )
    acc, loss = curves(activation, seed)
    if status == "diverged":
        acc, loss = acc[:2], loss[:2]
    writer = SummaryWriter(log_dir=str(path))
    for epoch, (a, l) in enumerate(zip(acc, loss)):
        step = STEPS_PER_EPOCH * (epoch + 1)  # x axis = optimizer step, as the loop logs it
        writer.add_scalar("val/acc", a, step)
        writer.add_scalar("val/loss", l, step)
        writer.add_scalar(epoch_tag, epoch, step)
    if grads:
        write_gradients(writer, activation, seed, old_tags=grads == "old")
    writer.close()
    metrics = final(activation, seed) | {
        "train/loss": 0.1,
        "train/acc": 0.9,
        "epochs": len(acc),
        "steps": STEPS_PER_EPOCH * len(acc),
    }
    message = ""
    if status == "diverged":  # what the trainer reports: argmax of NaN logits is class 0
        metrics |= {
            "val/acc": 0.1,
            "val/loss": math.nan,
            "test/acc": 0.1,
            "test/loss": math.nan,
            "train/loss": math.nan,
        }
        message = "loss became nan at step 25 (epoch 2)"
    report = {"status": status, "message": message, "stopped_early": False, "metrics": metrics, "time_s": 1.5 + seed}
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


def test_group_mean_and_interval_are_mean_ci(sweep):
    root, rows = sweep
    stats = {s["group"]: s for s in group_stats(list(rows.values()))}
    assert stats.keys() == set(BASE)
    md = (root / "summary.md").read_text()
    for activation in BASE:
        assert stats[activation]["n"] == 3
        for key in ("val/acc", "val/loss", "test/acc", "test/loss"):
            mean, half = mean_ci([final(activation, s)[key] for s in SEEDS])
            assert (stats[activation][f"{key} mean"], stats[activation][f"{key} ci"]) == (mean, half)
            assert f"{mean:.4f} [{mean - half:.4f}, {mean + half:.4f}]" in md


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
    assert main([str(tmp_path), "--group", "none", "--out", str(tmp_path / "plain")]) == 0
    printed = capsys.readouterr().out
    assert "crashed" in printed and "failed" in printed and "Final metrics per setting" not in printed
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
    assert name("relu", 2) in printed and "Final metrics per setting: mean over its runs [95% t-interval" in printed
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


# --- a sweep with everything that goes wrong -----------------------------------------------------

RELU_DONE, RELU_DIVERGED = (0, 1, 2), (3, 4)


def make_unfinished(root: Path) -> None:
    """relu seed 5 raised (the sweep's record_failure); relu seed 6 is still running, 1 epoch in."""
    failed = root / name("relu", 5)
    (failed / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["model.activation=relu", "seed=5"]), failed / ".hydra" / "overrides.yaml")
    (failed / "error.txt").write_text("Traceback ...\nRuntimeError: out of memory\n")
    report = {"status": "failed", "message": "RuntimeError: out of memory", "metrics": {}}
    (failed / "metrics.json").write_text(json.dumps(report))
    running = root / name("relu", 6)
    (running / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["model.activation=relu", "seed=6"]), running / ".hydra" / "overrides.yaml")
    writer = SummaryWriter(log_dir=str(running))
    writer.add_scalar("val/acc", 0.5, STEPS_PER_EPOCH)
    writer.add_scalar(EPOCH, 0, STEPS_PER_EPOCH)
    writer.close()


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """relu: 3 completed, 2 diverged, 1 failed, 1 incomplete; sigmoid: 1 completed. All finished
    runs log per-layer gradient norms, seed 1 under the old tag names, seed 2 the new epoch tag."""
    root = tmp_path_factory.mktemp("messy")
    for seed in RELU_DONE + RELU_DIVERGED:
        status = "diverged" if seed in RELU_DIVERGED else "completed"
        make_run(
            root / name("relu", seed),
            "relu",
            seed,
            status=status,
            grads="old" if seed == 1 else "new",
            epoch_tag=EPOCH if seed == 2 else "epoch",
        )
    make_run(root / name("sigmoid", 0), "sigmoid", 0, grads="new")
    make_unfinished(root)
    return root


@pytest.fixture
def drawn(monkeypatch):
    """What summarize hands to each figure: {"curves" | "gradient_flow": (series, Figure)}."""
    seen = {}

    def spy(key: str, figure):
        def wrapped(series, *args, **kwargs):
            seen[key] = (series, figure(series, *args, **kwargs))
            return seen[key][1]

        return wrapped

    monkeypatch.setattr(compare_plots, "curves_figure", spy("curves", compare_plots.curves_figure))
    monkeypatch.setattr(compare_plots, "gradient_flow_figure", spy("gradient_flow", compare_plots.gradient_flow_figure))
    return seen


def md_sections(md: str) -> dict[str, str]:
    """summary.md's "## heading" -> the text under it, up to the next heading."""
    return {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in md.split("\n## ")[1:]}


def test_default_output_is_path_compare_and_leaves_the_sweep_summary_alone(sweep, capsys):
    root, _ = sweep  # summarize(root) wrote the sweep's own summary, as SweepSummary does
    before = {f: (root / f).read_bytes() for f in ("summary.csv", "summary.md", "curves.png")}
    runs = find_runs(root)
    assert main([str(root), "--group", "model.activation"]) == 0
    assert f"to {root / 'compare'}" in capsys.readouterr().out
    assert {p.name for p in (root / "compare").iterdir()} == {"summary.csv", "summary.md", "curves.png"}
    assert {f: (root / f).read_bytes() for f in before} == before  # byte for byte
    assert main([str(root)]) == 0  # a second time: compare/ is not taken for a run
    assert find_runs(root) == runs
    with open(root / "compare" / "summary.csv") as f:
        assert [r["run"] for r in csv.DictReader(f)] == [r.name for r in runs]


def test_find_runs_skips_the_compare_folder_even_if_it_looks_like_a_run(tmp_path):
    make_run(tmp_path / "a", "relu", 0)
    make_run(tmp_path / "compare", "relu", 1)
    assert find_runs(tmp_path) == [tmp_path / "a"]


def test_band_is_clipped_to_the_metric_range():
    mean, std = np.array([0.95, 0.5, 0.03]), np.array([0.17, 0.1, 0.1])
    lo, hi = band(mean, std, "val/acc")
    np.testing.assert_allclose(lo, [0.78, 0.4, 0.0])
    np.testing.assert_allclose(hi, [1.0, 0.6, 0.13])
    lo, hi = band(np.array([0.05, 2.0]), np.array([0.1, 1.0]), "val/loss")
    np.testing.assert_allclose(lo, [0.0, 1.0]) and np.testing.assert_allclose(hi, [0.15, 3.0])
    lo, hi = band(np.array([-1.0]), np.array([1.0]), "train/grad_norm_diff")  # unbounded
    np.testing.assert_allclose(lo, [-2.0]) and np.testing.assert_allclose(hi, [0.0])


def test_drawn_band_is_the_interval_of_the_mean_clipped_to_0_1():
    values = np.array([[0.50, 0.90, 0.98], [0.55, 0.80, 0.96], [0.52, 0.85, 0.70]])  # 3 runs × 3 epochs
    runs = [(np.arange(3.0), v) for v in values]
    fig = curves_figure({"relu": runs}, "val/acc", "t", grouped=True)
    (poly,) = fig.axes[0].collections
    mean, half = mean_ci_curves(values)
    assert mean[2] + half[2] > 1  # the last epoch's interval leaves [0, 1] upwards
    y = poly.get_paths()[0].vertices[:, 1]
    lower, upper = y[1:4], y[5:8][::-1]  # fill_between's path: the lower edge, then the upper one back
    np.testing.assert_allclose(lower, mean - half) and np.testing.assert_allclose(upper, np.minimum(mean + half, 1))


def test_legend_outside_colours_unique_and_fixed_for_known_names():
    labels = ["sigmoid", *(f"run {i}" for i in range(14))]
    runs = {label: [(np.arange(3.0), np.full(3, i / 20))] for i, label in enumerate(labels)}
    fig = curves_figure(runs, "val/acc", "val/acc per run", grouped=False)
    ax = fig.axes[0]
    fig.draw_without_rendering()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # right of the axes
    assert fig.get_size_inches()[0] > WIDTH  # widened for it
    colours = [line.get_color() for line in ax.lines]
    assert len(set(colours)) == 15 and colours[0] == COLORS["sigmoid"]
    assert ax.get_title() == "val/acc per run"


def test_styles_never_repeat_past_the_colour_cycle():
    labels = [f"lr={i}" for i in range(2 * len(CYCLE) + 5)]
    style = styles(labels)
    assert len({(s["color"], s["linestyle"]) for s in style.values()}) == len(labels)
    assert len({s["color"] for s in list(style.values())[: len(CYCLE)]}) == len(CYCLE)
    assert styles(["tanh", "adam"]) == {
        "tanh": {"color": COLORS["tanh"], "linestyle": "-"},
        "adam": {"color": COLORS["adam"], "linestyle": "-"},
    }


def test_diverged_runs_have_no_final_metrics_and_stay_out_of_the_means(messy, tmp_path, capsys):
    assert main([str(messy), "--group", "model.activation", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    rows = {r["run"]: r for r in summarize(messy, group="model.activation", out=tmp_path)}
    for seed in RELU_DIVERGED:
        row = rows[name("relu", seed)]
        assert row["status"] == "diverged" and all(
            row[k] is None for k in ("val/acc", "val/loss", "test/acc", "test/loss")
        )
        assert row["best val/acc"] == max(curves("relu", seed)[0][:2])  # its curve up to divergence
    stats = {s["group"]: s for s in group_stats(list(rows.values()))}["relu"]
    assert stats["n"] == 3 and stats["runs"] == 7
    for key in ("val/acc", "test/loss"):
        assert (stats[f"{key} mean"], stats[f"{key} ci"]) == mean_ci([final("relu", s)[key] for s in RELU_DONE])
    md = (tmp_path / "summary.md").read_text()
    for text in (md, printed):
        assert "3/7 (2 diverged, 1 failed, 1 incomplete)" in text and "1/1" in text
        assert "0.1000" not in text
    diverged_row = next(
        line for line in md.splitlines() if line.startswith(f"| {name('relu', 3)} | model.activation=relu")
    )
    assert "| relu | diverged | - | - | - | - |" in diverged_row
    with open(tmp_path / "summary.csv") as f:
        csv_row = next(r for r in csv.DictReader(f) if r["run"] == name("relu", 4))
    assert csv_row["val/acc"] == csv_row["test/loss"] == "" and csv_row["status"] == "diverged"


def label(activation: str, seed: int) -> str:
    return f"activation={activation}, seed={seed}"


def test_unfinished_runs_are_listed_apart_and_not_drawn(messy, tmp_path, drawn, capsys):
    assert main([str(messy), "--group", "none", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    failed, running = name("relu", 5), name("relu", 6)
    sections = md_sections((tmp_path / "summary.md").read_text())
    finished = next(v for k, v in sections.items() if k.startswith("Finished"))
    apart = next(v for k, v in sections.items() if k.startswith("Not finished"))
    assert failed not in finished and running not in finished
    assert f"| {failed} | model.activation=relu seed=5 | failed | RuntimeError: out of memory |" in apart
    assert f"| {running} | model.activation=relu seed=6 | incomplete |" in apart
    assert printed.index("Not finished") < printed.index(failed) and "RuntimeError: out of memory" in printed
    series = drawn["curves"][0]  # runs named by what differs between them
    assert set(series) == {label("relu", s) for s in RELU_DONE + RELU_DIVERGED} | {label("sigmoid", 0)}
    np.testing.assert_array_equal(series[label("relu", 3)][0][0], [0, 1])  # diverged: drawn up to divergence
    assert main([str(messy), "--group", "none", "--out", str(tmp_path), "--all"]) == 0
    assert label("relu", 6) in drawn["curves"][0]  # asked for: the running run's first epoch too


def test_gradients_at_the_first_logged_step_under_both_tag_names(messy):
    for seed in RELU_DONE:  # seed 1 wrote gradients/layer_l, the others ~gradients/layer_l
        row = load_run(messy / name("relu", seed))
        np.testing.assert_array_equal(row["gradients"], gradients("relu", seed))
    row = load_run(messy / name("relu", 2))  # ~run/epoch: the curve is still against the epoch
    np.testing.assert_array_equal(row["curve"][0], [0, 1, 2, 3])
    assert load_run(messy / name("relu", 6))["gradients"] is None


def test_gradient_flow_figure_per_group(messy, tmp_path, drawn):
    summarize(messy, group="model.activation", out=tmp_path)
    series, fig = drawn["gradient_flow"]
    assert {k: len(v) for k, v in series.items()} == {"relu": 5, "sigmoid": 1}  # finished runs only
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "Gradient flow" in ax.get_title()
    lines = {line.get_label(): line for line in ax.lines}
    np.testing.assert_array_equal(lines["relu (n=5)"].get_xdata(), [1, 2, 3])
    # geometric mean over seeds 0…4 of 2^(l-3-seed) = 2^(l-3-2)
    np.testing.assert_allclose(lines["relu (n=5)"].get_ydata(), [2.0 ** (l - 5) for l in (1, 2, 3)], rtol=1e-6)
    np.testing.assert_array_equal(lines["sigmoid (n=1)"].get_ydata(), gradients("sigmoid", 0))
    assert lines["sigmoid (n=1)"].get_color() == COLORS["sigmoid"] and lines["relu (n=5)"].get_color() == COLORS["relu"]
    fig.draw_without_rendering()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    assert (tmp_path / "gradient_flow.png").stat().st_size > 10_000
    assert "![gradient_flow.png](gradient_flow.png)" in (tmp_path / "summary.md").read_text()
    title = "val/acc: mean over runs and its 95% interval, per activation"
    assert drawn["curves"][1].axes[0].get_title() == title


def test_no_gradient_flow_figure_without_gradient_tags(sweep, tmp_path, drawn):
    root, _ = sweep
    (tmp_path / "gradient_flow.png").write_bytes(b"from an earlier comparison")
    summarize(root, out=tmp_path)
    assert "gradient_flow" not in drawn and not (tmp_path / "gradient_flow.png").exists()
    assert "gradient_flow" not in (tmp_path / "summary.md").read_text()


def test_geometric_mean_over_runs_of_different_depths():
    mean = geometric_mean([np.array([1e-4, 1e-2, 1.0]), np.array([1e-2, 1.0]), np.array([np.nan, 1e-2, 1.0, 4.0])])
    np.testing.assert_allclose(mean, [1e-3, 1e-2 ** (2 / 3), 1.0, 4.0])


def test_group_of_a_config_group_is_its_name(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    OmegaConf.save(OmegaConf.create({"optimizer": {"_target_": "torch.optim.Adam", "lr": 0.1}}), run / "config.yaml")
    (run / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(["optimizer=adam"]), run / ".hydra" / "overrides.yaml")
    assert load_run(run, group="optimizer")["group"] == "adam"
    assert load_run(run, group="optimizer.lr")["group"] == "0.1"


def test_run_names_take_the_colour_of_the_one_known_name_they_hold():
    from dltips.observe.plots import COLORS, colors

    got = colors(["activation=sigmoid,depth=2", "activation=relu,depth=2", "activation=maxout,depth=2"])
    assert got == {f"activation={a},depth=2": COLORS[a] for a in ("sigmoid", "relu", "maxout")}
    # Two runs of relu (two seeds) must not share a colour: neither takes relu's.
    two = colors(["activation=relu,seed=0", "activation=relu,seed=1", "activation=sigmoid,seed=0"])
    assert len(set(two.values())) == 3 and two["activation=sigmoid,seed=0"] == COLORS["sigmoid"]
