"""One function per lecture claim: train the comparison, measure, decide by a fixed rule."""
from __future__ import annotations

import numpy as np

from dltips.lecture.dropout import dropout_ensemble
from dltips.lecture.figures import ACCURACY, activations_figure, curves_figure, overfitting_figure, vanishing_figure
from dltips.lecture.lab import Lab, Run, Section, fmt, mean_std, table
from dltips.tags import GRADIENTS, WEIGHTS, per_layer

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "softplus", "maxout")


def first(run: Run, tag: str) -> float:
    return run.scalars[tag][0][1]


def last(run: Run, tag: str) -> float:
    return run.scalars[tag][-1][1]


def plot_curves(lab: Lab, variants: dict[str, list[Run]], tag: str, name: str, title: str, ylabel: str, **kwargs) -> str:
    """Mean ± std over seeds of a per-epoch curve, one line per variant; kwargs: see curves_figure."""
    return lab.figure(curves_figure(variants, tag, title, ylabel, **kwargs), name)


def vanishing_gradient(lab: Lab) -> Section:
    acts = ("sigmoid", "relu", "maxout")
    variants = {
        a: lab.run("vanishing_gradient", a, ["experiment=vanishing_gradient", f"model.activation={a}", f"trainer.max_epochs={lab.epochs(10)}"])
        for a in acts
    }
    layers = len([t for t in variants["sigmoid"][0].scalars if t.startswith(f"{GRADIENTS}/layer_")])
    # At the first logged step, i.e. near the random start, as in Nielsen's figures.
    ratio = {a: [first(r, per_layer(GRADIENTS, layers)) / first(r, per_layer(GRADIENTS, 1)) for r in runs] for a, runs in variants.items()}
    moved = {a: [last(r, per_layer(WEIGHTS, 1, "moved_layer")) for r in runs] for a, runs in variants.items()}
    held = (
        mean_std(ratio["sigmoid"])[0] >= 100
        and mean_std(moved["sigmoid"])[0] < 0.01
        and all(mean_std(ratio[a])[0] < 10 for a in ("relu", "maxout"))
    )
    rows = [
        [a, fmt([first(r, per_layer(GRADIENTS, 1)) for r in runs], 6), fmt([first(r, per_layer(GRADIENTS, layers)) for r in runs], 4),
         fmt(ratio[a], 1), fmt(moved[a], 4), fmt([last(r, per_layer(WEIGHTS, layers, "moved_layer")) for r in runs], 3),
         fmt([r.metrics["test/acc"] for r in runs])]
        for a, runs in variants.items()
    ]
    idx = range(1, layers + 1)
    fig = vanishing_figure(
        {a: np.array([np.mean([first(r, per_layer(GRADIENTS, i)) for r in runs]) for i in idx]) for a, runs in variants.items()},
        {a: np.array([np.mean([last(r, per_layer(WEIGHTS, i, "moved_layer")) for r in runs]) for i in idx]) for a, runs in variants.items()},
    )
    return Section(
        title="Sigmoid gradients vanish toward the input; ReLU and maxout do not",
        claim="In a deep sigmoid network δ shrinks layer by layer (σ' ≤ 1/4): the first layer's gradient is orders of "
        "magnitude below the last layer's and its weights stay near their random start. ReLU and maxout pass the "
        "gradient through their active units.",
        rule="held if, in the 10-hidden-layer net (xavier init for all), sigmoid's ‖∂C/∂W^L‖/‖∂C/∂W¹‖ ≥ 100 near "
        "the start and layer 1 moves < 1% of its initial norm, while ReLU's and maxout's ratios are < 10.",
        held=held,
        headline=f"gradient ratio last/first layer: sigmoid {fmt(ratio['sigmoid'], 0)}, relu {fmt(ratio['relu'], 1)}, "
        f"maxout {fmt(ratio['maxout'], 1)}; sigmoid layer 1 moved {fmt(moved['sigmoid'], 4)}",
        table=table(["activation", "‖∂C/∂W¹‖", f"‖∂C/∂W^{layers}‖", "ratio", "layer 1 moved", f"layer {layers} moved", "test acc"], rows),
        figure=lab.figure(fig, "vanishing_gradient.png"),
    )


def activations(lab: Lab) -> Section:
    depths = (2, 10) if lab.quick else (2, 5, 10)
    acc = {
        (a, d): [r.metrics["test/acc"] for r in lab.run(
            "activations", f"{a},depth={d}",
            ["experiment=activations", f"model.activation={a}", f"model.depth={d}", f"trainer.max_epochs={lab.epochs(15)}"],
            seeds=1 if lab.quick else 2,
        )]
        for a in ACTIVATIONS for d in depths
    }
    deep = depths[-1]
    gap = {a: mean_std(acc[(a, deep)])[0] - mean_std(acc[("sigmoid", deep)])[0] for a in ("relu", "maxout")}
    held = all(g > 0.1 for g in gap.values())
    fig = activations_figure(acc, ACTIVATIONS, depths)
    return Section(
        title="ReLU-like units and maxout keep deep networks trainable",
        claim="Sigmoid networks get harder to train as they get deeper; ReLU, its variants and maxout do not suffer "
        "from the vanishing gradient.",
        rule=f"held if at depth {deep} ReLU's and maxout's mean test accuracy beat sigmoid's by more than 0.10.",
        held=held,
        headline=f"depth {deep}: relu − sigmoid = {gap['relu']:+.3f}, maxout − sigmoid = {gap['maxout']:+.3f}",
        table=table(["activation", *[f"depth {d}" for d in depths]], [[a, *[fmt(acc[(a, d)]) for d in depths]] for a in ACTIVATIONS]),
        figure=lab.figure(fig, "activations.png"),
    )


def early(runs: list[Run], epochs: int = 3) -> list[float]:
    """Mean validation accuracy over the first epochs: how fast learning starts."""
    return [float(np.mean([v for _, v in r.scalars["val/acc"][:epochs]])) for r in runs]


def faster_start(
    lab: Lab, study: str, key: str, options: tuple[str, ...], better: str, worse: str, shown: str, **section
) -> Section:
    """Sweep `key` over `options` and decide whether `better` starts learning faster than `worse`:
    its mean val/acc over the first 3 epochs exceeds the other's by more than the larger std.
    `shown`: what the figure compares, for its title."""
    variants = {
        o: lab.run(study, o, [f"experiment={study}", f"{key}={o}", f"trainer.max_epochs={lab.epochs(15)}"]) for o in options
    }
    (b_mean, b_std), (w_mean, w_std) = mean_std(early(variants[better])), mean_std(early(variants[worse]))
    rows = [[o, fmt(early(v)), fmt([r.metrics["test/acc"] for r in v])] for o, v in variants.items()]
    return Section(
        **section,
        rule=f"held if '{better}' has a mean validation accuracy over the first 3 epochs higher than '{worse}' by "
        "more than the larger of their standard deviations over seeds.",
        held=b_mean - w_mean > max(b_std, w_std),
        headline=f"val/acc over the first 3 epochs: {better} {fmt(early(variants[better]))}, {worse} {fmt(early(variants[worse]))}",
        table=table([key, "val/acc, first 3 epochs", "test acc"], rows),
        figure=plot_curves(lab, variants, "val/acc", f"{study}.png", f"Validation accuracy per epoch, {shown}",
                           "validation accuracy", ylim=ACCURACY),
    )


def cost(lab: Lab) -> Section:
    return faster_start(
        lab, "cost", "loss", ("mse", "cross_entropy"), better="cross_entropy", worse="mse",
        shown="softmax + cross-entropy vs quadratic cost",
        title="Softmax + cross-entropy learns faster than the quadratic cost",
        claim="With softmax + cross-entropy δ^L = y − ŷ stays large while the prediction is wrong, so learning does not "
        "slow down the way it does with the quadratic cost on saturated outputs.",
    )


def normalization(lab: Lab) -> Section:
    return faster_start(
        lab, "normalization", "data.normalize", ("standard", "minmax", "none"), better="standard", worse="none",
        shown="by input normalization (data.normalize)",
        title="Normalizing the inputs speeds up training",
        claim="Scaling each input dimension to (x − m_i)/σ_i with the training statistics (and the test data the same "
        "way) makes gradient descent converge faster.",
    )


# name (its colour in dltips.plots.COLORS) -> overrides; ours and torch's built-in side by side
OPTIMIZERS = {
    "sgd": ["optimizer=sgd"],
    "sgd_inverse_sqrt": ["optimizer=sgd", "scheduler=inverse_sqrt"],
    "adagrad": ["optimizer=adagrad"],
    "torch_adagrad": ["optimizer=torch_adagrad"],
    "momentum": ["optimizer=momentum"],
    "torch_momentum": ["optimizer=torch_momentum"],
    "adam": ["optimizer=adam"],
}
OPTIMIZER_LABELS = {"sgd_inverse_sqrt": "sgd + 1/t decay", "adagrad": "adagrad (ours)", "momentum": "momentum (ours)"}


def optimizers(lab: Lab) -> Section:
    variants = {
        k: lab.run("optimizers", k, ["experiment=optimizers", *o, f"trainer.max_epochs={lab.epochs(15)}"])
        for k, o in OPTIMIZERS.items()
    }

    def gap(a: str, b: str) -> float:
        return max(abs(x.metrics["val/loss"] - y.metrics["val/loss"]) for x, y in zip(variants[a], variants[b]))

    same = {k: gap(k, f"torch_{k}") for k in ("adagrad", "momentum")}
    loss = {k: [r.metrics["train/loss"] for r in v] for k, v in variants.items()}
    faster = mean_std(loss["momentum"])[0] < mean_std(loss["sgd"])[0]
    held = max(same.values()) < 1e-3 and faster
    rows = [[OPTIMIZER_LABELS.get(k, k), fmt(loss[k], 4), fmt([r.metrics["test/acc"] for r in v])] for k, v in variants.items()]
    return Section(
        title="Adagrad and momentum, as the lecture writes them",
        claim="The lecture's Adagrad (η/√(t+1) over the RMS of past gradients) is torch's Adagrad without lr_decay; "
        "its momentum (v ← λv − η∇C) is SGD with momentum at a constant rate; momentum reaches a lower training "
        "loss than plain gradient descent in the same time.",
        rule="held if ours and torch's give the same final validation loss (within 1e-3, every seed) and momentum's "
        "final training loss is below plain SGD's.",
        held=held,
        headline=f"largest Δ val/loss, ours vs torch: adagrad {same['adagrad']:.1e}, momentum {same['momentum']:.1e}; "
        f"final train loss momentum {fmt(loss['momentum'], 4)} vs sgd {fmt(loss['sgd'], 4)}",
        table=table(["optimizer", "final train loss", "test acc"], rows),
        figure=plot_curves(
            lab, variants, "train/loss_epoch", "optimizers.png", "Training loss per epoch by optimizer",
            "training loss (eval mode, log)", labels=OPTIMIZER_LABELS, log=True,
        ),
    )


def overfitting(lab: Lab) -> Section:
    remedies = ("none", "weight_decay", "early_stopping", "augmentation", "dropout")
    variants = {
        m: lab.run("overfitting", m, ["experiment=overfitting", f"remedy={m}", f"trainer.max_epochs={lab.epochs(100)}"])
        for m in remedies
    }
    test = {m: [r.metrics["test/acc"] for r in v] for m, v in variants.items()}
    base = mean_std(test["none"])[0]
    helped = [m for m in remedies[1:] if mean_std(test[m])[0] > base]
    rows = [
        [m, fmt([r.metrics["train/acc"] for r in v]), fmt(test[m]), f"{mean_std(test[m])[0] - base:+.3f}"]
        for m, v in variants.items()
    ]
    fig = overfitting_figure({m: [r.metrics["train/acc"] for r in v] for m, v in variants.items()}, test)
    return Section(
        title="Remedies against overfitting help on a small training set",
        claim="With little data (200 training digits) a network fits the training set and generalises worse; weight "
        "decay, early stopping, more (augmented) data and dropout each reduce that.",
        rule="held if every remedy's mean test accuracy is above the no-remedy baseline (each remedy is reported).",
        held=len(helped) == len(remedies) - 1,
        headline=f"improved on 'none' ({base:.3f}): {', '.join(helped) or 'none'}; "
        f"not: {', '.join(m for m in remedies[1:] if m not in helped) or 'none'}",
        table=table(["remedy", "train acc", "test acc", "Δ test acc vs none"], rows),
        figure=lab.figure(fig, "overfitting.png"),
    )


STUDIES = {
    "vanishing_gradient": vanishing_gradient,
    "activations": activations,
    "cost": cost,
    "normalization": normalization,
    "optimizers": optimizers,
    "overfitting": overfitting,
    "dropout_ensemble": dropout_ensemble,
}
