"""Five of the lecture's mechanisms, measured where they act: ReLU's variants as maxout units, ReLU's
speed, momentum's sum of past gradients, weight decay's update, dropout's fresh masks. This file holds
the two about activations and SLIDES, every study by name; momentum and weight decay are in
mechanisms_updates.py, dropout in dropout_masks.py."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from dltips.nn import MLP, Maxout, PReLU
from dltips.nn.activations import ACTIVATIONS, LEAKY_SLOPE, Activation, leaky_relu
from dltips.observe.intervals import mean_ci
from lecture.dropout_masks import dropout_resampled
from lecture.figures_mechanisms import maxout_variants_figure, relu_fast_figure
from lecture.lab import Lab, Section, fmt, fmt_paired, table
from lecture.mechanisms_updates import fmt_e, momentum_sum, weight_decay_update
from lecture.trained import load

SAME = 1e-5  # largest |Δ| two float32 computations of one function may differ by: rounding, not a difference
SHAPES = {"256×1024": (256, 1024), "32×128": (32, 128)}  # the decided size first; then a digits batch's layer
CALLS = 10  # forward+backward calls timed together: one repetition's time is their mean


def slope(act: nn.Module, width: int) -> torch.Tensor:
    """α per unit of a leaky ReLU or PReLU layer: a = z for z > 0, α·z otherwise."""
    if isinstance(act, PReLU):
        return act.slope.detach()
    if isinstance(act, Activation) and act.fn is leaky_relu:
        return torch.full((width,), LEAKY_SLOPE)
    raise ValueError(f"not a leaky ReLU or PReLU: {act}")


@torch.no_grad()
def as_maxout(linear: nn.Linear, alpha: torch.Tensor) -> Maxout:
    """max(α·z, z) with z = linear(x): a 2-piece maxout whose piece 0 is α × piece 1. For α ≤ 1 this is
    the leaky ReLU / PReLU of z. The α piece comes first so that a tie at z = 0 routes α, as torch's
    leaky_relu and our PReLU (α·z where z ≤ 0) do."""
    unit = Maxout(linear.in_features, linear.out_features, pieces=2)
    w = torch.stack([alpha[:, None] * linear.weight, linear.weight], dim=1)  # (units, pieces, inputs)
    b = torch.stack([alpha * linear.bias, linear.bias], dim=1)
    unit.linear.weight.copy_(w.flatten(0, 1))  # row j·pieces + k: unit j's piece k, as Maxout reads it
    unit.linear.bias.copy_(b.flatten())
    return unit


def maxout_network(model: MLP, zero: bool = False) -> nn.Sequential:
    """The network with each hidden layer written as a 2-piece maxout carrying its weights; `zero`:
    piece 0 at 0 instead of α × piece 1 (max(0, z), ReLU): the control that must differ."""
    layers, net = [], list(model.net)
    for i, m in enumerate(net):
        if isinstance(m, nn.Linear) and i + 1 < len(net):
            alpha = slope(net[i + 1], m.out_features)
            layers.append(as_maxout(m, torch.zeros_like(alpha) if zero else alpha))
        elif isinstance(m, nn.Linear):
            layers.append(m)
    return nn.Sequential(*layers)


def outputs_and_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and ∂C/∂x, each example's own (the losses summed, not averaged)."""
    x = x.clone().requires_grad_()
    logits = net(x)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(logits, y, reduction="sum"), x)
    return logits.detach(), grad


def gaps(model: MLP, x: torch.Tensor, y: torch.Tensor, zero: bool = False) -> tuple[float, float]:
    """Largest |Δ| of the logits and of the input gradients between the network and its maxout form."""
    (a, ga), (b, gb) = outputs_and_gradients(model, x, y), outputs_and_gradients(maxout_network(model, zero), x, y)
    return (a - b).abs().max().item(), (ga - gb).abs().max().item()


def relu_variants_maxout(lab: Lab) -> Section:
    epochs, variants = lab.epochs(6), ("leaky_relu", "prelu")
    runs = {
        a: lab.run(
            "relu_variants_maxout",
            a,
            [f"model.activation={a}", "model.width=64", f"trainer.max_epochs={epochs}"],
        )
        for a in variants
    }
    found: dict[str, dict[str, list[float]]] = {a: {"output": [], "input gradient": []} for a in variants}
    control = {a: {"output": [], "input gradient": []} for a in variants}
    alphas = []
    for a, rs in runs.items():
        for run in rs:
            model, splits = load(run)
            for into, zero in ((found[a], False), (control[a], True)):
                out, grad = gaps(model, *splits.test, zero=zero)
                into["output"].append(out)
                into["input gradient"].append(grad)
            if a == "prelu":
                alphas.append(torch.cat([slope(m, 0) for m in model.modules() if isinstance(m, PReLU)]))
    largest = max(max(v) for f in found.values() for v in f.values())
    alpha = torch.stack(alphas)  # (seeds, units)
    rows = [
        [a, q, fmt_e(found[a][q]), f"{max(found[a][q]):.1e}", fmt(control[a][q], 2)]
        for a in variants
        for q in ("output", "input gradient")
    ]
    unit = int((alpha[0] - 0.25).abs().argmax())  # the unit whose α moved most from its start
    return Section(
        title="Leaky ReLU and PReLU are maxout units whose second piece is α × the first",
        claim="max(z, αz) with α ≤ 1 is z for z > 0 and αz otherwise: leaky ReLU (α = 0.01) and PReLU (α learned) "
        "are 2-piece maxout units whose pieces share their weights up to the factor α, and ReLU is the case α = 0. "
        "Maxout generalises them all: its pieces are free, so it learns its own activation function.",
        rule=f"held if, in every seed, the trained leaky ReLU and PReLU networks and maxout networks built from their "
        f"weights (piece 0 = α·(w·x + b), piece 1 = w·x + b) give the same logits and the same input gradients "
        f"∂C/∂x on every test digit: largest \\|Δ\\| < {SAME:g}. It would have failed had one logit or gradient "
        f"differed by {SAME:g} or more (the control, piece 0 held at 0, differs by far more).",
        held=largest < SAME,
        headline=f"largest \\|Δ\\| over seeds, test digits, logits and input gradients: {largest:.1e}; control "
        f"(piece 0 at 0, ReLU) {min(min(v) for f in control.values() for v in f.values()):.2f} or more",
        table=table(
            ["network", "compared", "largest \\|Δ\\| (mean over seeds)", "worst seed", "control: piece 0 at 0"], rows
        ),
        figure=lab.figure(
            maxout_variants_figure(float(alpha[0, unit]), found, control, SAME), "relu_variants_maxout.png"
        ),
        data="digits (270 test)",
        published="— (an identity; no number)",
        notes=[
            f"2×64 units, SGD 0.1, {epochs} epochs, {len(alpha)} seeds per variant; compared in float32, the precision "
            f"the networks train in. PReLU's learned α after training: {fmt(alpha.amin(dim=1).tolist())} (smallest "
            f"per seed) to {fmt(alpha.amax(dim=1).tolist())} (largest), all ≤ 1 as the identity needs (for α > 1, "
            "max(z, αz) would be αz on z > 0).",
            "The converse does not hold: a maxout unit's pieces are free, not tied by a factor α, so with k pieces it "
            "learns any convex piecewise-linear function of z with up to k pieces — the slide's \"learnable "
            "activation function\" (the maxout claim's figure shows learned ones).",
            "ReLU as 2-piece maxout with one piece held at 0 is the maxout claim (tests/test_lecture_more.py checks "
            "it on random inputs); the control here is that case built from the leaky/PReLU weights.",
        ],
    )


def time_activations(
    shape: tuple[int, int], reps: int, calls: int = CALLS, names=tuple(ACTIVATIONS)
) -> dict[str, np.ndarray]:
    """Seconds per forward+backward call of each activation on one fixed tensor, `reps` repetitions.
    Each repetition times every activation once, in a new order (seeded), so that the machine's noise
    hits them alike; one warm-up repetition first is not kept."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).requires_grad_()
    upstream = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    modules = {n: ACTIVATIONS[n](shape[1]) for n in names}
    order = torch.Generator().manual_seed(2)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(-1, reps):
        for i in torch.randperm(len(names), generator=order).tolist():
            n = names[i]
            start = time.perf_counter()
            for _ in range(calls):
                x.grad = None
                modules[n](x).backward(upstream)
            if rep >= 0:
                times[n].append((time.perf_counter() - start) / calls)
    return {n: np.array(t) for n, t in times.items()}


def relu_fast(lab: Lab) -> Section:
    reps, threads = 4 * lab.seeds, torch.get_num_threads()
    torch.set_num_threads(1)  # one core's time: how many threads a library spreads over is another question
    try:
        times = {label: time_activations(shape, reps) for label, shape in SHAPES.items()}
    finally:
        torch.set_num_threads(threads)
    decided, small = SHAPES
    t = times[decided]
    ratio = {o: t["relu"] / t[o] for o in ("sigmoid", "tanh")}
    over = {o: times[small][o] / times[small]["relu"] for o in ("sigmoid", "tanh")}  # at the small size
    highs = {o: sum(mean_ci(r)) for o, r in ratio.items()}  # the upper bound of each ratio's interval
    us = lambda v: fmt(np.asarray(v) * 1e6, 0)  # noqa: E731
    rows = [
        [n, us(t[n]), fmt(t[n] / t["relu"], 2), us(times[small][n]), fmt(times[small][n] / times[small]["relu"], 2)]
        for n in ACTIVATIONS
    ]
    return Section(
        title="ReLU is fast to compute",
        claim="ReLU's forward pass is a comparison and its derivative 0 or 1: no exponential as in sigmoid and tanh, "
        "so a forward and backward pass through it costs less.",
        rule=f"held if, on one thread, a forward+backward pass through a {decided} tensor (a batch of 256 through a "
        "1,024-unit layer) takes ReLU less time than sigmoid and than tanh: over repetitions that time every "
        "activation in turn, the 95% t-interval of ReLU's time / the other's time lies below 1 for both. It would "
        "have failed had either interval reached 1.",
        held=all(h < 1 for h in highs.values()),
        headline=f"time relu / sigmoid {fmt(ratio['sigmoid'], 2)}, relu / tanh {fmt(ratio['tanh'], 2)} "
        f"({reps} repetitions of {CALLS} calls each, {decided})",
        table=table(
            [
                "activation",
                f"µs per call, {decided}",
                "× relu's time",
                f"µs per call, {small}",
                "× relu's time",
            ],
            rows,
        ),
        figure=lab.figure(relu_fast_figure(times, decided), "relu_fast.png"),
        data="one fixed Gaussian tensor (no data set)",
        published="— (the lecture's argument; no number)",
        notes=[
            f"Seconds per forward+backward call, the mean of {CALLS} calls; {reps} repetitions after one warm-up, each "
            "timing every activation once in a new random order. Differences seed by seed, relu − sigmoid: "
            f"{fmt_paired(t['relu'] * 1e6, t['sigmoid'] * 1e6, 0)} µs.",
            f"At {small}, one hidden layer of a digits batch, the per-call overhead of autograd is most of the time "
            f"(relu {us(times[small]['relu'])} µs a call); sigmoid and tanh take {fmt(over['sigmoid'], 2)} and "
            f"{fmt(over['tanh'], 2)}× relu's time there.",
            f"torch computes here with its {torch.backends.cpu.get_cpu_capability()} kernels. At {decided} a forward "
            "and backward pass reads and writes about 4 MB (input, output, upstream and input gradient, float32), more "
            "than a core's cache holds: where the vectorized exp keeps pace with memory, sigmoid and tanh cost little "
            "more than ReLU. An earlier run of this report, on a CPU where tanh took 1,711 µs a call at this size, "
            "measured relu / sigmoid 0.54 ± 0.04 and relu / tanh 0.30 ± 0.02 (held): the verdict depends on the "
            "machine.",
            "prelu is slowest here: it learns α, so its backward pass also sums ∂C/∂α over the batch.",
        ],
    )


SLIDES = {
    "relu_variants_maxout": relu_variants_maxout,
    "relu_fast": relu_fast,
    "momentum_sum": momentum_sum,
    "weight_decay_update": weight_decay_update,
    "dropout_resampled": dropout_resampled,
}
