"""One function per lecture claim: train the comparison, measure, decide by a fixed rule."""

from __future__ import annotations

import numpy as np

from dltips.observe.intervals import paired
from dltips.observe.tags import GRADIENTS, WEIGHTS, per_layer
from lecture.adagrad import adagrad
from lecture.dead_units import dead_units
from lecture.dropout import dropout_ensemble
from lecture.dropout_advice import dropout_advice
from lecture.figures import ACCURACY, activations_figure, curves_figure, vanishing_figure
from lecture.keras_demo import keras_demo, keras_demo_deep
from lecture.lab import Lab, Run, Section, fmt, fmt_paired, mean_std, table
from lecture.lr_decay import lr_decay
from lecture.maxout import maxout
from lecture.mechanisms import SLIDES as MECHANISMS
from lecture.nielsen import nielsen
from lecture.normalization import normalization
from lecture.overfitting import overfitting
from lecture.practice import SLIDES as PRACTICE
from lecture.regularization import early_stopping, weight_decay_noise
from lecture.trained import held_out
from lecture.trajectories import momentum_surfaces

SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")  # W¹⁰ in a table header: Markdown has no superscript
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "softplus", "maxout")


def first(run: Run, tag: str) -> float:
    return run.scalars[tag][0][1]


def last(run: Run, tag: str) -> float:
    return run.scalars[tag][-1][1]


def plot_curves(
    lab: Lab, variants: dict[str, list[Run]], tag: str, name: str, title: str, ylabel: str, **kwargs
) -> str:
    """Mean ± std over seeds of a per-epoch curve, one line per variant; kwargs: see curves_figure."""
    return lab.figure(curves_figure(variants, tag, title, ylabel, **kwargs), name)


def vanishing_gradient(lab: Lab) -> list[Section]:
    acts = ("sigmoid", "relu", "maxout")
    variants = {
        a: lab.run(
            "vanishing_gradient",
            a,
            ["experiment=vanishing_gradient", f"model.activation={a}", f"trainer.max_epochs={lab.epochs(10)}"],
        )
        for a in acts
    }
    layers = len([t for t in variants["sigmoid"][0].scalars if t.startswith(f"{GRADIENTS}/layer_")])
    # At the first logged step, i.e. near the random start, as in Nielsen's figures.
    ratio = {
        a: [first(r, per_layer(GRADIENTS, layers)) / first(r, per_layer(GRADIENTS, 1)) for r in runs]
        for a, runs in variants.items()
    }
    moved = {a: [last(r, per_layer(WEIGHTS, 1, "moved_layer")) for r in runs] for a, runs in variants.items()}
    held = (
        mean_std(ratio["sigmoid"])[0] >= 100
        and mean_std(moved["sigmoid"])[0] < 0.01
        and all(mean_std(ratio[a])[0] < 10 for a in ("relu", "maxout"))
    )
    rows = [
        [
            a,
            fmt([first(r, per_layer(GRADIENTS, 1)) for r in runs], 6),
            fmt([first(r, per_layer(GRADIENTS, layers)) for r in runs], 4),
            fmt(ratio[a], 1),
            fmt(moved[a], 4),
            fmt([last(r, per_layer(WEIGHTS, layers, "moved_layer")) for r in runs], 3),
            fmt([r.metrics["test/acc"] for r in runs]),
        ]
        for a, runs in variants.items()
    ]
    idx = range(1, layers + 1)
    fig = vanishing_figure(
        {
            a: np.array([np.mean([first(r, per_layer(GRADIENTS, i)) for r in runs]) for i in idx])
            for a, runs in variants.items()
        },
        {
            a: np.array([np.mean([last(r, per_layer(WEIGHTS, i, "moved_layer")) for r in runs]) for i in idx])
            for a, runs in variants.items()
        },
    )
    return [
        Section(
            title="Sigmoid gradients vanish toward the input; ReLU and maxout do not",
            claim="In a deep sigmoid network δ shrinks layer by layer (σ' ≤ 1/4): the first layer's gradient is orders "
            "of magnitude below the last layer's and its weights stay near their random start. ReLU and maxout pass "
            "the gradient through their active units.",
            rule="held if, in the 10-hidden-layer net (xavier init for all), sigmoid's ‖∂C/∂W^L‖/‖∂C/∂W¹‖ ≥ 100 near "
            "the start and layer 1 moves < 1% of its initial norm, while ReLU's and maxout's ratios are < 10. It would "
            "have failed had sigmoid's ratio been under 100 or its layer 1 moved 1%, or ReLU's or maxout's ratio "
            "reached 10.",
            held=held,
            headline=f"gradient ratio last/first layer: sigmoid {fmt(ratio['sigmoid'], 0)}, relu "
            f"{fmt(ratio['relu'], 1)}, maxout {fmt(ratio['maxout'], 1)}; sigmoid layer 1 moved "
            f"{fmt(moved['sigmoid'], 4)}",
            table=table(
                [
                    "activation",
                    "‖∂C/∂W¹‖",
                    f"‖∂C/∂W{str(layers).translate(SUPERSCRIPT)}‖",
                    "ratio",
                    "layer 1 moved",
                    f"layer {layers} moved",
                    "test acc",
                ],
                rows,
            ),
            figure=lab.figure(fig, "vanishing_gradient.png"),
            data="digits (1,797 8×8 images; 270 test)",
            published="Nielsen ch. 5: first hidden layer ≈ 24× slower than the last of three (next claim)",
        ),
        nielsen(lab),
    ]


def activations(lab: Lab) -> Section:
    depths = (2, 10)
    runs = {
        (a, d): lab.run(
            "activations",
            f"{a},depth={d}",
            [
                "experiment=activations",
                "diagnostics=false",  # the claim reads test accuracy only; the per-layer logs cost 3/4 of the time
                f"model.activation={a}",
                f"model.depth={d}",
                f"trainer.max_epochs={lab.epochs(15)}",
            ],
        )
        for a in ACTIVATIONS
        for d in depths
    }
    acc = {k: [r.metrics["test/acc"] for r in rs] for k, rs in runs.items()}
    deep = depths[-1]
    gap = {a: paired(acc[(a, deep)], acc[("sigmoid", deep)]) for a in ("relu", "maxout")}
    held = all(low > 0.1 for _, low, _ in gap.values())
    fig = activations_figure(acc, ACTIVATIONS, depths)
    return Section(
        title="ReLU-like units and maxout keep deep networks trainable",
        claim="Sigmoid networks get harder to train as they get deeper; ReLU, its variants and maxout do not suffer "
        "from the vanishing gradient.",
        rule=f"held if at depth {deep} ReLU's and maxout's test accuracy beat sigmoid's by more than 0.10 seed by "
        "seed: the 95% interval of the difference lies above 0.10. It would have failed had either interval reached "
        "0.10 or below.",
        held=held,
        headline=f"test acc at depth {deep}: relu − sigmoid {fmt_paired(acc[('relu', deep)], acc[('sigmoid', deep)])}, "
        f"maxout − sigmoid {fmt_paired(acc[('maxout', deep)], acc[('sigmoid', deep)])}",
        table=table(
            ["activation", *[f"depth {d}" for d in depths]],
            [[a, *[fmt(acc[(a, d)]) for d in depths]] for a in ACTIVATIONS],
        ),
        figure=lab.figure(fig, "activations.png"),
        data="digits (270 test)",
        held_out=held_out(runs[("sigmoid", deep)][0]),
        published="— (the lecture's argument; no number)",
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
        o: lab.run(study, o, [f"experiment={study}", f"{key}={o}", f"trainer.max_epochs={lab.epochs(15)}"])
        for o in options
    }
    _, low, _ = paired(early(variants[better]), early(variants[worse]))
    rows = [[o, fmt(early(v)), fmt([r.metrics["test/acc"] for r in v])] for o, v in variants.items()]
    return Section(
        **section,
        rule=f"held if '{better}' has a higher mean validation accuracy over the first 3 epochs than '{worse}' seed "
        "by seed: the 95% interval of the difference lies above 0. It would have failed had the interval reached 0.",
        held=low > 0,
        held_out=held_out(variants[better][0], "val"),
        headline=f"val/acc over the first 3 epochs: {better} {fmt(early(variants[better]))}, {worse} "
        f"{fmt(early(variants[worse]))}; difference {fmt_paired(early(variants[better]), early(variants[worse]))}",
        table=table([key, "val/acc, first 3 epochs", "test acc"], rows),
        figure=plot_curves(
            lab,
            variants,
            "val/acc",
            f"{study}.png",
            f"Validation accuracy per epoch, {shown}",
            "validation accuracy",
            ylim=ACCURACY,
        ),
    )


def cost(lab: Lab) -> Section:
    return faster_start(
        lab,
        "cost",
        "loss",
        ("mse", "cross_entropy"),
        better="cross_entropy",
        worse="mse",
        shown="softmax + cross-entropy vs quadratic cost",
        title="Softmax + cross-entropy learns faster than the quadratic cost",
        claim="With softmax + cross-entropy δ^L = y − ŷ stays large while the prediction is wrong, so learning does "
        "not slow down the way it does with the quadratic cost on saturated outputs.",
        data="digits (270 test)",
        published="— (the lecture's argument; no number)",
    )


# name (its colour in dltips.observe.plots.COLORS) -> overrides; ours and torch's built-in side by side
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
    rows = [
        [OPTIMIZER_LABELS.get(k, k), fmt(loss[k], 4), fmt([r.metrics["test/acc"] for r in v])]
        for k, v in variants.items()
    ]
    return Section(
        title="Adagrad and momentum, as the lecture writes them",
        claim="The lecture's Adagrad (η/√(t+1) over the RMS of past gradients) is torch's Adagrad without lr_decay; "
        "its momentum (v ← λv − η∇C) is SGD with momentum at a constant rate; momentum reaches a lower training "
        "loss than plain gradient descent in the same time.",
        rule="held if ours and torch's give the same final validation loss (within 1e-3, every seed) and momentum's "
        "final training loss is below plain SGD's. It would have failed had one seed's validation losses differed by "
        "1e-3 or more, or momentum ended above SGD.",
        held=held,
        data="digits (270 test)",
        published="— (exact identities; no number)",
        headline=f"largest Δ val/loss, ours vs torch: adagrad {same['adagrad']:.1e}, momentum {same['momentum']:.1e}; "
        f"final train loss momentum {fmt(loss['momentum'], 4)} vs sgd {fmt(loss['sgd'], 4)}",
        table=table(["optimizer", "final train loss", "test acc"], rows),
        figure=plot_curves(
            lab,
            variants,
            "train/loss_epoch",
            "optimizers.png",
            "Training loss per epoch by optimizer",
            "training loss (eval mode, log)",
            labels=OPTIMIZER_LABELS,
            log=True,
        ),
    )


# The report's order: each slide beside the claims it belongs with, the lecture's own demo last.
STUDIES = {
    "vanishing_gradient": vanishing_gradient,
    "activations": activations,
    "relu_fast": MECHANISMS["relu_fast"],
    "relu_variants_maxout": MECHANISMS["relu_variants_maxout"],
    "cost": cost,
    "bounded_output": PRACTICE["bounded_output"],
    "normalization": normalization,
    "test_normalization": PRACTICE["test_normalization"],
    "learning_rate_size": PRACTICE["learning_rate_size"],
    "optimizers": optimizers,
    "momentum_sum": MECHANISMS["momentum_sum"],
    "overfitting": overfitting,
    "more_data": PRACTICE["more_data"],
    "weight_decay_update": MECHANISMS["weight_decay_update"],
    "dropout_resampled": MECHANISMS["dropout_resampled"],
    "dropout_ensemble": dropout_ensemble,
    "dead_relu": dead_units,
    "maxout": maxout,
    "adagrad": adagrad,
    "momentum_surfaces": momentum_surfaces,
    "lr_decay": lr_decay,
    "weight_decay_noise": weight_decay_noise,
    "early_stopping": early_stopping,
    "dropout_advice": dropout_advice,
    "keras_demo": keras_demo,
    "keras_demo_deep": keras_demo_deep,
}
assert set(MECHANISMS) | set(PRACTICE) <= set(STUDIES)  # a slide added there is run here
