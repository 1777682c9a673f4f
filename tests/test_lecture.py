"""The lecture reproduction: a study runs, decides by its rule, and lands in REPORT.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba_array
from omegaconf import OmegaConf
from scipy import stats

from dltips.observe.plots import COLORS
from lecture import STUDIES, reproduce
from lecture.dropout import KL_RATE, kl_rate
from lecture.figures import (
    ACCURACY,
    activations_figure,
    curves_figure,
    dropout_figure,
    nielsen_figure,
    normalization_figure,
    overfitting_figure,
    vanishing_figure,
)
from lecture.figures_training import keras_demo_figure
from lecture.lab import (
    Lab,
    Run,
    Section,
    default_root,
    held_out_note,
    mean_ci,
    mean_std,
    paired,
    table,
    write_report,
)
from tests.test_lecture_mechanisms import FIGURES as MECHANISM_FIGURES
from tests.test_lecture_practice import FIGURES as PRACTICE_FIGURES

REPO = Path(__file__).resolve().parents[1]


def test_every_claim_of_the_lecture_has_a_study():
    assert set(STUDIES) == {
        "vanishing_gradient",
        "activations",
        "cost",
        "normalization",
        "optimizers",
        "overfitting",
        "dropout_ensemble",
        "dead_relu",
        "maxout",
        "adagrad",
        "momentum_surfaces",
        "lr_decay",
        "weight_decay_noise",
        "early_stopping",
        "dropout_advice",
        "keras_demo",
        "keras_demo_deep",
        "relu_variants_maxout",
        "relu_fast",
        "momentum_sum",
        "weight_decay_update",
        "dropout_resampled",
        "learning_rate_size",
        "test_normalization",
        "more_data",
        "bounded_output",
    }


def test_mean_std_and_table():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # sample std, as over seeds
    assert mean_std([5.0]) == (5.0, 0.0)
    assert table(["a", "b"], [[1, 2]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_mean_ci_is_the_t_interval_and_paired_differences_are_taken_seed_by_seed():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.302653 / np.sqrt(3))  # t(0.975, df=2) · s / √n
    assert mean_ci([5.0]) == (5.0, 0.0)
    # a constant offset between paired seeds is certain however much the seeds spread
    assert paired([0.5, 0.7, 0.9], [0.4, 0.6, 0.8]) == pytest.approx((0.1, 0.1, 0.1))


def test_the_dropout_rule_tells_a_kl_that_keeps_falling_from_one_that_levels_off():
    """The rate is minus the log-log slope: c/N gives 1, c/N^0.5 gives 0.5 (the rule's threshold,
    written out), and a KL with a floor, as the arithmetic mean's, falls slower than KL_RATE."""
    ns = (1, 2, 5, 10, 20, 50, 100)
    assert kl_rate([{"n": n, "kl": 0.1 / n} for n in ns], "kl") == pytest.approx(1.0)
    assert kl_rate([{"n": n, "kl": 0.1 / n**0.5} for n in ns], "kl") == pytest.approx(0.5)
    assert kl_rate([{"n": n, "kl": 0.1 / n + 0.05} for n in ns], "kl") < KL_RATE


def test_a_quick_reproduction_never_writes_over_the_full_report():
    assert default_root(quick=False) == Path("outputs/lecture")
    assert default_root(quick=True) == Path("outputs/lecture-quick")
    script = (REPO / "scripts" / "reproduce_lecture.py").read_text()
    assert "default=None" in script  # --out left out: reproduce() picks by --quick


@pytest.mark.slow  # two studies in processes of their own: about 40 s
def test_studies_run_side_by_side_and_report_in_their_own_order(tmp_path):
    text = reproduce(tmp_path, quick=True, only=["cost", "momentum_surfaces"], workers=2).read_text()
    assert "(2 studies at a time, one torch thread each)" in text
    assert re.search(r"Minutes per study: cost \d+\.\d, momentum_surfaces \d+\.\d\.", text)
    cost = text.index("## Softmax + cross-entropy learns faster")
    momentum = text.index("## Momentum carries past a local minimum")
    assert cost < momentum  # STUDIES' order, whichever finished first
    assert (tmp_path / "figures" / "cost.png").is_file() and (tmp_path / "figures" / "trajectories.png").is_file()


def test_a_study_writes_its_section_figure_and_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(Lab, "epochs", lambda self, full: 1)
    report = reproduce(tmp_path, quick=True, only=["cost"])
    text = report.read_text()
    assert "## Softmax + cross-entropy learns faster than the quadratic cost" in text
    # A quick run (2 seeds: t = 12.7) says its verdicts are no evidence, in the header and at each.
    assert "**Rule.**" in text and re.search(r"\*\*Verdict: (held|did not hold) \(quick run: not evidence\)\*\*", text)
    assert f"±{stats.t.ppf(0.975, 1):.1f} standard errors wide" in text and "it is not evidence" in text
    assert (tmp_path / "figures" / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = list((tmp_path / "runs").glob("*/cost/*"))
    assert sorted(p.name for p in runs) == ["cross_entropy", "mse"]  # 2 seeds, trained together
    assert sorted(p.name for p in (runs[0]).iterdir() if p.is_dir()) == ["member_00", "member_01"]
    assert "| claim | data set | ours (95% CI) | published | verdict |" in text
    # Each seed on its own split, so that the intervals hold the split's noise too.
    members = [OmegaConf.load(m / "config.yaml") for m in sorted(runs[0].glob("member_*"))]
    assert [(c.seed, c.data.split_seed) for c in members] == [(0, 0), (1, 1)]
    assert re.search(r"\*\(validation set of 230 rows, under 500: one row is 0\.004 of accuracy\)\*", text)


def test_a_report_names_small_held_out_sets_and_each_claims_history(tmp_path):
    section = Section(
        title="A claim",
        claim="c",
        rule="r",
        held=True,
        headline="x 0.5 ± 0.1",
        table="",
        figure="f.png",
        held_out=("test", 270),
        history=["First on digits, where it failed; moved to wine."],
    )
    large = Section(**{**section.__dict__, "title": "Another", "held_out": ("test", 1000), "history": []})
    text = write_report(Lab(tmp_path, quick=False, seeds=5), [section, large], 60.0).read_text()
    note = "*(test set of 270 rows, under 500: one row is 0.004 of accuracy)*"
    assert text.count(note) == 2  # in the summary table and at the verdict
    assert "1000 rows" not in text and text.count("\n**History.** ") == 1  # the claim that has one
    assert "**History.** First on digits, where it failed; moved to wine." in text
    assert held_out_note(None) == held_out_note(("test", 500)) == ""


@pytest.mark.slow
def test_quick_reproduction_runs_every_study(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reproduce_lecture.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "REPORT.md").read_text()
    # vanishing_gradient, dropout_ensemble, dead_relu, maxout, adagrad and early_stopping report two claims
    # each, the Keras demo's chain one per step: 6 and 3
    assert text.count("\n## ") == len(STUDIES) + 6 + 5 + 2
    assert "tensorboard --logdir" in result.stdout


# The figures, built from small fake runs: what a reader relies on, checked without training.


def fake_runs(curve, seeds: int = 3, tag: str = "val/acc") -> list[Run]:
    return [Run({}, {tag: [(e, v + 0.01 * s) for e, v in enumerate(curve)]}, Path(f"seed{s}")) for s in range(seeds)]


def sampled_rows(acc: float) -> list[dict]:
    return [
        {
            "n": n,
            "arithmetic/acc": acc - 0.1 / n,
            "weight_scaling/acc": acc,
            "arithmetic/kl": 0.3 / n,
            "geometric/kl": 0.02 / n,
        }
        for n in (1, 10, 100)
    ]


FIGURES = {
    "curves": lambda: curves_figure(
        {"cross_entropy": fake_runs([0.3, 0.8, 0.9]), "mse": fake_runs([0.1, 0.1, 0.2])},
        "val/acc",
        "title",
        "validation accuracy",
        ylim=ACCURACY,
    ),
    "optimizers": lambda: curves_figure(
        {
            "sgd": fake_runs([2.0, 1.0], tag="loss"),
            "adagrad": fake_runs([1.0, 0.5], tag="loss"),
            "torch_adagrad": fake_runs([1.0, 0.5 + 3e-8], tag="loss"),
        },
        "loss",
        "title",
        "loss",
        log=True,
    ),
    "vanishing_gradient": lambda: vanishing_figure(
        {a: np.logspace(-6, 0, 4) * k for k, a in enumerate(("sigmoid", "relu", "maxout"), 1)},
        {a: np.logspace(-5, -1, 4) * k for k, a in enumerate(("sigmoid", "relu", "maxout"), 1)},
    ),
    "activations": lambda: activations_figure(
        {(a, d): [0.9, 0.95] for a in ("sigmoid", "relu", "maxout") for d in (2, 10)},
        ("sigmoid", "relu", "maxout"),
        (2, 10),
    ),
    "overfitting": lambda: overfitting_figure(
        {m: [1.0, 1.0] for m in ("none", "dropout", "none (mnist5k)")},
        {m: [0.94, 0.95] for m in ("none", "dropout", "none (mnist5k)")},
    ),
    "normalization": lambda: normalization_figure(
        {
            d: {"standard": fake_runs([0.5, 0.96], tag="train/acc"), "none": fake_runs([0.3, 0.4], tag="train/acc")}
            for d in ("wine", "breast_cancer")
        },
        {(d, v): 0.1 for d in ("wine", "breast_cancer") for v in ("standard", "none")},
        0.95,
    ),
    "nielsen": lambda: nielsen_figure(
        {
            "ours": [np.array([0.01, 0.05, 0.2]), np.array([0.012, 0.06, 0.3])],
            "other init": [np.array([0.002, 0.01, 0.07])] * 2,
        },
        [0.012, 0.06, 0.283],
    ),
    "dropout_ensemble": lambda: dropout_figure(
        {a: sampled_rows(0.96) for a in ("relu", "maxout", "tanh")},
        {a: [{"k": k, "arithmetic/acc": 0.96 + 0.005 * k} for k in (1, 2, 3)] for a in ("relu", "maxout", "tanh")},
    ),
    "keras_demo": lambda: keras_demo_figure(
        {
            "deep_relu": {"train": [0.99, 0.98], "test": [0.95, 0.94], "noisy": [0.3, 0.4]},
            "no_normalization": {split: [np.nan, np.nan] for split in ("train", "test", "noisy")},
        }
    ),
}
# With the slides' figures (their own tests build them and check their colours): every figure
# of the report is held to the same title, legend and axis checks.
EVERY_FIGURE = {**FIGURES, **MECHANISM_FIGURES, **PRACTICE_FIGURES}


@pytest.mark.parametrize("name", EVERY_FIGURE)
def test_every_panel_has_a_title_and_a_legend_where_it_shows_more_than_one_thing(name):
    fig = EVERY_FIGURE[name]()
    for ax in fig.axes:
        assert ax.get_title(), name  # every panel its own title, a figure of several also a suptitle
        shown = len(ax.lines) + len(ax.containers)
        assert shown <= 1 or ax.get_legend() is not None, (name, ax.get_title())


@pytest.mark.parametrize("name", EVERY_FIGURE)
def test_accuracy_axes_run_from_zero_to_one_unless_zoomed_to_the_data(name):
    zoomed = 0
    for ax in EVERY_FIGURE[name]().axes:
        if "accuracy" not in ax.get_ylabel():
            continue
        low, high = ax.get_ylim()
        if "zoomed" in ax.get_ylabel():  # gaps of thousandths: everything drawn fills most of the axis
            data_low, data_high = ax.dataLim.intervaly
            assert low <= data_low and data_high <= high, (name, ax.get_ylabel())
            assert high - low <= 1.3 * (data_high - data_low) + 0.004 + 1e-9, (name, ax.get_ylabel())
            zoomed += 1
        else:
            assert low == 0 and high >= 1, (name, ax.get_ylabel())
    assert zoomed == (2 if name == "dropout_ensemble" else 0)


def test_ours_is_dashed_over_torchs_solid_in_one_colour_with_the_gap_in_the_label():
    (ax,) = FIGURES["optimizers"]().axes
    lines = {line.get_gid(): line for line in ax.lines}
    ours, torch = lines["adagrad"], lines["torch_adagrad"]
    assert ours.get_linestyle() == "--" and torch.get_linestyle() == "-"
    assert ours.get_color() == torch.get_color() == COLORS["adagrad"]
    assert ours.get_zorder() > torch.get_zorder() and torch.get_linewidth() > ours.get_linewidth()
    assert ours.get_label() == "adagrad (ours, dashed; max |Δ| = 3e-08 vs torch)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [line.get_label() for line in ax.lines]


def named_colours(fig) -> dict[str, set[tuple]]:
    """Every colour each name is drawn in, over lines, bars and bands (read back by `gid`)."""
    found: dict[str, set[tuple]] = {}
    for ax in fig.axes:
        drawn = [(a, a.get_color()) for a in ax.lines] + [
            (a, a.get_facecolor()) for a in [*ax.patches, *ax.collections]
        ]
        for artist, colour in drawn:
            if artist.get_gid():
                found.setdefault(artist.get_gid(), set()).add(rgb(colour))
    return found


def rgb(colour) -> tuple:
    return tuple(np.round(to_rgba_array(colour)[0, :3], 6))


def test_one_colour_per_name_the_palettes_in_every_figure():
    seen: dict[str, set[tuple]] = {}
    for make in FIGURES.values():
        for gid, found in named_colours(make()).items():
            seen.setdefault(gid, set()).update(found)
    assert {"relu", "maxout", "sigmoid", "tanh", "adagrad", "none", "dropout", "cross_entropy", "standard"} <= set(seen)
    for gid, found in seen.items():
        assert found == {rgb(COLORS[gid])}, gid
