"""Two mechanisms of an update, checked on the library's own optimizers step by step: momentum's
velocity as a weighted sum of all past gradients, weight decay's (1 − ηλ)w; and what the mechanism
studies share (a run's start, its mini-batches)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from omegaconf import OmegaConf

from dltips.config.validate import compose_train
from dltips.nn import MLP
from dltips.observe.intervals import mean_ci, paired
from dltips.train import prepare
from lecture.figures_mechanisms import momentum_sum_figure, weight_decay_update_figure
from lecture.lab import Lab, Section, fmt, fmt_paired, table
from lecture.trained import load

STEPS = 100  # updates traced per seed
BATCH = 32  # rows per mini-batch, as data.batch_size
RELATIVE = 1e-5  # momentum: largest ‖ours − formula‖ / ‖formula‖ that is rounding, not a difference
EXACT = 1e-6  # weight decay: largest |Δ| of a float32 parameter after one step that is rounding


def start(cfg):
    """Model, optimizer and data as a run of `cfg` starts (dltips.engine.build.Setup)."""
    from dltips.engine.build import setup  # the report code stays cheap to import

    return setup(cfg)


def library_setup(lab: Lab, study: str, overrides: list[str], seed: int):
    """The start of a run of these overrides with seed and split `seed`."""
    return start(prepare(compose_train([*overrides, f"seed={seed}"], lab.runs_dir / study / f"seed_{seed}")))


def batches(x: torch.Tensor, y: torch.Tensor, size: int, steps: int, seed: int) -> Iterator[tuple]:
    """`steps` mini-batches of `size` rows, a new seeded permutation each time the rows run out."""
    g, order = torch.Generator().manual_seed(seed), torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < size:
            order = torch.randperm(len(y), generator=g)
        idx, order = order[:size], order[size:]
        yield x[idx], y[idx]


def fmt_e(values) -> str:
    """mean ± half-width of the 95% t-interval, in powers of ten: for sizes like 1e-7."""
    m, h = mean_ci(values)
    return f"{m:.1e} ± {h:.0e}"


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten() for t in tensors]).double()


def momentum_trace(s, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train `steps` updates with the configured optimizer: (gradients ∇C(θ^i), velocities v^{i+1}
    after each step, parameters θ^0 … θ^T), each (steps or steps + 1, parameters), float64."""
    params = list(s.model.parameters())
    grads, velocities, thetas = [], [], [flat(params)]
    for x, y in batches(*s.splits.train, BATCH, steps, seed):
        s.optimizer.zero_grad()
        s.loss_fn(s.model(x.to(params[0].dtype)), y).backward()
        grads.append(flat(p.grad for p in params))
        s.optimizer.step()
        velocities.append(flat(s.optimizer.state[p]["velocity"] for p in params))
        thetas.append(flat(params))
    return torch.stack(grads), torch.stack(velocities), torch.stack(thetas)


def weighted_sum(grads: torch.Tensor, lr: float, momentum: float) -> torch.Tensor:
    """v^t = −η Σ_{i<t} λ^{t−1−i} ∇C(θ^i) for t = 1 … T, written out as the sum: (T, parameters)."""
    t = torch.arange(len(grads), dtype=torch.float64)
    back = t[:, None] - t[None, :]  # t−1−i for row t−1, column i
    weights = torch.where(back >= 0, momentum ** back.clamp(min=0), torch.zeros(()))
    return -lr * weights @ grads


def relative(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """‖a − b‖ / ‖b‖ per row."""
    return ((a - b).norm(dim=1) / b.norm(dim=1)).numpy()


def momentum_sum(lab: Lab) -> Section:
    overrides = ["optimizer=momentum", "model.width=32"]
    errors = {"velocity": [], "movement θ^t − θ^0": [], "control: −η·∇C(θ^{t−1}) alone": []}
    for seed in range(lab.seeds):
        s = library_setup(lab, "momentum_sum", overrides, seed)
        # float64: θ's own float32 rounding (6e-8 of each weight per step) is not small against the
        # first steps' movement, and would be measured as a difference that the update rule does not make.
        s.model.double()
        lr, lam = s.optimizer.defaults["lr"], s.optimizer.defaults["momentum"]
        grads, velocities, thetas = momentum_trace(s, STEPS, seed)
        v = weighted_sum(grads, lr, lam)
        errors["velocity"].append(relative(velocities, v))
        errors["movement θ^t − θ^0"].append(relative(thetas[1:] - thetas[0], v.cumsum(dim=0)))
        errors["control: −η·∇C(θ^{t−1}) alone"].append(relative(-lr * grads, v))
    errors = {k: np.stack(e) for k, e in errors.items()}  # (seeds, steps)
    worst = max(errors["velocity"].max(), errors["movement θ^t − θ^0"].max())
    rows = [[k, fmt_e(e.max(axis=1)), f"{e.max():.1e}", fmt_e(e[:, -1])] for k, e in errors.items()]
    return Section(
        title="Momentum's movement is a weighted sum of all past gradients",
        claim="With v^0 = 0 and v^{t+1} = λv^t − η∇C(θ^t), the movement v^t = −η Σ_{i<t} λ^{t−1−i} ∇C(θ^i) sums "
        "every gradient so far, each weighted by λ to the number of steps since: the past keeps pushing.",
        rule=f"held if, in every seed, our Momentum's velocity after each of {STEPS} steps and the parameters' "
        "movement θ^t − θ^0 equal the weighted sums written out from the recorded gradients (−η Σ λ^{t−1−i} ∇C(θ^i), "
        f"and its running total): relative error ‖ours − formula‖ / ‖formula‖ < {RELATIVE:g} at every step. It "
        f"would have failed had one step of one seed differed by {RELATIVE:g} or more (the last gradient alone, "
        "plain gradient descent's step, differs by far more).",
        held=worst < RELATIVE,
        headline=f"largest relative error over {lab.seeds} seeds × {STEPS} steps: velocity "
        f"{errors['velocity'].max():.1e}, movement {errors['movement θ^t − θ^0'].max():.1e}; the last gradient "
        f"alone {fmt(errors['control: −η·∇C(θ^{t−1}) alone'][:, -1], 2)} at step {STEPS}",
        table=table(["compared with the weighted sum", "largest error per seed", "worst", f"at step {STEPS}"], rows),
        figure=lab.figure(momentum_sum_figure(lam, STEPS, errors, RELATIVE), "momentum_sum.png"),
        data="digits (1,797 8×8 images), training mini-batches of 32",
        published="— (an identity; no number)",
        notes=[
            f"2×32 ReLU, optimizer=momentum (η = {lr:g}, λ = {lam:g}), {STEPS} steps per seed from the configured "
            "network and optimizer, in float64: in float32 the parameters' own rounding (about 6e-8 of each weight "
            "per step) comes close to 1e-5 of the first steps' small movement, a gap the update rule does not make.",
            f"After k = 1/(1 − λ) = {1 / (1 - lam):.0f} steps a gradient's weight λ^k is {lam ** (1 / (1 - lam)):.2f} "
            f"(about 1/e), and the weights sum to 1/(1 − λ) = "
            f"{1 / (1 - lam):.0f}: on a steady slope momentum moves {1 / (1 - lam):.0f}× as far as η∇C.",
        ],
    )


def decay_check(s, steps: int, seed: int, weight_decay: float) -> dict[str, np.ndarray]:
    """Per step, the largest |Δ| of the weights after the configured optimizer's step from
    (1 − ηλ)w − η∂C/∂w, and of the biases from b − η∂C/∂b; and, as controls, each from the other formula."""
    named = [(n, p) for n, p in s.model.named_parameters()]
    matrix = {n: n.endswith("weight") and p.dim() >= 2 for n, p in named}  # the library's decay groups
    lr = s.optimizer.param_groups[0]["lr"]
    out = {k: [] for k in ("weights", "biases", "control: weights undecayed", "control: biases decayed")}
    for x, y in batches(*s.splits.train, BATCH, steps, seed):
        s.optimizer.zero_grad()
        s.loss_fn(s.model(x), y).backward()
        before = {n: (p.detach().clone(), p.grad.clone()) for n, p in named}
        s.optimizer.step()
        gap = {k: 0.0 for k in out}
        for n, p in named:
            w, g = before[n]
            decayed, plain = (1 - lr * weight_decay) * w - lr * g, w - lr * g
            right, wrong = (decayed, plain) if matrix[n] else (plain, decayed)
            kind = "weights" if matrix[n] else "biases"
            control = "control: weights undecayed" if matrix[n] else "control: biases decayed"
            gap[kind] = max(gap[kind], (p.detach() - right).abs().max().item())
            gap[control] = max(gap[control], (p.detach() - wrong).abs().max().item())
        for k in out:
            out[k].append(gap[k])
    return {k: np.array(v) for k, v in out.items()}


def weight_norm(model: MLP) -> float:
    return sum(l.weight.norm().item() ** 2 for l in model.linears()) ** 0.5


def weight_decay_update(lab: Lab) -> Section:
    lam, epochs = 0.01, lab.epochs(10)
    runs = {
        v: lab.run(
            "weight_decay_update",
            v,
            ["model.width=32", f"regularizer.weight_decay={wd}", f"trainer.max_epochs={epochs}"],
        )
        for v, wd in (("none", 0), ("weight_decay", lam))
    }
    norms = {v: [weight_norm(load(r)[0]) for r in rs] for v, rs in runs.items()}
    checks = [  # each seed's λ > 0 run started again from its own config
        decay_check(start(OmegaConf.load(r.path / "config.yaml")), 20, seed, lam)
        for seed, r in enumerate(runs["weight_decay"])
    ]
    gaps = {k: np.stack([c[k] for c in checks]) for k in checks[0]}  # (seeds, steps)
    _, _, high = paired(norms["weight_decay"], norms["none"])
    exact = gaps["weights"].max() < EXACT and gaps["biases"].max() < EXACT
    rows = [[k, fmt_e(g.max(axis=1)), f"{g.max():.1e}"] for k, g in gaps.items()]
    rows += [[f"‖W‖ after {epochs} epochs, {v}", fmt(n, 2), ""] for v, n in norms.items()]
    return Section(
        title="Weight decay's update shrinks each weight by (1 − ηλ) before the gradient step",
        claim="Minimising C + (λ/2)‖w‖² over the weights (not the biases), gradient descent updates "
        "w ← (1 − ηλ)w − η∂C/∂w: every step first shrinks each weight by the factor (1 − ηλ), so the weights stay "
        "smaller than without the term.",
        rule=f"held if, in every seed, each of 20 steps of the optimizer a run with regularizer.weight_decay={lam} "
        f"builds (SGD, η = 0.1) leaves every weight at (1 − ηλ)w − η∂C/∂w and every bias at b − η∂C/∂b (largest "
        f"\\|Δ\\| < {EXACT:g}), and the trained networks' ‖W‖ (all weight matrices) is smaller with λ = {lam} than "
        "with λ = 0 seed by seed (95% interval of the difference below 0). It would have failed had one parameter "
        f"differed by {EXACT:g} or more (a decayed bias or an undecayed weight differs by more: the controls), or "
        "the interval reached 0.",
        held=exact and high < 0,
        headline=f"largest \\|Δ\\| from the formula: weights {gaps['weights'].max():.1e}, biases "
        f"{gaps['biases'].max():.1e} (controls {min(g.min() for k, g in gaps.items() if k.startswith('control')):.1e} "
        "and more); ‖W‖ "
        f"λ = {lam} − λ = 0: {fmt_paired(norms['weight_decay'], norms['none'], 2)}",
        table=table(["compared", "largest \\|Δ\\| per seed", "worst"], rows),
        figure=lab.figure(weight_decay_update_figure(gaps, norms, EXACT), "weight_decay_update.png"),
        data="digits (1,797 8×8 images), training mini-batches of 32",
        published="— (the lecture's formula; no number)",
        notes=[
            f"2×32 ReLU, SGD η = 0.1, {epochs} epochs, {len(norms['none'])} seeds per λ from the same initial weights; "
            "the step check starts each seed's λ > 0 run again from its config: 20 steps on mini-batches of its "
            "training split, in float32 as it trains.",
            "torch's SGD adds λw to the gradient, η(∂C/∂w + λw): the same step as (1 − ηλ)w − η∂C/∂w up to rounding. "
            "With momentum the decay term enters the velocity instead and the update is no longer this one.",
        ],
    )
