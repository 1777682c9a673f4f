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


def dead_units(lab: Lab) -> list[Section]:
    """Two verdicts. Mechanism: held if ReLU at Adam 0.03 leaves ≥ 20% of units off on every training
    example, more than at 0.001 seed by seed, with exactly zero gradient into them; fails if fewer
    die, no more than at the usual rate, or a gradient reaches them. Remedy: held if every remedy
    has fewer such units and a higher test accuracy than ReLU seed by seed; fails if one does not."""
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
    _, splits = load(runs["relu"][0])
    n, train_size, test_size = layers["relu"].shape[1], len(splits.train[1]), len(splits.test[1])
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
    shared = dict(
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
    )
    setting = (
        f"{epochs} epochs, batches of 32, {len(acc['relu'])} seeds per variant; relu at lr 0.001 is the same network "
        "at Adam's usual rate, for comparison."
    )
    history = [
        "First one verdict for both parts, the mechanism and the remedies (did not hold, though the mechanism held); "
        "now one verdict each."
    ]
    return [
        Section(
            title="Dead ReLUs: a unit off on every example gets no gradient and stays dead",
            claim="A ReLU unit whose input is negative on every example passes no gradient: every weight into it stops "
            "updating, for good. A large learning rate pushes units there.",
            rule="held if, in a 3×64 network trained with Adam at 0.03 (30× its usual rate), ReLU leaves on average "
            "≥ 20% of hidden units off on every training example, more than at 0.001 seed by seed (95% interval of "
            "the difference above 0), and the weights into them get exactly zero gradient over the whole training "
            "set. It would have failed had fewer than 20% been off, no more than at the usual rate, or had any "
            "weight into an off unit had a non-zero gradient.",
            held=kills,
            headline=f"units off everywhere: relu {fmt(dead['relu'], 2)} at lr 0.03 vs "
            f"{fmt(dead['relu, lr 0.001'], 2)} at 0.001, difference "
            f"{fmt_paired(dead['relu'], dead['relu, lr 0.001'], 2)}; max \\|∂C/∂w\\| into them {grad:.0e}",
            notes=[
                f"off: the unit's input z ≤ 0 on every one of the {train_size:,} training digits after training (the "
                "run's ~activations/dead_layer_i, over the whole training set instead of one batch). The figure's left "
                "panel.",
                setting,
            ],
            history=history,
            **shared,
        ),
        Section(
            title="Softplus, a positive bias, leaky ReLU, PReLU and maxout keep units alive and beat ReLU",
            claim="Remedies for dead ReLUs: softplus, a large initial bias, and units that never output a flat 0 "
            "(leaky ReLU, PReLU, maxout) keep units alive, and so train better than ReLU at the same rate.",
            rule="held if each remedy, in the same network at Adam 0.03, has on average fewer units off on every "
            "training example than ReLU and a higher test accuracy than ReLU seed by seed (95% interval of the "
            "difference above 0). It would have failed had any remedy's interval reached 0 or below, or had it as "
            "many units off as ReLU.",
            held=not failed,
            headline="test acc remedy − relu: " + ", ".join(f"{r} {fmt_paired(acc[r], acc['relu'])}" for r in REMEDIES),
            held_out=("test", test_size),
            notes=[
                "leaky ReLU, PReLU and softplus units that are off still pass a small gradient (slope 0.01, α, σ(z)), "
                "and a maxout unit always passes it to its winning piece, so maxout has none off by construction. "
                "The figure's right panel.",
                setting,
                *(
                    f"{r} did not help in both respects (off {fmt(dead[r], 2)}, "
                    f"Δ test acc {fmt_paired(acc[r], acc['relu'])}); likely: {LIKELY[r]}."
                    for r in failed
                ),
            ],
            history=history,
            **shared,
        ),
    ]
