"""Nielsen's vanishing-gradient measurement (Neural Networks and Deep Learning, ch. 5): the
bias gradient of each hidden layer of a [784, 30, 30, 30, 10] sigmoid network at initialization."""

from __future__ import annotations

import numpy as np
import torch

from dltips.observe.intervals import mean_ci
from lecture.figures import nielsen_figure
from lecture.lab import Lab, Section, fmt, table

PUBLISHED = [0.012, 0.060, 0.283]  # ‖∂C/∂b‖ of hidden layers 1, 2, 3 (his figure in ch. 5)
BATCH = 1000  # Nielsen measured on 1,000 training images


def nielsen_init(model: torch.nn.Module, seed: int) -> None:
    """network2.py's default: W ~ N(0, 1/n_in), b ~ N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.linears():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) / layer.weight.shape[1] ** 0.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))


def sample(n: int, seed: int) -> torch.Tensor:
    """BATCH training images drawn at random: the split lists the images of the class-sorted file
    in their order, so its first 1,000 are the digits 0, 1 and 2 alone."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:BATCH]


def bias_gradients(seed: int, init: str) -> np.ndarray:
    """‖∂C/∂b^l‖ for the hidden layers l = 1 … 3, C the mean cross-entropy over 1,000 training images."""
    from dltips.config.validate import compose_train
    from dltips.engine.build import setup

    s = setup(compose_train(["experiment=vanishing_gradient_nielsen", "data.split_seed=0", f"seed={seed}"]))
    if init == "nielsen":
        nielsen_init(s.model, seed)
    x, y = s.splits.train
    batch = sample(len(y), seed)
    s.model.zero_grad()
    s.loss_fn(s.model(x[batch]), y[batch]).backward()
    return np.array([layer.bias.grad.norm().item() for layer in s.model.linears()][: len(PUBLISHED)])


def nielsen(lab: Lab) -> Section:
    inits = {"ours, Nielsen's init": "nielsen", "ours, torch's default init": "default"}
    grads = {name: [bias_gradients(seed, init) for seed in range(lab.seeds)] for name, init in inits.items()}
    ratio = {name: [g[-1] / g[0] for g in gs] for name, gs in grads.items()}
    main = next(iter(inits))
    grows = all(np.all(np.diff(g) > 0) for g in grads[main])
    m, h = mean_ci(ratio[main])
    rows = [
        [name, *[fmt([g[l] for g in gs], 4) for l in range(len(PUBLISHED))], fmt(ratio[name], 1)]
        for name, gs in grads.items()
    ]
    rows.append(["Nielsen ch. 5 (published)", *[f"{p:.3f}" for p in PUBLISHED], f"{PUBLISHED[-1] / PUBLISHED[0]:.1f}"])
    return Section(
        title="Nielsen's [784, 30, 30, 30, 10] sigmoid network: the first hidden layer learns slowest",
        claim="At initialization the gradient ‖∂C/∂b^l‖ of a sigmoid network shrinks toward the input: in Nielsen's "
        "measurement the first hidden layer's is about 24 times smaller than the third's.",
        rule="held if, with Nielsen's initialization, ‖∂C/∂b‖ grows from hidden layer 1 to 2 to 3 in every seed "
        "and the 95% interval of ‖∂C/∂b³‖/‖∂C/∂b¹‖ lies above 10.",
        held=grows and m - h > 10,
        headline="‖∂C/∂b‖ layers 1/2/3: "
        + " / ".join(fmt([g[l] for g in grads[main]], 3) for l in range(len(PUBLISHED)))
        + f"; ratio 3rd/1st {fmt(ratio[main], 1)}",
        table=table(
            ["network", *[f"‖∂C/∂b‖ hidden layer {l}" for l in range(1, len(PUBLISHED) + 1)], "ratio 3rd/1st"], rows
        ),
        figure=lab.figure(nielsen_figure(grads, PUBLISHED), "vanishing_gradient_nielsen.png"),
        data=f"mnist5k (pixels / 255), {BATCH} training images",
        published="0.012 / 0.060 / 0.283; ratio ≈ 24 (Nielsen, ch. 5)",
        notes=[
            "Nielsen's cost is the cross-entropy of 10 sigmoid outputs; ours is softmax + cross-entropy, and ours is "
            "the mean over the 1,000 images. The ratio between layers, not the absolute size, is what carries over.",
            "no training: the gradient is measured at initialization, as his figure is.",
        ],
    )
