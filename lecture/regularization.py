"""Weight decay against input noise, and early stopping at the validation loss's minimum."""

from __future__ import annotations

import numpy as np
import torch

from dltips.observe.intervals import paired
from lecture.figures_training import early_stopping_figure, noise_figure
from lecture.lab import Lab, Run, Section, fmt, fmt_paired, table
from lecture.trained import held_out, load

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
        "losses lies below 0. It would have failed had the interval reached 0.",
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
        held_out=held_out(runs["none"][0]),
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


def early_stopping(lab: Lab) -> list[Section]:
    """Two verdicts on the weights kept at the lowest validation loss against the last ones. Loss:
    held if the validation loss bottoms out before the end while the training loss falls on, and
    the kept weights' test loss is lower seed by seed; fails if either does not. Accuracy: held if
    their test accuracy is higher seed by seed; fails if the interval reaches 0."""
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
    tags = ("train/loss_epoch", "val/loss", "train/acc", "val/acc")
    curves = [{k: [v for _, v in r.scalars[k]] for k in tags} for r in by_loss]
    chosen = [int(np.argmin(c["val/loss"])) for c in curves]
    falls = all(e < epochs - 1 and c["train/loss_epoch"][-1] < c["train/loss_epoch"][e] for e, c in zip(chosen, curves))
    stop = [stopping_epoch(c["val/loss"]) for c in curves]
    at_best = {m: [test_at(r, "best.pt") for r in rs] for m, rs in runs.items()}
    end = [(r.metrics["test/loss"], r.metrics["test/acc"]) for r in by_loss]
    loss_best, loss_end = [b[0] for b in at_best["val/loss"]], [e[0] for e in end]
    acc_best, acc_end = [b[1] for b in at_best["val/loss"]], [e[1] for e in end]
    _, _, high = paired(loss_best, loss_end)
    _, low, _ = paired(acc_best, acc_end)
    acc_chosen = [int(np.argmax([v for _, v in r.scalars["val/acc"]])) for r in runs["val/acc"]]
    rows = [
        ["lowest val/loss", fmt(np.add(chosen, 1), 1), fmt(loss_best, 3), fmt(acc_best)],
        [
            "highest val/acc",
            fmt(np.add(acc_chosen, 1), 1),
            fmt([b[0] for b in at_best["val/acc"]], 3),
            fmt([b[1] for b in at_best["val/acc"]]),
        ],
        [f"train on: all {epochs} epochs", f"{epochs}", fmt(loss_end, 3), fmt(acc_end)],
        ["lowest val/loss − all epochs", "", fmt_paired(loss_best, loss_end), fmt_paired(acc_best, acc_end)],
    ]
    shared = dict(
        table=table(["stop at", "epochs trained", "test loss", "test acc"], rows),
        figure=lab.figure(
            early_stopping_figure(curves, chosen, [s + 1 for s in stop], acc_best, acc_end), "early_stopping.png"
        ),
        data="mnist1d (3,600 training signals, 400 validation, 1,000 test)",
        published="MNIST-1D paper: MLP 68% test accuracy",
    )
    setting = (
        f"The MNIST-1D paper's MLP (2×100 ReLU, Adam 1e-2, batches of 100), {epochs} epochs; the weights at the "
        "best epoch are the run's best.pt (regularizer.early_stopping.monitor), one run per monitor."
    )
    history = [
        "First one verdict, on the test loss alone (held), while the test accuracy at the stopping point was lower "
        "(0.580 vs 0.623 at the end); now a verdict for each, and the figure shows the accuracy too. The monitor "
        "here is val/loss, with val/acc's stopping point in the table; the overfitting claim's early stopping "
        "monitors val/acc, chosen after a pilot (see there)."
    ]
    return [
        Section(
            title="Early stopping: the validation loss turns up while the training loss keeps falling",
            claim="Training longer keeps lowering the training loss, but past some epoch the network fits the training "
            "set's noise and the validation loss rises: stop where the validation loss is lowest and keep those "
            "weights, whose test loss is lower than the last ones'.",
            rule="held if in every seed the validation loss reaches its minimum before the last epoch while the "
            "training loss at the end is below its value there, and the weights of that epoch have a lower test loss "
            "than the last ones seed by seed (95% interval of the difference below 0). It would have failed had one "
            "seed's validation loss been lowest at the end, its training loss not fallen after that epoch, or the "
            "interval reached 0.",
            held=falls and high < 0,
            headline=f"lowest val/loss after {fmt(np.add(chosen, 1), 1)} of {epochs} epochs; test loss there − at the "
            f"end {fmt_paired(loss_best, loss_end)}",
            notes=[
                setting,
                f"With the usual patience rule ({PATIENCE} epochs without a new minimum of val/loss) training would "
                f"end after {fmt(np.add(stop, 1), 1)} epochs and keep the same weights.",
            ],
            history=history,
            **shared,
        ),
        Section(
            title="Early stopping: the weights at the lowest validation loss classify the test set better",
            claim="The weights kept where the validation loss is lowest generalise better than those at the end of "
            "training: a higher test accuracy.",
            rule="held if the test accuracy of the weights at the lowest validation loss is above that at the end "
            "of training seed by seed (95% interval of the difference above 0). It would have failed had the "
            "interval reached 0 or below.",
            held=low > 0,
            headline=f"test acc at the lowest val/loss {fmt(acc_best)} vs at the end {fmt(acc_end)}; difference "
            f"{fmt_paired(acc_best, acc_end)}",
            notes=[
                setting,
                "The validation loss turns up early because the network grows confident on the examples it gets "
                "wrong; its accuracy still rises for a while, which is why stopping by val/acc stops later.",
            ],
            history=history,
            **shared,
        ),
    ]
