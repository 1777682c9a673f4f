"""Dropout's practical advice: with drop rate p, 1/(1 − p) times the units, longer training, a higher
learning rate or a larger momentum."""

from __future__ import annotations

from dltips.observe.intervals import paired
from lecture.figures_training import dropout_advice_figure
from lecture.lab import Lab, Section, fmt, fmt_paired, table

P = 0.5
PLAIN = "no dropout, 64 units"
SAME = "dropout 0.5, 64 units"
CONTROL = "no dropout, 128 units"


def variants(epochs: int) -> dict[str, list[str]]:
    """variant -> overrides of experiment=dropout_advice (2×64 units, η 0.05, λ 0.9, `epochs` epochs)."""
    wide = [f"model.dropout={P}", f"model.width={round(64 / (1 - P))}"]
    return {
        PLAIN: [],
        CONTROL: ["model.width=128"],
        SAME: [f"model.dropout={P}"],
        "dropout 0.5, 128 units (= 64/(1 − p))": wide,
        "128 units, 2× epochs": [*wide, f"trainer.max_epochs={2 * epochs}"],
        "128 units, lr 0.1 (2×)": [*wide, "optimizer.lr=0.1"],
        "128 units, momentum 0.95": [*wide, "optimizer.momentum=0.95"],
    }


def dropout_advice(lab: Lab) -> Section:
    epochs = lab.epochs(40)
    grid = variants(epochs)
    acc = {
        v: [
            r.metrics["test/acc"]
            for r in lab.run(
                "dropout_advice",
                v.split(" (")[0].replace(", ", ",").replace(" ", "_"),
                ["experiment=dropout_advice", f"trainer.max_epochs={epochs}", *o],
            )
        ]
        for v, o in grid.items()
    }
    advice = [v for v in grid if v not in (PLAIN, SAME, CONTROL)]
    diff = {v: paired(acc[v], acc[PLAIN]) for v in advice}
    same_worse = paired(acc[SAME], acc[PLAIN])[2] < 0
    recovered = [v for v in advice if diff[v][2] >= 0]  # not worse than the plain network beyond the noise
    beat = [v for v in advice if diff[v][1] > 0]
    best = max(advice, key=lambda v: diff[v][0])
    rows = [[v, fmt(acc[v]), fmt_paired(acc[v], acc[PLAIN]) if v != PLAIN else ""] for v in grid]
    return Section(
        title="Dropout's advice: more units, longer training, a higher rate or momentum recover what dropout costs",
        claim="A network trained with dropout rate p has fewer units at work in each step: if the task needs n units, "
        "use n/(1 − p), train longer, with a higher learning rate or a larger momentum; then dropout matches or beats "
        "the same-size network without it.",
        rule=f"held if dropout (p = {P}) in the same 2×64 network is worse than no dropout seed by seed (95% interval "
        "of the difference below 0) and at least one of the advice's variants (128 units, alone or with 2× epochs, "
        "2× the rate or momentum 0.95) is not worse than the network without dropout beyond the noise (the interval's "
        "upper end ≥ 0).",
        held=same_worse and bool(recovered),
        headline=f"test acc − {PLAIN}: {SAME} {fmt_paired(acc[SAME], acc[PLAIN])}; "
        + ", ".join(f"{v.split(' (')[0]} {fmt_paired(acc[v], acc[PLAIN])}" for v in advice),
        table=table(["variant", "test acc", f"Δ vs {PLAIN}"], rows),
        figure=lab.figure(dropout_advice_figure(acc, PLAIN), "dropout_advice.png"),
        data="mnist1d (3,600 training signals, 1,000 test)",
        published="Srivastava et al. 2014 (MNIST): dropout nets 3×1024 at 1.25–1.35% error vs 1.60% for a standard net",
        notes=[
            f"2 hidden ReLU layers, the lecture's momentum (η 0.05, λ 0.9), batches of 100, {epochs} epochs unless "
            f"said; hidden dropout p = {P} (no input dropout). Beat beyond the noise: {', '.join(beat) or 'none'}.",
            f"'{CONTROL}' is the control: what the extra units give without dropout.",
        ]
        + (
            [
                f"The control beats the best advice variant ({best}) seed by seed, "
                f"{fmt_paired(acc[CONTROL], acc[best])}: "
                "at this size the extra units help more without dropout than with it."
            ]
            if paired(acc[CONTROL], acc[best])[1] > 0
            else []
        ),
    )
