"""Dropout's sub-networks: how well does the weight-scaling rule stand in for averaging them?

Training with dropout samples one of 2^N weight-sharing thinned networks per mini-batch. At test
time the lecture multiplies the weights by (1 − p) instead of averaging all of them (lecture §5;
Srivastava et al. 2014, Goodfellow et al. 2013). This module measures that approximation on any
trained model containing `dltips.nn.Dropout` (either mode): it samples N sub-networks, averages
their predictions (arithmetic or normalized geometric mean), and compares accuracy, NLL and the
KL to the weight-scaling prediction as N grows. An explicit ensemble of independently trained
models gives the curve to compare against.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from dltips.nn.dropout import Dropout
from dltips.observe.tags import SUBNETWORKS

if TYPE_CHECKING:  # tensorboard is only needed by whoever passes a writer
    from torch.utils.tensorboard import SummaryWriter

AVERAGES = ("arithmetic", "geometric")
CHUNK = 8192  # examples per forward pass; bounds the memory on big splits, as train.evaluate does


@contextmanager
def restored_modes(model: nn.Module) -> Iterator[None]:
    """Put every module's train/eval flag back as it was, even on error.

    The flags are restored one by one, not with `model.train(mode)`, which would overwrite a
    submodule someone deliberately left in the other mode.
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _log(probs: torch.Tensor) -> torch.Tensor:
    # Clamped so a probability of exactly 0 gives a large finite log instead of -inf (and NaN in 0·log 0).
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def _softmax(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(xb).softmax(dim=-1) for xb in x.split(CHUNK)])


@torch.no_grad()
def weight_scaling_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax of the model in eval mode: the lecture's test-time rule, shape (batch, classes).

    weight_scaling mode multiplies by (1 − p); inverted mode is the identity at test time. Both
    are the same approximation of the ensemble average.
    """
    with restored_modes(model):
        model.eval()
        return _softmax(model, x)


def dropout_modules(model: nn.Module) -> list[Dropout]:
    """The dltips Dropout modules that actually drop something (p > 0)."""
    return [m for m in model.modules() if isinstance(m, Dropout) and m.p > 0]


def thin(x: torch.Tensor, mask: torch.Tensor, p: float, mode: str) -> torch.Tensor:
    """A sub-network's Dropout output: Dropout's training rule, applied with a given mask."""
    # Mirrors Dropout.forward in training mode; in both modes the mean over masks is its eval output.
    return x * mask if mode == "weight_scaling" else x * mask / (1.0 - p)


def _draw_masks(
    size: int, features: torch.Size, p: float, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Keep-masks of `size` sub-networks, shape (size, 1, *features); the 1 broadcasts over the examples."""
    # Drawn on the generator's device (a CPU generator cannot fill a CUDA tensor), then moved.
    device = generator.device if generator is not None else like.device
    keep = torch.rand((size, 1, *features), generator=generator, device=device) < 1.0 - p
    return keep.to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def sample_probs(model: nn.Module, x: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Softmax outputs of n sampled sub-networks, shape (n, batch, classes).

    A sub-network is a fixed thinned network, so each sample draws one mask per Dropout module
    and uses it for every example in x. Dropout's own training mode will not do: it draws a mask
    per element, i.e. a different sub-network for every example. Everything else stays in eval
    mode (batch norm uses its running statistics), as it would at test time.
    """
    if n < 1:
        raise ValueError(f"Invalid number of sub-networks: {n}; allowed: an integer >= 1")
    dropouts = dropout_modules(model)
    if not dropouts:
        # torch.nn.Dropout is not recognised on purpose: silently sampling nothing would report
        # a perfect match between the "ensemble" and the weight-scaling network.
        raise ValueError("model has no dltips.nn.Dropout with p > 0; there are no sub-networks to sample")
    # Several sub-networks share one forward pass: x is repeated `size` times along the batch and
    # block i of the batch gets sub-network i's masks. Small x (the usual test split, or a unit
    # test) then costs a few forward passes instead of n. This relies on the eval-mode model
    # treating examples independently, as chunked evaluation in dltips.engine.evaluate does too.
    group = max(1, CHUNK // max(1, min(len(x), CHUNK)))
    masks: dict[nn.Module, torch.Tensor] = {}
    size = 0

    def hook(module: Dropout, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        # Replaces the eval-mode output. The masks are drawn on a group's first call and reused by
        # later chunks of x, so chunking does not change which sub-networks are evaluated.
        (inp,) = args
        if module not in masks:
            masks[module] = _draw_masks(size, inp.shape[1:], module.p, inp, generator)
        blocks = inp.reshape(size, -1, *inp.shape[1:])  # (size, chunk, *features)
        return thin(blocks, masks[module], module.p, module.mode).reshape(inp.shape)

    out = []
    with restored_modes(model):
        model.eval()
        handles = [m.register_forward_hook(hook) for m in dropouts]
        try:
            for start in range(0, n, group):
                size = min(group, n - start)
                masks.clear()  # new sub-networks: fresh masks for every Dropout
                parts = []
                for xb in x.split(CHUNK):
                    copies = xb.expand(size, *xb.shape).reshape(-1, *xb.shape[1:])
                    parts.append(model(copies).softmax(dim=-1).reshape(size, len(xb), -1))
                out.append(torch.cat(parts, dim=1))
        finally:
            for handle in handles:
                handle.remove()
    return torch.cat(out)


def mc_average(probs: torch.Tensor, kind: str) -> torch.Tensor:
    """Combine sub-network predictions (n, batch, classes) into one (batch, classes).

    arithmetic: the mean probability. geometric: exp of the mean log-probability, renormalized —
    for a softmax output this is the softmax of the mean logits, the average weight scaling
    computes exactly for a single dropout layer before a linear softmax layer.
    """
    if kind == "arithmetic":
        return probs.mean(dim=0)
    if kind == "geometric":
        return _log(probs).mean(dim=0).softmax(dim=-1)  # softmax = exp then renormalize, stably
    raise ValueError(f"Invalid average: {kind!r}; allowed: {', '.join(AVERAGES)}")


def evaluate_predictions(probs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy and NLL (mean −log p_y) of predicted probabilities (batch, classes)."""
    acc = (probs.argmax(dim=-1) == y).float().mean()
    nll = -_log(probs.gather(-1, y[:, None])).mean()
    return {"acc": acc.item(), "nll": nll.item()}


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean over examples of KL(p ‖ q) = Σ_c p_c (log p_c − log q_c)."""
    # xlogy gives 0·log 0 = 0 exactly; q is clamped so a zero in q gives a large finite value.
    return (torch.xlogy(p, p) - p * _log(q)).sum(dim=-1).mean().item()


def subnetwork_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ns: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
    generator: torch.Generator | None = None,
) -> list[dict[str, float]]:
    """One row per N: the MC averages of N sub-networks against the weight-scaling network.

    The max(ns) sub-networks are drawn once and each N uses the first N of them, so the curve is
    nested (adding sub-networks, not redrawing them) and the differences between Ns are not noise.
    """
    if not ns or min(ns) < 1:
        raise ValueError(f"Invalid ns: {list(ns)}; allowed: a non-empty list of integers >= 1")
    reference = weight_scaling_probs(model, x)
    samples = sample_probs(model, x, max(ns), generator)
    ws = {f"weight_scaling/{k}": v for k, v in evaluate_predictions(reference, y).items()}
    rows = []
    for n in ns:
        row: dict[str, float] = {"n": n}
        for kind in AVERAGES:
            avg = mc_average(samples[:n], kind)
            row |= {f"{kind}/{k}": v for k, v in evaluate_predictions(avg, y).items()}
            row[f"{kind}/kl"] = kl_divergence(avg, reference)
        rows.append(row | ws)  # repeated per row: a flat reference line next to the curves
    return rows


def explicit_ensemble_curve(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[dict[str, float]]:
    """One row per K = 1..len(models): the arithmetic mean of the first K models' eval softmax."""
    if not models:
        raise ValueError("Invalid models: an empty list; allowed: one or more models")
    rows, total = [], None
    for k, model in enumerate(models, start=1):
        probs = weight_scaling_probs(model, x)
        total = probs if total is None else total + probs
        row = {f"arithmetic/{key}": v for key, v in evaluate_predictions(total / k, y).items()}
        rows.append({"k": k} | row)
    return rows


def log_curve(writer: SummaryWriter, rows: Sequence[dict[str, float]], prefix: str) -> None:
    """Write every value as `~subnetworks/{prefix}/{key}` with step N (or K), so curves overlay."""
    for row in rows:
        step = row["n"] if "n" in row else row["k"]
        for key, value in row.items():
            if key not in ("n", "k"):
                writer.add_scalar(f"{SUBNETWORKS}/{prefix}/{key}", value, int(step))
