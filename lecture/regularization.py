"""Weight decay against input noise, and early stopping at the validation loss's minimum."""

from __future__ import annotations

import numpy as np
import torch

from dltips.observe.intervals import paired
from lecture.figures_training import early_stopping_figure, noise_figure
from lecture.lab import Lab, Run, Section, fmt, fmt_paired, table
from lecture.trained import load

NOISE = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)  # σ of the Gaussian noise, in units of the standardized inputs
DRAWS = 10  # noise draws per test input and size
PATIENCE = 5  # the lecture's "no improvement in N epochs"


@torch.no_grad()
def under_noise(run: Run) -> tuple[list[float], list[float]]:
    """Test accuracy at each noise size, and the share of test predictions the noise changes;
    the same noise draws (generator seed 0) for every network."""
    model, splits = load(run)
    x, y = splits.test
    clean = model(x).argmax(dim=1)
    g = torch.Generator().manual_seed(0)
    acc, flips = [], []
    for s in NOISE:
        noisy = torch.stack([model(x + s * torch.randn(x.shape, generator=g)).argmax(dim=1) for _ in range(DRAWS)])
        acc.append((noisy == y).float().mean().item())
        flips.append((noisy != clean).float().mean().item())
    return acc, flips


def weight_decay_noise(lab: Lab) -> Section:
    variants = {"none": "0", "weight_decay": "0.01"}
    runs = {
        v: lab.run(
            "weight_decay_noise",
            v,
            [
                "experiment=weight_decay_noise",
                f"regularizer.weight_decay={lam}",
                f"trainer.max_epochs={lab.epochs(20)}",
            ],
        )
        for v, lam in variants.items()
    }
    scored = {v: [under_noise(r) for r in rs] for v, rs in runs.items()}
    acc = {v: np.array([a for a, _ in sc]) for v, sc in scored.items()}  # (seeds, sizes)
    flips = {v: np.array([f for _, f in sc]) for v, sc in scored.items()}
    one = NOISE.index(1.0)
    drop = {v: list(a[:, 0] - a[:, one]) for v, a in acc.items()}
    _, _, high = paired(drop["weight_decay"], drop["none"])
    rows = [
        [
            f"{s:g}",
            *[fmt(acc[v][:, i]) for v in variants],
            fmt_paired(acc["weight_decay"][:, i], acc["none"][:, i]),
            *[fmt(flips[v][:, i]) for v in variants],
        ]
        for i, s in enumerate(NOISE)
    ]
    norms = {
        v: fmt([sum(l.weight.norm().item() ** 2 for l in load(r)[0].linears()) ** 0.5 for r in rs], 1)
        for v, rs in runs.items()
    }
    return Section(
        title="Weight decay makes the output less sensitive to noise in the input",
        claim="With z′ = z + w·ε, noise ε in an input moves the output by w·ε: smaller weights, a smaller change. "
        "Weight decay keeps the weights small, so its network is less sensitive to noisy inputs.",
        rule="held if the test accuracy lost between clean inputs and Gaussian noise of σ = 1 (the inputs' own spread) "
        "is smaller with weight decay (λ = 0.01) than without, seed by seed: the 95% interval of the difference of the "
        "losses lies below 0.",
        held=high < 0,
        headline=f"accuracy lost at noise σ = 1: weight decay {fmt(drop['weight_decay'])}, none {fmt(drop['none'])}; "
        f"difference {fmt_paired(drop['weight_decay'], drop['none'])}",
        table=table(
            [
                "noise σ",
                "test acc, none",
                "test acc, weight decay",
                "Δ (weight decay − none)",
                "predictions changed, none",
                "predictions changed, weight decay",
            ],
            rows,
        ),
        figure=lab.figure(noise_figure(acc, flips, NOISE), "weight_decay_noise.png"),
        data="digits (270 test)",
        published="— (the lecture's argument; no number)",
        notes=[
            f"2×128 ReLU, SGD 0.1, {lab.epochs(20)} epochs; noise: {DRAWS} Gaussian draws per test digit and size, "
            "added to the standardized inputs (σ = 1 per pixel), the same draws for every network.",
            f"‖W‖ over all weight matrices at the end: none {norms['none']}, weight decay {norms['weight_decay']}.",
        ],
    )


def stopping_epoch(val: list[float], patience: int = PATIENCE) -> int:
    """The epoch a `patience` rule ends training at (0-based): `patience` epochs without a new
    minimum of `val`; the last epoch if that never happens."""
    best = 0
    for e, v in enumerate(val):
        if v < val[best]:
            best = e
        elif e - best >= patience:
            return e
    return len(val) - 1


@torch.no_grad()
def test_at(run: Run, which: str) -> tuple[float, float]:
    """(test loss, test accuracy) of the run's `which` checkpoint."""
    model, splits = load(run, which)
    x, y = splits.test
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def early_stopping(lab: Lab) -> Section:
    epochs = lab.epochs(30)
    runs = {
        m: lab.run(
            "early_stopping",
            m.replace("/", "_"),
            [
                "experiment=early_stopping_mnist1d",
                f"regularizer.early_stopping.monitor={m}",
                f"trainer.max_epochs={epochs}",
            ],
        )
        for m in ("val/loss", "val/acc")
    }
    by_loss = runs["val/loss"]
    curves = [{k: [v for _, v in r.scalars[k]] for k in ("train/loss_epoch", "val/loss")} for r in by_loss]
    chosen = [int(np.argmin(c["val/loss"])) for c in curves]
    falls = all(e < epochs - 1 and c["train/loss_epoch"][-1] < c["train/loss_epoch"][e] for e, c in zip(chosen, curves))
    stop = [stopping_epoch(c["val/loss"]) for c in curves]
    at_best = {m: [test_at(r, "best.pt") for r in rs] for m, rs in runs.items()}
    end = [(r.metrics["test/loss"], r.metrics["test/acc"]) for r in by_loss]
    loss_best, loss_end = [b[0] for b in at_best["val/loss"]], [e[0] for e in end]
    _, _, high = paired(loss_best, loss_end)
    acc_chosen = [int(np.argmax([v for _, v in r.scalars["val/acc"]])) for r in runs["val/acc"]]
    rows = [
        ["lowest val/loss", fmt(np.add(chosen, 1), 1), fmt(loss_best, 3), fmt([b[1] for b in at_best["val/loss"]])],
        [
            "highest val/acc",
            fmt(np.add(acc_chosen, 1), 1),
            fmt([b[0] for b in at_best["val/acc"]], 3),
            fmt([b[1] for b in at_best["val/acc"]]),
        ],
        [f"train on: all {epochs} epochs", f"{epochs}", fmt(loss_end, 3), fmt([e[1] for e in end])],
    ]
    return Section(
        title="Early stopping: the validation loss turns up while the training loss keeps falling",
        claim="Training longer keeps lowering the training loss, but past some epoch the network fits the training "
        "set's noise and the validation loss rises: stop where the validation loss is lowest and keep those weights.",
        rule="held if in every seed the validation loss reaches its minimum before the last epoch while the training "
        "loss at the end is below its value there, and the weights of that epoch have a lower test loss than the last "
        "ones seed by seed (95% interval of the difference below 0).",
        held=falls and high < 0,
        headline=f"lowest val/loss after {fmt(np.add(chosen, 1), 1)} of {epochs} epochs; test loss there − at the end "
        f"{fmt_paired(loss_best, loss_end)}; test acc there {fmt([b[1] for b in at_best['val/loss']])} vs at the end "
        f"{fmt([e[1] for e in end])}",
        table=table(["stop at", "epochs trained", "test loss", "test acc"], rows),
        figure=lab.figure(early_stopping_figure(curves, chosen, [s + 1 for s in stop]), "early_stopping.png"),
        data="mnist1d (3,600 training signals, 400 validation, 1,000 test)",
        published="MNIST-1D paper: MLP 68% test accuracy",
        notes=[
            f"The MNIST-1D paper's MLP (2×100 ReLU, Adam 1e-2, batches of 100), {epochs} epochs; the weights at the "
            "best epoch are the run's best.pt (regularizer.early_stopping.monitor), one run per monitor.",
            f"With the usual patience rule ({PATIENCE} epochs without a new minimum of val/loss) training would end "
            f"after {fmt(np.add(stop, 1), 1)} epochs and keep the same weights.",
            "The validation loss turns up early because the network grows confident on the examples it gets wrong; "
            "its accuracy still rises for a while, which is why stopping by val/acc stops later.",
        ],
    )
