"""Adagrad as the lecture argues for it: the contrast between a parameter's gradients, and the root
mean square of past gradients as a cheap estimate of the second derivative."""

from __future__ import annotations

import torch
from scipy import stats
from torch import nn
from torch.func import grad, jvp, vmap

from dltips.config.validate import compose_train
from dltips.observe.intervals import mean_ci
from dltips.optim import Adagrad
from lecture.figures_training import adagrad_contrast_figure, curvature_figure
from lecture.lab import Lab, Section, fmt, table

# The lecture's two parameters: the same last gradient 0.1 after small and after large ones.
SEQUENCES = {"small gradients": (0.001, 0.001, 0.003, 0.002, 0.1), "large gradients": (10.8, 20.9, 31.7, 12.1, 0.1)}
STEPS = (10, 30, 100, 300, 1000, 3000)  # where σ is compared with the curvature
OUTSIDE = {10: 0.79, 300: 0.94, 3000: 0.97}  # Spearman ρ of an outside check on the same network (unpublished)


def adagrad_steps(gradients: tuple[float, ...], lr: float = 1.0) -> list[float]:
    """|Δw| of each update when dltips.optim.Adagrad is fed these gradients of one parameter."""
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = Adagrad([w], lr=lr)
    steps = []
    for g in gradients:
        before = w.item()
        w.grad = torch.tensor([g], dtype=torch.float64)
        optimizer.step()
        steps.append(abs(w.item() - before))
    return steps


def second_derivatives(f, z: torch.Tensor) -> torch.Tensor:
    """∂²f/∂z_nj² for every row n and column j of z, where f sums (or averages) over rows that do
    not interact: one Hessian-vector product per column, with the column's one-hot on every row."""
    m = z.shape[1]
    onehots = torch.eye(m, dtype=z.dtype).unsqueeze(1).expand(m, *z.shape)  # (m, n, m)
    hv = vmap(lambda v: jvp(grad(f), (z,), (v,))[1])(onehots)  # (m, n, m): H·e_j on every row
    return hv.diagonal(dim1=0, dim2=2)  # (n, m): entry (n, j) = (H e_j)[n, j]


def hessian_diagonal(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The exact diagonal of the Hessian of C = mean cross-entropy over (x, y), for the weight and
    bias of every linear map of `model.net` (linear maps and parameter-free or elementwise
    activations in a row). Exact because W^l enters C only through z^l = W^l a^{l−1}:
    ∂²C/∂W_ji² = Σ_n (a_ni)² ∂²C/∂z_nj² and ∂²C/∂b_j² = Σ_n ∂²C/∂z_nj², and the ∂²C/∂z_nj² come
    from one Hessian-vector product per unit (torch.func), not one per parameter."""
    layers, out, a = list(model.net), [], x
    with torch.no_grad():
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                tail = nn.Sequential(*layers[i + 1 :])
                with torch.enable_grad():
                    d = second_derivatives(lambda z, tail=tail: nn.functional.cross_entropy(tail(z), y), layer(a))
                out.append(((d.T @ a**2), d.sum(dim=0)))  # (out, in), (out,)
            a = layer(a)
    return out


def sigma(optimizer: Adagrad, p: torch.Tensor) -> torch.Tensor:
    """σ^t = √((1/(t+1)) Σ g²) of each element of `p`, from the optimizer's own state."""
    state = optimizer.state[p]
    return (state["sum_sq"] / state["step"]).sqrt()


def spearman(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(
        stats.spearmanr(torch.cat([t.flatten() for t in a]).numpy(), torch.cat([t.flatten() for t in b]).numpy())[0]
    )


def curvature_run(seed: int, last: int) -> dict:
    """Train experiment=adagrad_curvature with Adagrad for `last` steps; at each of STEPS, the rank
    correlation of |∂²C/∂w²| (whole training set) with σ, and with the current |∂C/∂w|."""
    from dltips.engine.build import setup  # the report code stays cheap to import

    cfg = compose_train(["experiment=adagrad_curvature", f"seed={seed}", f"data.split_seed={seed}"])
    s = setup(cfg)
    model, optimizer, (x, y) = s.model, s.optimizer, s.splits.train
    params = [p for layer in model.linears() for p in (layer.weight, layer.bias)]
    order = torch.Generator().manual_seed(seed)
    out, step = {"sigma": {}, "gradient": {}}, 0
    while step < last:  # a measuring loop: it stops at STEPS, which train() has no reason to
        for idx in torch.randperm(len(y), generator=order).split(cfg.data.batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
            step += 1
            if step in STEPS:
                h = [t.abs() for pair in hessian_diagonal(model, x, y) for t in pair]
                model.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                out["sigma"][step] = spearman([sigma(optimizer, p) for p in params], h)
                out["gradient"][step] = spearman([p.grad.abs() for p in params], h)
                if step == last:
                    out["scatter"] = (
                        torch.cat([sigma(optimizer, p).flatten() for p in params]).numpy(),
                        torch.cat([t.flatten() for t in h]).numpy(),
                        [p.numel() for p in params],
                    )
            if step == last:
                break
    return out


def adagrad(lab: Lab) -> list[Section]:
    lr = 1.0  # steps in units of η
    gd = {k: [lr * abs(g) for g in seq] for k, seq in SEQUENCES.items()}
    ada = {k: adagrad_steps(seq, lr) for k, seq in SEQUENCES.items()}
    (small, large) = SEQUENCES
    contrast = ada[small][-1] / ada[large][-1]
    # The large sequence's 12.1 against the small one's 0.1: a 121× larger gradient, a smaller step.
    inverted = ada[large][3] < ada[small][-1]
    rows = [
        [k, t, f"{g:g}", f"{gd[k][t]:.4g}", f"{ada[k][t]:.4g}"]
        for k, seq in SEQUENCES.items()
        for t, g in enumerate(seq)
    ]

    last = STEPS[-1] if not lab.quick else 300
    runs = [curvature_run(seed, last) for seed in range(lab.seeds)]
    steps = [t for t in STEPS if t <= last]
    rho = {k: {t: [r[k][t] for r in runs] for t in steps} for k in ("sigma", "gradient")}
    low = mean_ci(rho["sigma"][last])[0] - mean_ci(rho["sigma"][last])[1]
    return [
        Section(
            title="Adagrad: a larger gradient does not mean a larger step",
            claim="Under gradient descent the step is η·|g|: a larger gradient, a larger step. Adagrad divides by the "
            "root of the parameter's summed squared gradients, so what counts is the contrast with its own past: the "
            "same gradient 0.1 is a big step after tiny gradients and a tiny step after large ones.",
            rule="held if, fed the lecture's two sequences, dltips.optim.Adagrad's step for the final gradient 0.1 is "
            "at least 100× larger after the small gradients than after the large ones (gradient descent: equal steps), "
            "and the large sequence's 12.1 gets a smaller step than the small sequence's 0.1. It would have failed had "
            "the contrast been under 100× or the 12.1's step the larger.",
            held=contrast >= 100 and inverted,
            headline=f"step for the last gradient 0.1, Adagrad: {ada[small][-1]:.3f}η after small gradients vs "
            f"{ada[large][-1]:.4f}η after large ones ({contrast:.0f}×); gradient descent 0.1η both; the 12.1 gets "
            f"{ada[large][3]:.3f}η",
            table=table(
                [
                    "sequence",
                    "t",
                    "gᵗ",
                    "gradient descent step: η·gᵗ (η = 1)",
                    "Adagrad step: η·gᵗ / √((g⁰)² + … + (gᵗ)²)",
                ],
                rows,
            ),
            figure=lab.figure(adagrad_contrast_figure(SEQUENCES, gd, ada, contrast), "adagrad_contrast.png"),
            data="the lecture's two gradient sequences (no data set)",
            published="— (the lecture's example; the steps follow from the formula)",
            notes=[
                "Each step is what dltips.optim.Adagrad (the optimizer=adagrad config's class) does with that gradient "
                "set as .grad; tests/test_lecture_more.py checks them against η·g^t/√(Σ_{i≤t} (g^i)²) written out."
            ],
        ),
        Section(
            title="Adagrad's σ ranks the parameters by their second derivative",
            claim="The best step is |first derivative| / second derivative; Adagrad's σ, the root mean square of a "
            "parameter's past gradients, estimates the second derivative from first derivatives alone.",
            rule=f"held if, on the MNIST-1D 40-32-10 ReLU network trained with the lecture's Adagrad, the Spearman "
            f"rank correlation between σ and \\|∂²C/∂w²\\| over the parameters at step {last} has its 95% interval "
            "over seeds above 0.7. It would have failed had the interval reached 0.7 or below.",
            held=low > 0.7,
            headline="Spearman ρ(σ, \\|∂²C/∂w²\\|): "
            + ", ".join(f"step {t} {fmt(rho['sigma'][t])}" for t in steps if t in OUTSIDE or t == last)
            + f"; the current gradient at step {last}: {fmt(rho['gradient'][last])}",
            table=table(
                ["step", "ρ(σ, \\|∂²C/∂w²\\|)", "ρ(\\|∂C/∂w\\| now, \\|∂²C/∂w²\\|)", "outside check: ρ(σ, ·)"],
                [[t, fmt(rho["sigma"][t]), fmt(rho["gradient"][t]), OUTSIDE.get(t, "")] for t in steps],
            ),
            figure=lab.figure(curvature_figure(rho, OUTSIDE, runs[0]["scatter"], last), "adagrad_curvature.png"),
            data="mnist1d (3,600 training signals)",
            published="— (the lecture's argument; no number)",
            notes=[
                "∂²C/∂w²: the exact diagonal of the Hessian of the mean cross-entropy over the whole training set, "
                "for all 1,642 weights and biases: W enters C only through z = W·a, so ∂²C/∂W_ji² = Σ_n a_ni² "
                "∂²C/∂z_nj², with ∂²C/∂z_nj² from one Hessian-vector product per unit (torch.func; checked against "
                "torch.autograd.functional.hessian in the tests).",
                "An outside check on the same network, not published: ρ(σ, \\|∂²C/∂w²\\|) = "
                + ", ".join(f"{v} at step {t:,}" for t, v in OUTSIDE.items())
                + " (the table's last column, the figure's stars).",
                f"σ: from dltips.optim.Adagrad's state (lr 0.05, batches of 100), {lab.seeds} seeds, each on its own "
                "split; "
                "ρ(\\|∂C/∂w\\| now, ·) uses the current whole-training-set gradient instead: one gradient, no history.",
            ],
            history=[
                "The threshold 0.7 was set with the outside check's ρ (0.79 at step 10, 0.94 at 300, 0.97 at 3,000) "
                "already known, so the rule is not independent of it.",
            ],
        ),
    ]
