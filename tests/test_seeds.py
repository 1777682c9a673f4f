"""trainer.seeds=K: every member equals the same config trained alone, to float tolerance."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from dltips.config.errors import ConfigError
from dltips.engine.build import setup
from dltips.observe.compare import find_runs, read_scalars
from dltips.run import checkpoint
from dltips.train import train
from tests.conftest import compose_config

SMALL = ["model.width=16", "trainer.max_epochs=2", "trainer.progress=log", "data.train_size=400"]
CASES = {
    "relu+dropout+momentum+diagnostics": [
        "model.dropout=0.3",
        "model.input_dropout=0.1",
        "optimizer=momentum",
        "diagnostics=true",
        "trainer.weight_histograms=true",
    ],
    "prelu+adagrad(ours)+decay+augment": [
        "model.activation=prelu",
        "optimizer=adagrad",
        "regularizer.weight_decay=0.01",
        "data.augment.rotate=10",
        "data.augment.shift=1",
    ],
    "maxout+adam+mse+step_schedule": [
        "model.activation=maxout",
        "optimizer=adam",
        "loss=mse",
        "scheduler=step",
        "scheduler.interval=step",
    ],
}


def member(root, k: int):
    return root / f"member_{k:02d}"


def train_alone(member_dir, out):
    cfg = OmegaConf.load(member_dir / "config.yaml")
    cfg.output_dir = str(out)
    return train(cfg)


def assert_same_weights(a, b):
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_each_member_equals_training_it_alone(extra, tmp_path):
    root = tmp_path / "ensemble"
    train(compose_config([*SMALL, *extra, "seed=3", "trainer.seeds=3"], root))
    for k in (0, 2):
        saved = OmegaConf.load(member(root, k) / "config.yaml")
        assert saved.seed == 3 + k and saved.data.split_seed == 3 and saved.trainer.seeds == 1
        alone = train_alone(member(root, k), tmp_path / f"alone{k}")
        together = json.loads((member(root, k) / "metrics.json").read_text())["metrics"]
        assert together.keys() == alone.keys()
        for key in alone:
            assert together[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), key
        assert_same_weights(
            checkpoint.load(member(root, k) / "last.pt")["model"],
            checkpoint.load(tmp_path / f"alone{k}/last.pt")["model"],
        )
        # Every TensorBoard curve (losses, epoch metrics, lr, step sizes), step for step.
        curves, references = read_scalars(member(root, k)), read_scalars(tmp_path / f"alone{k}")
        assert curves.keys() == references.keys()
        for tag, reference in references.items():
            assert [s for s, _ in curves[tag]] == [s for s, _ in reference], tag
            assert [v for _, v in curves[tag]] == pytest.approx([v for _, v in reference], rel=1e-5, abs=1e-6), tag
        files = lambda d: sorted(p.name for p in d.iterdir() if not p.name.startswith("events"))  # noqa: E731
        assert files(member(root, k)) == files(tmp_path / f"alone{k}")  # config, metrics, last.pt, best.pt


def test_members_differ_from_each_other(tmp_path):
    root = tmp_path / "ensemble"
    train(compose_config([*SMALL, "trainer.seeds=2"], root))
    a, b = (checkpoint.load(member(root, k) / "last.pt")["model"] for k in (0, 1))
    assert not torch.allclose(a["net.0.weight"], b["net.0.weight"])


def test_a_member_checkpoint_resumes_alone(tmp_path):
    """member_k/last.pt holds the member's optimizer state and random streams: resumed alone for
    one more epoch it matches the member trained alone for all three epochs."""
    extra = ["model.dropout=0.3", "optimizer=momentum", "trainer.seeds=2"]
    root = tmp_path / "ensemble"
    train(compose_config([*SMALL, *extra], root))
    # Its own slice only: a view of the stack saved as it is would carry every member's storage.
    saved = checkpoint.load(member(root, 1) / "last.pt")
    tensors = [*saved["model"].values(), *(t for s in saved["optimizer"]["state"].values() for t in s.values())]
    assert tensors and all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for t in tensors)
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(member(root, 1), resumed_dir)
    (resumed_dir / "metrics.json").unlink()
    cfg = OmegaConf.load(resumed_dir / "config.yaml")
    cfg.trainer.max_epochs, cfg.output_dir = 3, str(resumed_dir)
    OmegaConf.save(cfg, resumed_dir / "config.yaml")
    resumed = train(compose_config([f"resume={resumed_dir}"], tmp_path / "ignored"))

    cfg.output_dir, cfg.resume = str(tmp_path / "alone"), None
    alone = train(cfg)
    for key in alone:
        assert resumed[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), key


def test_summary_is_the_members_mean_and_their_averaged_prediction(tmp_path):
    root = tmp_path / "ensemble"
    summary = train(compose_config([*SMALL, "trainer.seeds=3"], root))
    members = [json.loads((member(root, k) / "metrics.json").read_text())["metrics"] for k in range(3)]
    assert summary["test/acc"] == pytest.approx(sum(m["test/acc"] for m in members) / 3)
    # The explicit ensemble, recomputed from the members' saved weights.
    probs = 0
    for k in range(3):
        s = setup(OmegaConf.load(member(root, k) / "config.yaml"))
        s.model.load_state_dict(checkpoint.load(member(root, k) / "last.pt")["model"])
        s.model.eval()
        x, y = s.splits.test
        with torch.no_grad():
            probs = probs + s.model(x).softmax(dim=-1)
    assert summary["ensemble/test/acc"] == pytest.approx((probs.argmax(dim=1) == y).float().mean().item())
    report = json.loads((root / "metrics.json").read_text())
    assert report["status"] == "completed" and report["metrics"] == summary
    assert find_runs(root) == [member(root, k) for k in range(3)]  # dltips-compare sees the members


def test_compare_lists_members_with_the_ensembles_overrides_and_their_own_seeds(tmp_path):
    """trainer.ensemble, the old name of trainer.seeds, still works."""
    from dltips.observe.compare import load_run

    root = tmp_path / "model.width=16,seed=5,trainer.ensemble=2"  # named as a sweep job is
    train(compose_config([*SMALL, "seed=5", "trainer.ensemble=2"], root))
    rows = [load_run(path, tmp_path, group="seed") for path in find_runs(root)]
    assert [row["overrides"] for row in rows] == [
        "model.width=16 trainer.ensemble=2 seed=5",
        "model.width=16 trainer.ensemble=2 seed=6",
    ]
    assert [row["group"] for row in rows] == ["5", "6"] and all(row["status"] == "completed" for row in rows)


def test_seeds_resume_as_a_whole(tmp_path):
    """Trained 1 epoch, then resumed to 3: every member equals its seed trained 3 epochs alone."""
    extra = [*SMALL, "model.dropout=0.3", "optimizer=adam", "regularizer.weight_decay=0.01"]
    root = tmp_path / "seeds"
    train(compose_config([*extra, "trainer.max_epochs=1", "trainer.seeds=2"], root))
    summary = train(compose_config([f"resume={root}", "trainer.max_epochs=3"], tmp_path / "ignored"))
    assert summary["epochs"] == 3
    for k in range(2):
        cfg = OmegaConf.load(member(root, k) / "config.yaml")
        cfg.trainer.max_epochs, cfg.output_dir = 3, str(tmp_path / f"alone{k}")
        alone = train(cfg)
        resumed = json.loads((member(root, k) / "metrics.json").read_text())["metrics"]
        for key in alone:
            assert resumed[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), (k, key)


def test_diverging_members_stop_as_alone_and_the_others_train_on(tmp_path):
    """At this learning rate two of four seeds diverge mid-epoch: each is stopped at the step
    where it would stop alone, with its message, and the survivors (with dropout, whose masks
    must stay in step) end exactly as they would alone."""
    root = tmp_path / "ensemble"
    overrides = [*SMALL, "model.dropout=0.3", "optimizer=momentum", "optimizer.lr=200", "trainer.log_every_n_steps=1"]
    summary = train(compose_config([*overrides, "trainer.seeds=4"], root))
    statuses = []
    for k in range(4):
        report = json.loads((member(root, k) / "metrics.json").read_text())
        train_alone(member(root, k), tmp_path / f"alone{k}")
        reference = json.loads((tmp_path / f"alone{k}" / "metrics.json").read_text())
        assert (report["status"], report["message"]) == (reference["status"], reference["message"])
        assert report["metrics"]["steps"] == reference["metrics"]["steps"]
        if report["status"] == "completed":
            for key, value in reference["metrics"].items():
                assert report["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (k, key)
        statuses.append(report["status"])
    assert sorted(statuses) == ["completed", "completed", "diverged", "diverged"]
    assert summary["members_completed"] == 2  # the summary is over the members that completed
    done = [
        json.loads((member(root, k) / "metrics.json").read_text())["metrics"]
        for k in range(4)
        if statuses[k] == "completed"
    ]
    assert summary["test/acc"] == pytest.approx(sum(d["test/acc"] for d in done) / 2)
    assert json.loads((root / "metrics.json").read_text())["status"] == "diverged"


def test_done_members_leave_the_stack_and_a_run_interrupted_after_resumes_exactly(tmp_path, monkeypatch):
    """Two of four seeds diverge in epoch 0 (as in the test above): at the epoch's end they leave
    the stack, which computes the two left from then on. Interrupted by a signal in epoch 1, the
    run resumes (the stack of four rebuilt, the two done ones leaving again) and ends as it does
    uninterrupted."""
    import os
    import signal

    from dltips.engine.members import Stack
    from dltips.nn.stacked import StackedLinear
    from dltips.run.interrupt import Interrupted

    overrides = [
        *SMALL,
        "trainer.max_epochs=3",
        "model.dropout=0.3",
        "optimizer=momentum",
        "optimizer.lr=200",
        "trainer.log_every_n_steps=1",
        "trainer.seeds=4",
    ]
    drop_done, left = Stack.drop_done, []

    def recorded(self, interrupt: bool):
        drop_done(self)
        left.append((len(self.live), [m.weight.shape[0] for m in self.model.modules() if isinstance(m, StackedLinear)]))
        if interrupt and len(self.live) < len(self.members):
            os.kill(os.getpid(), signal.SIGTERM)  # caught by the loop: it stops after its next step

    monkeypatch.setattr(Stack, "drop_done", lambda self: recorded(self, interrupt=False))
    train(compose_config(overrides, tmp_path / "whole"))
    assert left == [(2, [2, 2, 2])] * 3  # after every epoch: two networks computed, in every layer
    left.clear()
    monkeypatch.setattr(Stack, "drop_done", lambda self: recorded(self, interrupt=True))
    with pytest.raises(Interrupted):
        train(compose_config(overrides, tmp_path / "stopped"))
    monkeypatch.setattr(Stack, "drop_done", drop_done)
    train(compose_config([f"resume={tmp_path / 'stopped'}"], tmp_path / "ignored"))
    for k in range(4):
        whole, resumed = (
            json.loads((member(tmp_path / r, k) / "metrics.json").read_text()) for r in ("whole", "stopped")
        )
        assert resumed["status"] == whole["status"] and resumed["metrics"]["steps"] == whole["metrics"]["steps"]
        for key, value in whole["metrics"].items():
            expected = value if value is None else pytest.approx(value, rel=1e-5, abs=1e-6)  # a diverged one's: null
            assert resumed["metrics"][key] == expected, (k, key)


def test_a_stacks_scores_in_one_pass_equal_each_members_own(tmp_path):
    """Stack.evaluate (one forward of the stack per chunk of rows) against each member scored
    through its own view, as every network alone is, before and after a member leaves."""
    from dltips.engine.build import build_networks
    from dltips.engine.members import Networks

    cfgs = [compose_config([*SMALL, "model.dropout=0.3", f"seed={k}"], tmp_path / f"m{k}") for k in range(3)]
    ms = build_networks(cfgs)
    for leaving in (False, True):
        if leaving:
            ms.members[1].done = True
            ms.drop_done()
            assert ms.live == [0, 2]
        together, alone = ms.evaluate(("train", "val")), Networks.evaluate(ms, ("train", "val"))
        assert together.keys() == alone.keys() == set(ms.running())
        for k in together:
            assert together[k] == pytest.approx(alone[k], rel=1e-5, abs=1e-6), k


def test_a_stacks_checkpoints_at_one_point_share_one_read_and_equal_each_members_own(tmp_path):
    """dltips.engine.state.Point: the stack's state_dicts walked and the process's random streams
    read once for every member's checkpoint at one point; each equals the member's checkpoint
    read on its own, and a member's copy holds its own slice only."""
    from dltips.engine.build import build_networks
    from dltips.engine.state import checkpoint_of, point_of
    from dltips.run.resume import Position

    cfgs = [compose_config([*SMALL, "model.dropout=0.3", f"seed={k}"], tmp_path / f"m{k}") for k in range(3)]
    ms = build_networks(cfgs)
    at = Position(0, 5)
    point = point_of(ms, at.order)
    for k in range(3):
        shared, own = checkpoint_of(ms, k, at, point), checkpoint_of(ms, k, at)
        flat = lambda d, prefix="": [  # noqa: E731
            item
            for key, v in d.items()
            for item in (flat(v, f"{prefix}{key}.") if isinstance(v, dict) else [(f"{prefix}{key}", v)])
        ]
        pairs = dict(flat(shared)), dict(flat(own))
        assert pairs[0].keys() == pairs[1].keys()
        for key, value in pairs[0].items():
            if torch.is_tensor(value):
                assert torch.equal(value, pairs[1][key]), (k, key)
                if key.startswith("model."):  # member k's own slice, copied alone
                    assert torch.equal(value, ms.model.state_dict()[key.removeprefix("model.")][ms.slice_of(k)])
                    assert value.untyped_storage().nbytes() == value.numel() * value.element_size(), key
            else:
                assert value == pairs[1][key], (k, key)


def test_every_member_diverging_ends_the_run_cleanly(tmp_path):
    """Fewer steps per epoch than log_every_n_steps: the epoch-end check finds them all diverged."""
    root = tmp_path / "ensemble"
    summary = train(compose_config([*SMALL, "optimizer.lr=1e30", "data.batch_size=256", "trainer.seeds=2"], root))
    assert summary["members_completed"] == 0 and summary["test/acc"] != summary["test/acc"]  # NaN: none completed
    for k in range(2):
        assert json.loads((member(root, k) / "metrics.json").read_text())["status"] == "diverged"


def test_every_member_diverging_at_a_logged_step_ends_the_run_cleanly(tmp_path):
    """Every member done inside the epoch: its end scores nobody."""
    root = tmp_path / "ensemble"
    overrides = [*SMALL, "optimizer.lr=1e30", "trainer.log_every_n_steps=1", "trainer.seeds=2"]
    assert train(compose_config(overrides, root))["members_completed"] == 0
    for k in range(2):
        assert json.loads((member(root, k) / "metrics.json").read_text())["status"] == "diverged"


def test_eval_subnetworks_of_a_member_equals_alone(tmp_path):
    """The sampled sub-networks continue each member's own dropout stream, as they do alone."""
    root = tmp_path / "ensemble"
    train(compose_config([*SMALL, "model.dropout=0.3", "eval_subnetworks=true", "trainer.seeds=2"], root))
    train_alone(member(root, 1), tmp_path / "alone")
    curve = json.loads((member(root, 1) / "metrics.json").read_text())["subnetworks"]
    reference = json.loads((tmp_path / "alone" / "metrics.json").read_text())["subnetworks"]
    for row, ref in zip(curve, reference, strict=True):
        assert row == pytest.approx(ref, rel=1e-4, abs=1e-6)


def test_only_element_wise_optimizers_train_members_together(tmp_path):
    """Adafactor's factored statistics would mix members that share one tensor."""
    out = tmp_path / "run"
    with pytest.raises(
        ConfigError,
        match=r"^Invalid optimizer._target_: 'torch.optim.Adafactor'; allowed for networks trained together",
    ):
        train(compose_config([*SMALL, "optimizer._target_=torch.optim.Adafactor", "trainer.seeds=2"], out))
    assert not out.exists()


@pytest.mark.parametrize(
    "layer", [torch.nn.LayerNorm(4), torch.nn.PReLU(), torch.nn.Dropout(0.5)], ids=lambda m: type(m).__name__
)
def test_layers_that_would_be_shared_are_refused(layer):
    from dltips.nn.stacked import stack

    models = [torch.nn.Sequential(torch.nn.Linear(3, 4), layer) for _ in range(2)]
    with pytest.raises(
        ValueError,
        match=rf"^Invalid model._target_ trained together \(trainer.seeds, hydra/launcher=stacked\): 1 is a "
        rf"{type(layer).__name__}",
    ):
        stack(models, [torch.Generator() for _ in models])


@pytest.mark.parametrize("activation", ["relu", "prelu", "maxout"])
def test_stacked_forward_is_each_members_forward(activation):
    from dltips.nn import MLP
    from dltips.nn.stacked import member_state, stack
    from dltips.optim import param_groups

    torch.manual_seed(0)
    models = [MLP(5, 3, depth=2, width=4, activation=activation, dropout=0.5).eval() for _ in range(3)]
    stacked = stack(models, [torch.Generator() for _ in models]).eval()
    x = torch.randn(3, 7, 5)  # each member its own batch
    out = stacked(x)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k]))
        for name, value in member_state(stacked.state_dict(), k).items():
            assert torch.equal(value, model.state_dict()[name])
    # Weight decay on the stacked weights only, as on each member's.
    decay, no_decay = param_groups(stacked, 0.1)
    assert {id(p) for p in decay["params"]} == {id(m.weight) for m in stacked.modules() if hasattr(m, "weight")}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(stacked.parameters()))


@pytest.mark.parametrize("modes", [("weight_scaling",) * 2, ("inverted",) * 2, ("weight_scaling", "inverted")])
def test_stacked_dropout_is_each_members_own_rate_mode_and_generator(modes):
    from dltips.nn import Dropout
    from dltips.nn.stacked import StackedDropout

    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    x = torch.randn(2, 6, 8)
    stacked = StackedDropout([0.5, 0.2], list(modes), gens)
    train_out, eval_out = stacked.train()(x), stacked.eval()(x)
    for k, (seed, p) in enumerate([(1, 0.5), (2, 0.2)]):
        torch.manual_seed(seed)  # Dropout alone draws from torch's default generator
        alone = Dropout(p, modes[k])
        torch.testing.assert_close(train_out[k], alone.train()(x[k]), rtol=0, atol=0)
        torch.testing.assert_close(eval_out[k], alone.eval()(x[k]), rtol=0, atol=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_each_member_equals_training_it_alone_on_cuda(tmp_path):
    """Dropout masks, shuffles and augmentation from CUDA generators; TF32 off (the default)."""
    root = tmp_path / "ensemble"
    extra = ["trainer.device=cuda", "model.dropout=0.3", "data.augment.rotate=10", "optimizer=adam"]
    train(compose_config([*SMALL, *extra, "trainer.seeds=2"], root))
    alone = train_alone(member(root, 1), tmp_path / "alone")
    together = json.loads((member(root, 1) / "metrics.json").read_text())["metrics"]
    for key in alone:
        assert together[key] == pytest.approx(alone[key], rel=1e-4, abs=1e-5), key


def test_members_stop_early_each_at_its_own_epoch_as_alone(tmp_path):
    """Early stopping per member: each stops where it would alone and keeps its best weights;
    the others train on."""
    root = tmp_path / "seeds"
    extra = [
        "data.train_size=200",
        "data.batch_size=16",
        "optimizer.lr=0.5",
        "regularizer.early_stopping.patience=1",
        "trainer.max_epochs=15",
    ]
    summary = train(compose_config([*SMALL, *extra, "trainer.seeds=4"], root))
    stops = []
    for k in range(4):
        report = json.loads((member(root, k) / "metrics.json").read_text())
        train_alone(member(root, k), tmp_path / f"alone{k}")
        reference = json.loads((tmp_path / f"alone{k}" / "metrics.json").read_text())
        assert report["stopped_early"] == reference["stopped_early"] is True
        for key, value in reference["metrics"].items():
            assert report["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (k, key)
        stops.append(report["metrics"]["stop_epoch"])
    assert len(set(stops)) > 1  # they stopped at different epochs
    assert summary["stop_epoch"] == pytest.approx(sum(stops) / 4)


SOURCE_CALLS: list[dict] = []


def counted_synthetic(**kwargs):
    """dltips.data.load_synthetic, counting its calls."""
    from dltips.data import load_synthetic

    SOURCE_CALLS.append(kwargs)
    return load_synthetic(**kwargs)


def test_networks_trained_together_load_their_data_set_once_and_split_it_each_their_way(tmp_path):
    overrides = ["data=synthetic", "data.source._target_=tests.test_seeds.counted_synthetic"]
    cfgs = [compose_config([*overrides, f"seed={seed}"], tmp_path / str(seed)) for seed in (0, 1, 2)]
    SOURCE_CALLS.clear()
    shared: dict = {}
    together = [setup(cfg, shared).splits for cfg in cfgs]
    assert len(SOURCE_CALLS) == 1  # read once for the three
    alone = [setup(cfg).splits for cfg in cfgs]  # each its own load, as a run alone
    assert len(SOURCE_CALLS) == 4
    for a, b in zip(together, alone):
        for split in ("train", "val", "test"):
            assert all(torch.equal(u, v) for u, v in zip(getattr(a, split), getattr(b, split)))
    assert not torch.equal(together[0].train[0], together[1].train[0])  # split_seed = seed: other splits


def test_a_stack_larger_than_the_open_files_limit_trains(tmp_path):
    """Each network keeps its .lock and its event file open: 48 networks under a soft limit of 40
    open files would fail with "Too many open files" unless the limit is raised (up to the hard one)."""
    resource = pytest.importorskip("resource")
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1024:
        pytest.skip("the hard limit on open files is too low to raise")
    code = f"""
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from dltips.config.validate import compose_train
from dltips.train import train
cfg = compose_train(["data=synthetic", "data.source.n_samples=200", "model.depth=1", "model.width=8",
                     "trainer.max_epochs=1", "trainer.seeds=48", "trainer.progress=log"], {str(tmp_path / "run")!r})
train(cfg)
print("soft limit", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split("soft limit")[-1]) >= 2 * 48
    assert len(list((tmp_path / "run").glob("member_*/metrics.json"))) == 48


def test_a_stacks_checkpoints_are_all_taken_before_the_first_is_written(tmp_path, monkeypatch):
    """The saver's thread holds the GIL while it pickles: it starts on an epoch's checkpoints
    once every member's snapshot is taken, never in between (dltips.run.checkpoint.Saver)."""
    import dltips.engine.recorder as recorder

    events = []
    snapshot, save = recorder.checkpoint_of, checkpoint.save
    monkeypatch.setattr(
        recorder, "checkpoint_of", lambda ms, k, at, *a: events.append(("take", at.epoch)) or snapshot(ms, k, at, *a)
    )
    monkeypatch.setattr(
        checkpoint, "save", lambda path, state: events.append(("write", state["epoch"])) or save(path, state)
    )
    cfg = compose_config([*SMALL, "trainer.seeds=3", "trainer.max_epochs=3"], tmp_path / "run")
    train(cfg)
    for epoch in range(3):
        kinds = [kind for kind, e in events if e == epoch]
        assert kinds == ["take"] * 3 + ["write"] * 3, (epoch, kinds)
    assert all(checkpoint.load(member(tmp_path / "run", k) / "last.pt")["epoch"] == 2 for k in range(3))
