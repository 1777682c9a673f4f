"""Dead ReLUs: a large learning rate kills units for good; the lecture's remedies keep them alive."""

from __future__ import annotations

import numpy as np
import torch

from dltips.nn import Maxout
from dltips.observe.diagnostics import pre_activations
from dltips.observe.intervals import paired
from lecture.figures_units import dead_units_figure
from lecture.lab import Lab, Run, Section, fmt, fmt_paired, mean_std, table
from lecture.trained import load

# variant -> its overrides of experiment=dead_relu (Adam at 0.03 unless said otherwise)
VARIANTS = {
    "relu, lr 0.001": ["model.activation=relu", "optimizer.lr=0.001"],
    "relu": ["model.activation=relu"],
    "softplus": ["model.activation=softplus"],
    "relu, bias 0.5": ["model.activation=relu", "model.bias_init=0.5"],
    "leaky_relu": ["model.activation=leaky_relu"],
    "prelu": ["model.activation=prelu"],
    "maxout": ["model.activation=maxout"],
}
REMEDIES = ("softplus", "relu, bias 0.5", "leaky_relu", "prelu", "maxout")
# Why a remedy may not help here, said in the report where it did not.
LIKELY = {
    "softplus": "softplus's gradient σ(z) vanishes for z ≪ 0 too: a softplus unit pushed far below 0 is as dead as "
    "a ReLU",
    "relu, bias 0.5": "Adam moves every weight by about the rate, 0.03, per step whatever its gradient: a few dozen "
    "steps undo a bias start of 0.5",
    "leaky_relu": "an off leaky unit still learns, but at slope 0.01 it adds almost nothing to the output, so the "
    "network is about as thin as the ReLU one",
    "prelu": "α is learned and may shrink toward 0, making PReLU a ReLU again",
    "maxout": "maxout units cannot die, but with 5 seeds the gain is within the noise",
}


def dead_shares(run: Run) -> tuple[list[float], float]:
    """Per hidden layer, the share of units whose input z is ≤ 0 on every training example (the
    run's ~activations/dead_layer_i, over the whole training set instead of one batch); and the
    largest |∂C/∂w| over the weights into those units, C on the whole training set (ReLU: 0).
    Maxout units always pass the gradient to their winning piece: none is dead (all zeros)."""
    model, splits = load(run)
    x, y = splits.train
    if any(isinstance(m, Maxout) for m in model.modules()):
        return [0.0] * len(model.linears()[:-1]), 0.0
    off = [(z <= 0).all(dim=0) for z in pre_activations(model, x)]
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    grads = [
        layer.weight.grad[dead].abs().max().item() if dead.any() else 0.0 for layer, dead in zip(model.linears(), off)
    ]
    return [d.float().mean().item() for d in off], max(grads)


def dead_units(lab: Lab) -> Section:
    epochs = lab.epochs(20)
    runs = {
        v: lab.run(
            "dead_relu",
            v.replace(", ", ","),
            ["experiment=dead_relu", "diagnostics=false", *o, f"trainer.max_epochs={epochs}"],
        )
        for v, o in VARIANTS.items()
    }
    measured = {v: [dead_shares(r) for r in rs] for v, rs in runs.items()}
    layers = {v: np.array([shares for shares, _ in m]) for v, m in measured.items()}  # (seeds, layers)
    dead = {v: list(s.mean(axis=1)) for v, s in layers.items()}  # mean over hidden layers, per seed
    acc = {v: [r.metrics["test/acc"] for r in rs] for v, rs in runs.items()}
    grad = max(g for _, g in measured["relu"])
    kills = mean_std(dead["relu"])[0] >= 0.2 and paired(dead["relu"], dead["relu, lr 0.001"])[1] > 0 and grad == 0.0
    helped = {
        r: paired(acc[r], acc["relu"])[1] > 0 and mean_std(dead[r])[0] < mean_std(dead["relu"])[0] for r in REMEDIES
    }
    n, train_size = layers["relu"].shape[1], len(load(runs["relu"][0])[1].train[1])
    rows = [
        [
            v,
            *[fmt(layers[v][:, i], 2) for i in range(n)],
            fmt(dead[v], 2),
            fmt(acc[v]),
            fmt_paired(acc[v], acc["relu"]) if v in REMEDIES else "",
        ]
        for v in VARIANTS
    ]
    failed = [r for r in REMEDIES if not helped[r]]
    return Section(
        title="Dead ReLUs stop learning; softplus, a positive bias, leaky ReLU, PReLU and maxout keep units alive",
        claim="A ReLU unit whose input is negative on every example passes no gradient: every weight into it stops "
        "updating, for good. Remedies: softplus, a large initial bias, and units that never output a flat 0 "
        "(leaky ReLU, PReLU, maxout).",
        rule="held if, in a 3×64 network trained with Adam at 0.03 (30× its usual rate), ReLU leaves on average ≥ 20% "
        "of hidden units off on every training example, more than at 0.001 seed by seed, the weights into them get "
        "exactly zero gradient over the whole training set, and each remedy at 0.03 both has fewer such units on "
        "average and a higher test accuracy than ReLU seed by seed (95% interval of the difference above 0).",
        held=kills and not failed,
        headline=f"units off everywhere: relu {fmt(dead['relu'], 2)} at lr 0.03 "
        f"vs {fmt(dead['relu, lr 0.001'], 2)} at 0.001, max \\|∂C/∂w\\| into them {grad:.0e}; test acc remedy − relu: "
        + ", ".join(f"{r} {fmt_paired(acc[r], acc['relu'])}" for r in REMEDIES),
        table=table(
            [
                "variant (Adam, lr 0.03)",
                *[f"off, layer {i + 1}" for i in range(n)],
                "off, mean",
                "test acc",
                "Δ test acc vs relu",
            ],
            rows,
        ),
        figure=lab.figure(dead_units_figure(layers, acc, REMEDIES), "dead_relu.png"),
        data="digits (1,797 8×8 images; 270 test)",
        published="— (the lecture's argument; no number)",
        notes=[
            f"off: the unit's input z ≤ 0 on every one of the {train_size:,} training digits after training (the run's "
            "~activations/dead_layer_i, over the whole training set instead of one batch). For ReLU such a unit is "
            "dead; leaky ReLU, PReLU and softplus units that are off still pass a small gradient (slope 0.01, α, "
            "σ(z)), and a maxout unit always passes it to its winning piece, so maxout has none by construction.",
            f"{epochs} epochs, batches of 32, 5 seeds per variant on one split; relu at lr 0.001 is the same network "
            "at Adam's usual rate, for comparison.",
            *(
                f"{r} did not help in both respects (off {fmt(dead[r], 2)}, "
                f"Δ test acc {fmt_paired(acc[r], acc['relu'])}); likely: {LIKELY[r]}."
                for r in failed
            ),
        ],
    )
