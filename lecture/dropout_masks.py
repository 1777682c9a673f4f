"""Dropout's masks, measured where the library's Dropout draws them: a new one for every
mini-batch, p of the units dropped, none at test time where the weights are scaled by (1 − p)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from dltips.nn import MLP, Dropout
from dltips.observe.intervals import mean_ci
from lecture.figures_mechanisms import dropout_masks_figure
from lecture.lab import Lab, Section, fmt, table
from lecture.mechanisms_updates import BATCH, STEPS, batches, library_setup

SAME = 1e-5  # largest |Δ| of a test-time logit that is rounding


@contextmanager
def recorded_masks(model: nn.Module) -> Iterator[list[list[torch.Tensor]]]:
    """Every mask each Dropout layer of `model` draws while inside, one list per layer."""
    layers = [m for m in model.modules() if isinstance(m, Dropout)]
    masks: list[list[torch.Tensor]] = [[] for _ in layers]
    for layer, found in zip(layers, masks):
        draw = layer.sample_mask

        def record(x, keep, draw=draw, found=found):
            mask = draw(x, keep)
            found.append(mask.detach().clone())
            return mask

        layer.sample_mask = record  # on the instance: deleting it below gives back the class's method
    try:
        yield masks
    finally:
        for layer in layers:
            del layer.sample_mask


def weight_scaled(model: MLP, x: torch.Tensor, scale: bool = True) -> torch.Tensor:
    """The test-time network as the lecture writes it: no unit dropped, the weights out of every
    dropout layer multiplied by (1 − p); `scale=False`: not multiplied (the control that must differ)."""
    h, keep = x, 1.0
    for m in model.net:
        if isinstance(m, Dropout):
            keep = 1 - m.p if scale else 1.0
        elif isinstance(m, nn.Linear):
            h, keep = nn.functional.linear(h, keep * m.weight, m.bias), 1.0
        else:
            h = m(h)
    return h


def dropout_resampled(lab: Lab) -> Section:
    p = 0.5
    overrides = [f"model.dropout={p}", "model.width=64"]
    distinct, shares, test_gap, control_gap, drawn_at_test, image = [], [], [], [], [], None
    for seed in range(lab.seeds):
        s = library_setup(lab, "dropout_resampled", overrides, seed)
        with recorded_masks(s.model) as masks:
            for x, y in batches(*s.splits.train, BATCH, STEPS, seed):
                s.optimizer.zero_grad()
                s.loss_fn(s.model(x), y).backward()
                s.optimizer.step()
            trained = [len(m) for m in masks]
            s.model.eval()
            with torch.no_grad():
                x = s.splits.test[0]
                out = s.model(x)
                test_gap.append((out - weight_scaled(s.model, x)).abs().max().item())
                control_gap.append((out - weight_scaled(s.model, x, scale=False)).abs().max().item())
            drawn_at_test.append(sum(len(m) for m in masks) - sum(trained))
        distinct.append(min(len(torch.unique(torch.stack(m).flatten(1), dim=0)) for m in masks))
        shares.append(np.stack([[1 - m.mean().item() for m in layer] for layer in masks]))  # (layers, updates)
        image = masks[0] if image is None else image
    per_seed = [float(s.mean()) for s in shares]
    m, h = mean_ci(per_seed)
    held = min(distinct) == STEPS and m - h <= p <= m + h and max(test_gap) < SAME and max(drawn_at_test) == 0
    rows = [
        [
            seed,
            f"{distinct[seed]} of {STEPS}",
            fmt(shares[seed].flatten(), 4),
            f"{test_gap[seed]:.1e}",
            f"{control_gap[seed]:.2f}",
        ]
        for seed in range(lab.seeds)
    ]
    return Section(
        title="Dropout draws a new mask for every mini-batch, and scales the weights by (1 − p) at test",
        claim="In training each mini-batch drops every unit with probability p and trains the thinned network; the "
        "masks are drawn again for the next mini-batch. At test time no unit is dropped and the weights are "
        "multiplied by (1 − p).",
        rule=f"held if, in every seed of a 2×64 network with hidden dropout p = {p} (weight_scaling) over {STEPS} "
        f"updates, every layer's {STEPS} masks are all different, the 95% t-interval over seeds of the share of "
        f"units dropped contains p, and in eval mode no mask is drawn and the logits equal the network written out "
        f"with weights × (1 − p) (largest \\|Δ\\| < {SAME:g}). It would have failed had one mask repeated, the "
        "interval missed p, a test pass dropped units, or one logit differed.",
        held=held,
        headline=f"distinct masks {min(distinct)} of {STEPS} (fewest, any layer and seed); share dropped "
        f"{fmt(per_seed, 4)} (p = {p}); test logits vs weights × (1 − p): largest \\|Δ\\| {max(test_gap):.1e} "
        f"(weights not scaled: {min(control_gap):.2f} or more)",
        table=table(
            [
                "seed",
                "distinct masks (fewest layer)",
                "share dropped per update",
                "test \\|Δ\\| from weights × (1 − p)",
                "control: weights not scaled",
            ],
            rows,
        ),
        figure=lab.figure(
            dropout_masks_figure(torch.stack(image)[:, 0].T.numpy(), np.stack([s[0] for s in shares]), p),
            "dropout_resampled.png",
        ),
        data="digits (1,797 8×8 images; 270 test), training mini-batches of 32",
        published="— (the lecture's description; no number)",
        notes=[
            f"The masks are recorded where the library's Dropout draws them (Dropout.sample_mask), {STEPS} updates "
            "of SGD 0.1 per seed; a mask covers the whole mini-batch (32 rows × 64 units), so each example also has "
            "its own.",
            "The interval over seeds misses p in 5% of reproductions even when the masks are fair: a failed verdict "
            "on that part alone would need a second look before it counts.",
        ],
    )
