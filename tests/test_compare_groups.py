"""dltips-compare by setting: groups of several keys, their means with 95% intervals against
dltips.observe.intervals, differences paired by seed or Welch's, legends, colours, --diff, --help."""

from __future__ import annotations

import json
import re

import pytest
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from dltips.config.plan import Plan
from dltips.observe import compare_plots
from dltips.observe.compare import load_runs, main, summarize
from dltips.observe.compare_groups import group_keys
from dltips.observe.compare_tables import difference, differences, group_stats
from dltips.observe.intervals import mean_ci, paired, welch
from dltips.observe.tags import GRADIENTS, per_layer
from dltips.run import report

ACTIVATIONS, LRS = ("relu", "sigmoid"), (0.01, 0.1)
GROUP = "model.activation,optimizer.lr"
# The sweep's own keys: these, and the seed, which never makes a group.
KEYS = ["model.activation", "optimizer.lr"]
NO_GRADIENTS = ("relu", 0.01)  # a setting that logged no gradient norms: missing from that figure


def seeds(activation: str, lr: float) -> tuple[int, ...]:
    """sigmoid at lr 0.01 trained other seeds: its differences with the rest are Welch's."""
    return (3, 4, 5) if (activation, lr) == ("sigmoid", 0.01) else (0, 1, 2)


def label(activation: str, lr: float) -> str:
    return f"activation={activation}, lr={lr}"


def final(activation: str, lr: float, seed: int) -> dict[str, float]:
    """Final metrics that vary with the seed differently per setting: no difference is constant."""
    base = {"relu": 0.8, "sigmoid": 0.6}[activation] + (0.05 if lr == 0.1 else 0.0)
    return {
        "val/acc": base + 0.01 * seed + 0.003 * seed**2 * (activation == "relu"),
        "val/loss": 1.0 - base + 0.02 * seed,
        "test/acc": base - 0.02 + 0.004 * seed + 0.007 * seed * (lr == 0.1),
        "test/loss": 1.1 - base + 0.01 * seed**2,
    }


def make_run(root, activation: str, lr: float, seed: int) -> None:
    path = root / f"activation={activation},lr={lr},seed={seed}"
    config = {
        "seed": seed,
        "data": {"batch_size": 32, "split_seed": seed},
        "model": {"activation": activation, "depth": 2},
        "optimizer": {"lr": lr},
    }
    (path / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(config), path / "config.yaml")
    overrides = [f"model.activation={activation}", f"optimizer.lr={lr}", f"seed={seed}"]
    OmegaConf.save(OmegaConf.create(overrides), path / ".hydra" / "overrides.yaml")
    writer = SummaryWriter(log_dir=str(path))
    for epoch in range(3):
        writer.add_scalar("val/acc", final(activation, lr, seed)["val/acc"] - 0.1 * (2 - epoch), 10 * (epoch + 1))
        writer.add_scalar("~run/epoch", epoch, 10 * (epoch + 1))
    if (activation, lr) != NO_GRADIENTS:
        for layer in (1, 2, 3):
            writer.add_scalar(per_layer(GRADIENTS, layer), 2.0 ** (layer - seed), 5)
    writer.close()
    report.write(path, report.COMPLETED, metrics=final(activation, lr, seed) | {"epochs": 3}, time_s=1.0)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A sweep of 2 activations × 2 learning rates × 3 seeds, below outputs/sweeps/."""
    root = tmp_path_factory.mktemp("grid") / "outputs" / "sweeps" / "2026-01-01_00-00-00"
    for activation in ACTIVATIONS:
        for lr in LRS:
            for seed in seeds(activation, lr):
                make_run(root, activation, lr, seed)
    Plan(swept={"model.activation": list(ACTIVATIONS), "optimizer.lr": list(LRS), "seed": [0, 1, 2]}).save(root)
    return root


@pytest.fixture
def drawn(monkeypatch):
    """The figures summarize draws: {"curves" | "gradient_flow": Figure}."""
    seen = {}

    def spy(key: str, figure):
        def wrapped(*args, **kwargs):
            seen[key] = figure(*args, **kwargs)
            return seen[key]

        return wrapped

    monkeypatch.setattr(compare_plots, "curves_figure", spy("curves", compare_plots.curves_figure))
    monkeypatch.setattr(compare_plots, "gradient_flow_figure", spy("gradient_flow", compare_plots.gradient_flow_figure))
    return seen


def test_two_keys_make_a_group_per_combination_with_mean_ci_of_its_runs(grid, tmp_path):
    rows = summarize(grid, group=GROUP, out=tmp_path)
    stats = {s["group"]: s for s in group_stats(rows)}
    assert list(stats) == [label(a, lr) for a in ACTIVATIONS for lr in LRS]
    md = (tmp_path / "summary.md").read_text()
    assert "| model.activation | optimizer.lr | n | runs | val/acc | val/loss | test/acc | test/loss |" in md
    for a in ACTIVATIONS:
        for lr in LRS:
            s = stats[label(a, lr)]
            assert s["n"] == 3 and s["values"] == (a, lr)
            for key in ("val/acc", "val/loss", "test/acc", "test/loss"):
                mean, half = mean_ci([final(a, lr, seed)[key] for seed in seeds(a, lr)])
                assert s[f"{key} mean"] == pytest.approx(mean, rel=1e-12)
                assert s[f"{key} ci"] == pytest.approx(half, rel=1e-12)
                assert f"{mean:.4f} [{mean - half:.4f}, {mean + half:.4f}]" in md


def test_default_groups_are_the_swept_keys_but_the_seed(grid, tmp_path):
    rows, keys = load_runs(grid)  # from sweep.yaml
    assert keys == KEYS and {r["group"] for r in rows} == {label(a, lr) for a in ACTIVATIONS for lr in LRS}
    # Outside a sweep: the keys whose values differ between the runs, seed and data.split_seed left out.
    assert group_keys(None, tmp_path, [r["settings"] for r in rows]) == KEYS
    summarize(grid, out=tmp_path)  # what a sweep calls when it ends: by setting too
    assert "Final metrics per setting" in (tmp_path / "summary.md").read_text()


def test_an_unknown_group_key_is_one_line_naming_the_keys_and_writes_nothing(grid, tmp_path, capsys):
    for group in ("model.activaton", "model.activation,optimizer.lrr"):
        assert main([str(grid), "--group", group, "--out", str(tmp_path / "report")]) == 2
        printed = capsys.readouterr()
        bad = group.split(",")[-1]
        keys = "data.batch_size, data.split_seed, model.activation, model.depth, optimizer.lr, seed"
        assert printed.err == f"dltips-compare: error: unknown --group key '{bad}'; keys: {keys}\n"
        assert printed.out == "" and not (tmp_path / "report").exists()


def test_differences_are_paired_on_shared_seeds_else_welch(grid, tmp_path, capsys):
    assert main([str(grid), "--group", GROUP, "--test", "--out", str(tmp_path)]) == 0
    printed, md = capsys.readouterr().out, (tmp_path / "summary.md").read_text()
    diffs = differences(load_runs(grid, GROUP)[0])
    settings = {label(a, lr): (a, lr) for a in ACTIVATIONS for lr in LRS}
    assert len(diffs) == 6 and sum(d["test"] == "paired" for d in diffs) == 3
    for d in diffs:
        a, b = settings[d["a"]], settings[d["b"]]
        both = seeds(*a) == seeds(*b)
        assert (d["test"], d["n"]) == (("paired", "3 seeds") if both else ("Welch", "3 vs 3"))
        for key in ("val/acc", "test/acc"):
            values = [[final(*s, seed)[key] for seed in seeds(*s)] for s in (a, b)]
            assert d[key] == pytest.approx((paired if both else welch)(*values), rel=1e-12)
            m, lo, hi = d[key]
            assert f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]" in md and f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]" in printed
        assert f"| {d['a']} | {d['b']} | {d['test']} | {d['n']} |" in md
    assert "Differences between settings, A − B" in printed


def test_pairs_are_the_seeds_both_trained():
    def runs(values: dict[int, float]) -> list[dict]:
        return [{"settings": {"seed": s}, "val/acc": v, "test/acc": v} for s, v in values.items()]

    a, b = {0: 0.5, 1: 0.6, 2: 0.65, 3: 0.7}, {1: 0.55, 2: 0.58, 3: 0.69, 4: 0.9}
    d = difference(runs(a), runs(b))
    assert d["test"] == "paired" and d["n"] == "3 seeds"
    assert d["val/acc"] == paired([0.6, 0.65, 0.7], [0.55, 0.58, 0.69])
    d = difference(runs({0: 0.5, 1: 0.6}), runs({1: 0.55, 2: 0.58}))  # one shared seed: no interval paired
    assert d["test"] == "Welch" and d["val/acc"] == welch([0.5, 0.6], [0.55, 0.58])


def legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_legends_name_runs_and_groups_by_what_differs_not_their_path(grid, tmp_path, drawn):
    outputs = grid.parent.parent  # runs named sweeps/2026-01-01_00-00-00/activation=relu,lr=0.1,seed=0
    summarize(outputs, group="none", out=tmp_path)
    expected = {f"{label(a, lr)}, seed={s}" for a in ACTIVATIONS for lr in LRS for s in seeds(a, lr)}
    assert set(legend(drawn["curves"])) == expected
    summarize(outputs, out=tmp_path)  # grouped by the keys that differ: no sweep.yaml here
    assert legend(drawn["curves"]) == [f"{label(a, lr)} (n=3)" for a in ACTIVATIONS for lr in LRS]
    assert all("sweeps" not in text and "/" not in text for text in legend(drawn["gradient_flow"]))


def test_a_setting_keeps_its_colour_in_every_figure_and_its_runs_share_it(grid, tmp_path, drawn):
    summarize(grid, out=tmp_path)

    def colours(fig) -> dict[str, str]:
        lines = [line for line in fig.axes[0].lines if not line.get_label().startswith("_")]
        return {line.get_label().split(" (n=")[0]: line.get_color() for line in lines}

    curves, flow = colours(drawn["curves"]), colours(drawn["gradient_flow"])
    assert len(set(curves.values())) == 4 and set(flow) == set(curves) - {label(*NO_GRADIENTS)}
    assert {k: curves[k] for k in flow} == flow
    for name, colour in curves.items():  # 3 thin runs and the thick mean
        lines = [line for line in drawn["curves"].axes[0].lines if line.get_color() == colour]
        widths = sorted(line.get_linewidth() for line in lines)
        assert len(lines) == 4 and widths[0] == widths[2] < widths[3], name


def table_rows(section: str) -> list[tuple[str, ...]]:
    """The rows of a printed table (title, header and dashes above them)."""
    return [tuple(re.split(r"\s{2,}", line)) for line in section.splitlines()[3:]]


def test_diff_lists_exactly_the_keys_that_differ(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for run, model, lr in ((a, {"activation": "relu", "dropout": 0.1}, 0.1), (b, {"activation": "sigmoid"}, 0.01)):
        run.mkdir()
        OmegaConf.save(
            OmegaConf.create({"seed": 0, "model": model | {"depth": 2}, "optimizer": {"lr": lr}}), run / "config.yaml"
        )
    env = {"git": "abc123", "torch": "2.5.1", "cpu": "x86_64", "threads": 4}
    (a / "environment.json").write_text(json.dumps(env))
    (b / "environment.json").write_text(json.dumps(env | {"torch": "2.6.0", "threads": 8}))
    files = sorted(tmp_path.rglob("*"))
    assert main(["--diff", str(a), str(b)]) == 0
    config, environment = capsys.readouterr().out.split("\n\n")[1:]
    assert config.splitlines()[0] == "config.yaml: 3 keys differ"
    assert table_rows(config) == [
        ("model.activation", "relu", "sigmoid"),
        ("model.dropout", "0.1", "(missing)"),
        ("optimizer.lr", "0.1", "0.01"),
    ]
    assert table_rows(environment) == [("threads", "4", "8"), ("torch", "2.5.1", "2.6.0")]
    (b / "environment.json").unlink()  # a run from before environment.json
    assert main(["--diff", str(a), str(b)]) == 0
    last = capsys.readouterr().out.split("\n\n")[-1]
    assert last == "environment.json: none in B (a run from before it was recorded): not compared\n"
    assert sorted(tmp_path.rglob("*")) == [f for f in files if f != b / "environment.json"]  # nothing written


def test_help_ends_with_whole_sentences(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    paragraphs = capsys.readouterr().out.strip().split("\n\n")
    description, epilog = paragraphs[1], paragraphs[-1]
    assert description.startswith("Compare runs by setting") and description.endswith("written to PATH/compare.")
    assert epilog.endswith("never make a group.")
