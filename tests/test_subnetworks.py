"""Dropout's sub-networks averaged, checked against brute-force enumeration of every sub-network."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dltips.nn import MLP, Dropout
from dltips.observe import subnetworks
from dltips.observe.subnetworks import (
    evaluate_predictions,
    explicit_ensemble_curve,
    kl_divergence,
    log_curve,
    mc_average,
    sample_probs,
    subnetwork_curve,
    weight_scaling_probs,
)

MODES = ["weight_scaling", "inverted"]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1.3e-6, atol: float = 1e-5) -> None:
    # torch.testing.assert_close's defaults for float32, without its first-call import of
    # torch.distributed (about 10 s on a loaded machine, most of this file's run time).
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual, expected)


HIDDEN = 4  # 2^4 = 16 sub-networks: few enough to enumerate


def tiny_net(mode: str, p: float = 0.5, batchnorm: bool = False) -> nn.Module:
    """input → linear → [batch norm] → relu → dropout → linear, with 4 hidden units."""
    torch.manual_seed(0)
    if not batchnorm:
        # bias_init keeps every hidden unit active, so the 16 sub-networks compute 16 different functions.
        return MLP(3, 2, depth=1, width=HIDDEN, activation="relu", dropout=p, dropout_mode=mode, bias_init=2.0)
    model = nn.Sequential(
        nn.Linear(3, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(), Dropout(p, mode), nn.Linear(HIDDEN, 2)
    )
    with torch.no_grad():  # running statistics far from any batch's, so train-mode batch norm would show
        model[1].running_mean.fill_(-3.0)
        model[1].running_var.fill_(4.0)
    return model


def enumerate_sub_networks(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (16, batch, classes), probability of each mask (16,)) for every dropout mask.

    Written out by hand: hidden units in eval mode, each mask applied with the lecture's rule for
    the mode (survivors unchanged, or divided by 1 − p), then the output layer.
    """
    layers = list(model.net if isinstance(model, MLP) else model)
    body, dropout, head = nn.Sequential(*layers[:-2]), layers[-2], layers[-1]
    p, keep = dropout.p, 1 - dropout.p
    scale = 1.0 if dropout.mode == "weight_scaling" else 1.0 / keep
    with torch.no_grad():
        h = body.eval()(x)
        masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=h.shape[1])))
        logits = torch.stack([head(h * m * scale) for m in masks])
    kept = masks.sum(dim=1)
    weights = keep**kept * p ** (h.shape[1] - kept)
    return logits, weights


def inputs(batch: int = 8) -> torch.Tensor:
    return torch.randn(batch, 3, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", [0.5, 0.3])
def test_mean_over_all_sub_networks_is_the_weight_scaling_network(mode, p):
    model, x = tiny_net(mode, p), inputs()
    logits, weights = enumerate_sub_networks(model, x)
    assert_close(weights.sum(), torch.tensor(1.0))
    # The output layer is linear, so the expected logits are the logits of the expected hidden
    # units — exactly what weight scaling computes.
    mean_logits = (weights[:, None, None] * logits).sum(dim=0)
    with torch.no_grad():
        assert_close(mean_logits, model.eval()(x))
    ws = weight_scaling_probs(model, x)
    assert_close(ws, mean_logits.softmax(dim=-1))
    if p == 0.5:  # equally likely masks: the normalized geometric mean of all 16 is weight scaling
        assert_close(mc_average(logits.softmax(dim=-1), "geometric"), ws)
    # ... while the arithmetic mean of the probabilities is a different (nearby) prediction.
    arithmetic = (weights[:, None, None] * logits.softmax(dim=-1)).sum(dim=0)
    assert not torch.allclose(arithmetic, ws, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_sampled_average_converges_to_exact_ensemble_average(mode):
    model, x = tiny_net(mode), inputs()
    logits, weights = enumerate_sub_networks(model, x)
    probs = logits.softmax(dim=-1)
    exact = (weights[:, None, None] * probs).sum(dim=0)
    std = ((weights[:, None, None] * (probs - exact) ** 2).sum(dim=0)).sqrt()  # of one sub-network
    n = 4000
    mean = mc_average(sample_probs(model, x, n, torch.Generator().manual_seed(2)), "arithmetic")
    assert torch.all((mean - exact).abs() <= 5 * std / math.sqrt(n) + 1e-6)
    # The tolerance is tight enough to tell the ensemble average from weight scaling.
    assert not torch.all((weight_scaling_probs(model, x) - exact).abs() <= 5 * std / math.sqrt(n) + 1e-6)


@pytest.mark.parametrize("setup", ["mlp", "batchnorm", "chunked"])
@pytest.mark.parametrize("mode", MODES)
def test_each_sample_is_one_whole_sub_network(mode, setup, monkeypatch):
    if setup == "chunked":  # x split into forward passes of 3: every chunk must see the same masks
        monkeypatch.setattr(subnetworks, "CHUNK", 3)
    model, x = tiny_net(mode, batchnorm=setup == "batchnorm"), inputs()
    model.train()  # sample_probs must still keep batch norm in eval mode
    probs = enumerate_sub_networks(model, x)[0].softmax(dim=-1)  # (16, batch, classes)

    # max |difference| between whole-batch predictions, (a, 1, ...) against (1, b, ...) -> (a, b)
    def distance(a, b):
        return (a[:, None] - b[None]).abs().flatten(2).amax(dim=2)

    assert (distance(probs, probs) + torch.eye(len(probs))).min() > 1e-3  # each sample names its mask

    n = 40 if setup == "chunked" else 200  # chunked: one forward pass per chunk per sub-network
    samples = sample_probs(model, x, n, torch.Generator().manual_seed(3))
    nearest = distance(samples, probs).min(dim=1)
    assert nearest.values.max() < 1e-6  # the same mask for every example of the batch
    # ... and the masks really vary: all 16 in 200 draws (at least half of them in 40)
    assert len(nearest.indices.unique()) >= (len(probs) if n == 200 else len(probs) // 2)


def test_sample_probs_generator_reproducible():
    model, x = tiny_net("inverted"), inputs()
    first = sample_probs(model, x, 5, torch.Generator().manual_seed(4))
    assert_close(sample_probs(model, x, 5, torch.Generator().manual_seed(4)), first)
    assert not torch.equal(sample_probs(model, x, 5, torch.Generator().manual_seed(5)), first)
    assert not torch.equal(first[0], first[1]) or not torch.equal(first[1], first[2])  # fresh masks


def test_sample_probs_rejects_models_without_dltips_dropout():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="Dropout"):
        sample_probs(model, inputs(), 3)


def test_mc_average_by_hand():
    probs = torch.tensor([[[0.5, 0.5], [0.2, 0.8]], [[0.9, 0.1], [0.2, 0.8]]])  # (n=2, batch=2, 2)
    assert_close(mc_average(probs, "arithmetic"), torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
    a, b = math.sqrt(0.5 * 0.9), math.sqrt(0.5 * 0.1)
    assert_close(mc_average(probs, "geometric"), torch.tensor([[a / (a + b), b / (a + b)], [0.2, 0.8]]))
    # A class one sub-network rules out gets (almost) nothing from the geometric mean.
    veto = mc_average(torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]]), "geometric")
    assert torch.isfinite(veto).all() and veto[0, 1] < 1e-10
    assert_close(veto.sum(dim=-1), torch.ones(1))
    with pytest.raises(ValueError, match="geometric"):
        mc_average(probs, "harmonic")


def test_kl_divergence_matches_torch():
    g = torch.Generator().manual_seed(6)
    p, q = torch.randn(10, 5, generator=g).softmax(-1), torch.randn(10, 5, generator=g).softmax(-1)
    expected = F.kl_div(q.log(), p, reduction="batchmean").item()
    assert kl_divergence(p, q) == pytest.approx(expected, rel=1e-5)
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-6)
    assert kl_divergence(p, q) > 0


def test_evaluate_predictions_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.4, 0.5, 0.1]])
    y = torch.tensor([0, 1, 1])
    got = evaluate_predictions(probs, y)
    assert got["acc"] == pytest.approx(2 / 3)
    assert got["nll"] == pytest.approx(-(math.log(0.7) + math.log(0.3) + math.log(0.5)) / 3)
    # A zero probability for the true class is a large but finite loss.
    assert math.isfinite(evaluate_predictions(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))["nll"])


def curve_model(mode: str) -> MLP:
    torch.manual_seed(7)
    return MLP(5, 3, depth=2, width=16, activation="relu", dropout=0.5, input_dropout=0.2, dropout_mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_subnetwork_curve_rows_and_restores_model(mode):
    model = curve_model(mode)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    model.train()
    model.net[0].eval()  # a mixed state must come back exactly
    modes = [m.training for m in model.modules()]
    torch.manual_seed(8)
    before_train = model(x)
    with torch.no_grad():
        before_eval = copy.deepcopy(model).eval()(x)

    ns = (1, 3, 10)
    rows = subnetwork_curve(model, x, y, ns, torch.Generator().manual_seed(9))

    assert [m.training for m in model.modules()] == modes
    assert all(not m._forward_hooks for m in model.modules())
    torch.manual_seed(8)
    assert_close(model(x), before_train)  # dropout still per element, same RNG use
    with torch.no_grad():
        assert_close(copy.deepcopy(model).eval()(x), before_eval)

    assert [r["n"] for r in rows] == list(ns)
    keys = {f"{a}/{m}" for a in ("arithmetic", "geometric") for m in ("acc", "nll", "kl")}
    keys |= {"n", "weight_scaling/acc", "weight_scaling/nll"}
    assert all(set(r) == keys for r in rows)
    assert all(r[f"{a}/kl"] >= 0 for r in rows for a in ("arithmetic", "geometric"))
    assert all(math.isfinite(v) for r in rows for v in r.values())
    assert rows[0]["arithmetic/nll"] == pytest.approx(rows[0]["geometric/nll"], rel=1e-5)  # N = 1
    assert evaluate_predictions(weight_scaling_probs(model, x), y) == {
        "acc": rows[-1]["weight_scaling/acc"],
        "nll": rows[-1]["weight_scaling/nll"],
    }
    # Nested: the N = 3 row uses the first 3 of the 10 sub-networks drawn for N = 10.
    samples = sample_probs(model, x, 10, torch.Generator().manual_seed(9))
    for kind in ("arithmetic", "geometric"):
        avg = mc_average(samples[:3], kind)
        assert rows[1][f"{kind}/nll"] == pytest.approx(evaluate_predictions(avg, y)["nll"], rel=1e-6)
        assert rows[1][f"{kind}/kl"] == pytest.approx(kl_divergence(avg, weight_scaling_probs(model, x)), rel=1e-6)


def test_modes_restored_after_error():
    model = curve_model("weight_scaling").train()
    with pytest.raises(RuntimeError):
        sample_probs(model, torch.randn(4, 7), 2)  # wrong input width fails inside the forward
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())


def test_explicit_ensemble_curve():
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    model = curve_model("inverted").train()
    single = evaluate_predictions(weight_scaling_probs(model, x), y)
    rows = explicit_ensemble_curve([model, copy.deepcopy(model), copy.deepcopy(model)], x, y)
    assert [r["k"] for r in rows] == [1, 2, 3]
    for r in rows:  # identical members: the ensemble is the single model
        assert r["arithmetic/acc"] == pytest.approx(single["acc"])
        assert r["arithmetic/nll"] == pytest.approx(single["nll"], rel=1e-6)
    assert model.training

    torch.manual_seed(10)
    other = MLP(5, 3, depth=2, width=16, activation="relu")
    rows = explicit_ensemble_curve([model, other], x, y)
    mean = (weight_scaling_probs(model, x) + weight_scaling_probs(other, x)) / 2
    assert rows[1]["arithmetic/nll"] == pytest.approx(evaluate_predictions(mean, y)["nll"], rel=1e-6)


def test_log_curve_writes_readable_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    model = curve_model("weight_scaling")
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    rows = subnetwork_curve(model, x, y, (1, 4), torch.Generator().manual_seed(11))
    explicit = explicit_ensemble_curve([model, model], x, y)
    writer = SummaryWriter(log_dir=str(tmp_path))
    log_curve(writer, rows, "dropout")
    log_curve(writer, explicit, "explicit")
    writer.close()

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    for prefix, curve, step_key in (("dropout", rows, "n"), ("explicit", explicit, "k")):
        for key in curve[0]:
            if key == step_key:
                continue
            scalars = events.Scalars(f"~subnetworks/{prefix}/{key}")
            assert [s.step for s in scalars] == [r[step_key] for r in curve]
            assert [s.value for s in scalars] == pytest.approx([r[key] for r in curve], rel=1e-6)
    assert not any(tag.endswith(("/n", "/k")) for tag in events.Tags()["scalars"])
