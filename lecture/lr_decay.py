"""Learning-rate decay: large steps far from the destination, smaller ones close to it."""

from __future__ import annotations

import numpy as np

from dltips.observe.intervals import paired
from lecture.figures_training import lr_decay_figure
from lecture.lab import Lab, Run, Section, fmt, fmt_paired, table

LAST = 5  # epochs over which the bouncing at the end is measured


def bounce(run: Run) -> float:
    """The spread (std) of the training loss over the last epochs: how much the end still moves."""
    return float(np.std([v for _, v in run.scalars["train/loss_epoch"][-LAST:]]))


def lr_decay(lab: Lab) -> Section:
    epochs = lab.epochs(20)
    runs = {
        s: lab.run("lr_decay", s, ["experiment=lr_decay", f"scheduler={s}", f"trainer.max_epochs={epochs}"])
        for s in ("constant", "inverse_sqrt")
    }
    loss = {s: [r.metrics["train/loss"] for r in rs] for s, rs in runs.items()}
    spread = {s: [bounce(r) for r in rs] for s, rs in runs.items()}
    _, _, high = paired(loss["inverse_sqrt"], loss["constant"])
    calmer = float(np.mean(spread["inverse_sqrt"])) < float(np.mean(spread["constant"]))
    rows = [
        [
            s,
            fmt(loss[s], 4),
            fmt(spread[s], 4),
            fmt([r.metrics["test/loss"] for r in rs]),
            fmt([r.metrics["test/acc"] for r in rs]),
        ]
        for s, rs in runs.items()
    ]
    return Section(
        title="Learning-rate decay: large steps first, small steps near the end",
        claim="Far from the destination a large rate moves fast; close to it the same rate overshoots and bounces. "
        "Decaying it, η^t = η/√(t+1), takes smaller steps near the end and gets closer.",
        rule=f"held if, from the same start (same seed) and the same η = 0.5, η/√(t+1) ends at a lower training loss "
        f"than the constant rate seed by seed (95% interval of the difference below 0) and its training loss moves "
        f"less over the last {LAST} epochs (mean std). It would have failed had the interval reached 0, or the "
        "decayed loss moved as much at the end.",
        held=high < 0 and calmer,
        headline=f"final training loss η/√(t+1) − constant {fmt_paired(loss['inverse_sqrt'], loss['constant'], 4)}; "
        f"std over the last {LAST} epochs {fmt(spread['inverse_sqrt'], 4)} vs {fmt(spread['constant'], 4)}",
        table=table(["schedule", "final training loss", f"its std, last {LAST} epochs", "test loss", "test acc"], rows),
        figure=lab.figure(lr_decay_figure(runs), "lr_decay.png"),
        data="mnist1d (3,600 training signals, 1,000 test)",
        published="— (the lecture's argument; no number)",
        history=[
            "First run with every seed on one data split, where it did not hold (final training loss η/√(t+1) − "
            "constant -0.0939 [-0.2032, +0.0154]); the rule and setting are unchanged, each seed now draws its own "
            "split. The verdict turned on that change, so it rests on a difference about the size of the seeds' "
            "spread.",
        ],
        notes=[
            f"2×32 ReLU units, SGD at η = 0.5, batches of 32, {epochs} epochs; t counts epochs "
            "(scheduler.interval=epoch). Training loss: the whole training set in eval mode after each epoch "
            "(train/loss_epoch)."
        ]
        + (
            []
            if high < 0
            else [
                "Not beyond the noise: the decayed rate ends lower on average, but the constant rate's last epoch "
                "lands anywhere in its bounce (its final loss spreads over seeds several times as much), so 5 seeds do "
                "not separate the two; the smaller end-of-run movement is the effect the lecture describes."
            ]
        ),
    )
