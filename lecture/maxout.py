"""Maxout: ReLU as its special case, the activation functions it learns, the thin linear network
each example trains."""

from __future__ import annotations

import numpy as np
import torch

from dltips.nn import MLP, Maxout
from dltips.observe.diagnostics import pre_activations
from lecture.figures_units import maxout_functions_figure, piece_wins_figure
from lecture.lab import Lab, Run, Section, fmt, sample, table
from lecture.trained import load

CHECKED = 32  # training examples (drawn at random) whose single-example gradient is checked to reach winners only
TRAINED = 0.01  # a piece counts as trained if it wins on at least this share of the training examples


def largest_gap(a: list[Run], b: list[Run]) -> float:
    """max |a − b| over seeds of every per-epoch validation loss and the final test loss."""
    gaps = [
        abs(x - y)
        for r, s in zip(a, b)
        for (_, x), (_, y) in zip(r.scalars["val/loss"], s.scalars["val/loss"], strict=True)
    ]
    return max(gaps + [abs(r.metrics["test/loss"] - s.metrics["test/loss"]) for r, s in zip(a, b)])


def weight_gap(a: list[Run], b: list[Run]) -> float:
    """max |W_a − W_b| over every final weight and bias of the paired networks."""
    gap = 0.0
    for r, s in zip(a, b):
        (m, _), (n, _) = load(r), load(s)
        for p, q in zip(m.linears(), n.linears(), strict=True):
            gap = max(gap, (p.weight - q.weight).abs().max().item(), (p.bias - q.bias).abs().max().item())
    return gap


def winners(model: MLP, x: torch.Tensor) -> list[torch.Tensor]:
    """Per maxout layer, the piece each unit's max picks on each example (the first maximal one,
    as training does): (examples, units)."""
    return [z.argmax(dim=-1) for z in pre_activations(model, x)]


def only_winners_trained(model: MLP, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether each single example's gradient reaches only the rows of its winning pieces."""
    layers = [m for m in model.modules() if isinstance(m, Maxout)]
    for i in range(len(x)):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for layer, win in zip(layers, winners(model, x[i : i + 1])):
            rows = (
                layer.linear.weight.grad.unflatten(0, (layer.out_features, layer.pieces)).abs().sum(dim=-1)
            )  # (units, pieces)
            rows[torch.arange(layer.out_features), win[0]] = 0
            if rows.any():
                return False
    return True


def piece_statistics(model: MLP, x: torch.Tensor, least: float = TRAINED) -> tuple[list[np.ndarray], list[float], int]:
    """Per layer: the share of examples each piece wins (units·pieces,), the share of pieces that
    win on at least `least` of the examples; and how many distinct thin networks (winner
    patterns) the examples use."""
    win = winners(model, x)
    pieces = [m.pieces for m in model.modules() if isinstance(m, Maxout)]
    shares = [torch.nn.functional.one_hot(w, k).float().mean(dim=0).flatten().numpy() for w, k in zip(win, pieces)]
    trained = [float((s >= least).mean()) if least > 0 else float((s > 0).mean()) for s in shares]
    return shares, trained, len(torch.unique(torch.cat(win, dim=1), dim=0))


@torch.no_grad()
def unit_curves(model: MLP, x: torch.Tensor, y: torch.Tensor, n: int = 4) -> list[dict]:
    """Layer 1's pieces along the line from the first training example of class 0 to the first of
    class 1, t from −0.5 to 1.5, for the first `n` units with the most pieces winning somewhere."""
    a, b = x[(y == 0).nonzero()[0, 0]], x[(y == 1).nonzero()[0, 0]]
    t = torch.linspace(-0.5, 1.5, 201)
    z = model.net[0].pre_activation((1 - t)[:, None] * a + t[:, None] * b)  # (t, units, pieces)
    used = torch.tensor([len(torch.unique(z[:, j].argmax(dim=-1))) for j in range(z.shape[1])])
    units = sorted(range(z.shape[1]), key=lambda j: (-used[j].item(), j))[:n]
    return [
        {"t": t.numpy(), "pieces": z[:, j].T.numpy(), "title": f"unit {j + 1}: {used[j]} pieces win here"}
        for j in sorted(units)
    ]


def maxout(lab: Lab) -> list[Section]:
    """Two verdicts. ReLU as maxout: held if the ReLU and zero-piece maxout networks train the same to
    1e-6; fails on any larger gap. Thin networks: held if a single example's gradient reaches only
    its winning pieces and every piece wins on at least TRAINED of the training examples, every
    seed; fails on one gradient into a losing piece or one piece under that share."""
    epochs = lab.epochs(10)
    pair = {
        a: lab.run(
            "maxout",
            f"relu_as_{a}",
            ["experiment=maxout_relu", f"model.activation={a}", f"trainer.max_epochs={epochs}"],
        )
        for a in ("relu", "maxout")
    }
    gap, wgap = largest_gap(pair["relu"], pair["maxout"]), weight_gap(pair["relu"], pair["maxout"])
    runs = lab.run(
        "maxout", "pieces=4", ["experiment=maxout", "model.pieces=4", f"trainer.max_epochs={lab.epochs(15)}"]
    )
    stats, only, curves = [], [], None
    for seed, run in enumerate(runs):
        model, splits = load(run)
        x, y = splits.train
        stats.append(piece_statistics(model, x))
        checked = sample(len(y), CHECKED, seed)
        only.append(only_winners_trained(model, x[checked], y[checked]))
        curves = curves or unit_curves(model, x, y)
    win_share = np.array([s[1] for s in stats])  # (seeds, layers): pieces winning ≥ TRAINED of the examples
    once = np.array([[float((w > 0).mean()) for w in s[0]] for s in stats])  # … winning ≥ 1 example
    patterns = [s[2] for s in stats]
    n = len(x)
    return [
        Section(
            title="ReLU is maxout with two pieces, one held at zero",
            claim="A maxout unit with two pieces, one of them fixed at 0 (weights and bias zero, not trained), "
            "computes max(0, w·x + b): ReLU. Its forward pass, its gradients and hence a whole training run are the "
            "ReLU network's.",
            rule="held if, from the same seed, the ReLU network and the maxout network with model.zero_piece=true give "
            "the same validation loss at every epoch and the same test loss (within 1e-6), every seed. It would have "
            "failed had any of them differed by more than 1e-6.",
            held=gap <= 1e-6,
            headline=f"largest \\|Δ\\| of val/loss (every epoch) and test loss: {gap:.1e}; "
            f"of the final weights: {wgap:.1e}",
            table=table(
                ["network", "test acc", "test loss"],
                [
                    [a, fmt([r.metrics["test/acc"] for r in rs]), fmt([r.metrics["test/loss"] for r in rs], 4)]
                    for a, rs in pair.items()
                ],
            ),
            figure=lab.figure(maxout_functions_figure(curves), "maxout_functions.png"),
            data="digits (270 test)",
            published="— (an identity; no number)",
            notes=[
                f"2×64 units, SGD 0.1, {epochs} epochs, {len(pair['relu'])} seeds each; the zero piece comes first, so "
                "that a tie at z = 0 routes no gradient, as ReLU's derivative at 0 is 0. tests/test_lecture_more.py "
                "checks forward and gradients on random inputs.",
                "The figure is the other direction: what maxout units learn when no piece is held at zero (next "
                "claim's networks, seed 0).",
            ],
        ),
        Section(
            title="Maxout trains a thin linear network per example, and every piece gets trained",
            claim="In a maxout network only the winning piece of each unit passes the gradient: each example trains a "
            "thin linear network. Different examples pick different pieces, so all the pieces get trained.",
            rule=f"held if, in every seed of a 2×64 maxout network with 4 pieces, the gradient of a single example "
            f"reaches only its winning pieces (checked on {CHECKED} training examples drawn at random) and every piece "
            f"of every layer wins on at least {TRAINED:.0%} of the training examples ({round(TRAINED * n)} of {n:,}). "
            "It would have failed had a gradient reached a losing piece, or had a single piece in any layer of any "
            f"seed won on fewer than {TRAINED:.0%} of the examples.",
            held=all(only) and bool((win_share == 1.0).all()),
            headline=f"pieces winning on ≥ {TRAINED:.0%} of the training examples: "
            + ", ".join(f"layer {l + 1} {fmt(win_share[:, l], 3)}" for l in range(win_share.shape[1]))
            + f"; gradients reach only winners: {sum(only)}/{len(only)} seeds",
            table=table(
                [
                    "hidden layer",
                    f"pieces that win ≥ {TRAINED:.0%} of the examples",
                    "pieces that win ≥ 1 example",
                    "smallest piece's share",
                    "median piece's share",
                    "largest piece's share",
                ],
                [
                    [
                        l + 1,
                        fmt(win_share[:, l], 3),
                        fmt(once[:, l], 3),
                        fmt([s[0][l].min() for s in stats], 4),
                        fmt([np.median(s[0][l]) for s in stats], 3),
                        fmt([s[0][l].max() for s in stats], 3),
                    ]
                    for l in range(win_share.shape[1])
                ],
            ),
            figure=lab.figure(piece_wins_figure(stats[0][0], win_share, TRAINED), "maxout_pieces.png"),
            data=f"digits ({n:,} training digits)",
            published="— (the lecture's argument; no number)",
            notes=[
                f"distinct thin networks (winner patterns over both layers) among the {n:,} training digits: "
                f"{fmt(patterns, 0)}.",
                "a piece that wins on no example is what ~activations/idle_pieces_layer_i of a run with "
                "diagnostics=true counts, there on one batch, here on the whole training set.",
            ],
            history=[
                "First judged by ≥ 90% of each layer's pieces winning on at least one training example (it held: "
                "layer 2 0.986), which counts a piece that wins 1 of 1,297 examples as trained. Now every piece must "
                f"win on {TRAINED:.0%} of them.",
            ],
        ),
    ]
