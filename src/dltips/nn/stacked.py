"""K networks of the same shape as one: stacked weights and batched matmuls.

`stack(models, generators)` turns K independently initialised MLPs into one module whose
forward takes (K, batch, features) — each member its own batch — and returns (K, batch,
classes). Every linear map becomes one `baddbmm` over the K weight matrices, so the per-step
cost of Python, autograd and the optimizer is paid once for all K. Members share no
parameters and no gradients: the optimizer's element-wise updates treat each slice alone.

Each member draws its dropout masks from its own generator, so member k sees exactly the masks
it would see trained alone (its generator starts where torch's default one was after its
initialisation; see dltips.engine.members).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dltips.nn.activations import PReLU
from dltips.nn.dropout import Dropout


class StackedLinear(nn.Module):
    """K linear maps: weight (K, out, in), bias (K, out); x (K, n, in) → (K, n, out)."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (W xᵀ + b)ᵀ rather than x Wᵀ + b: the weight's gradient, dz · x, then comes out in the
        # weight's own (K, out, in) layout, which autograd keeps as .grad; x Wᵀ's comes out as a
        # transpose, which autograd copies into that layout every step (a third of the step at
        # K = 64). The output is a transposed view, which the next layer's xᵀ reads as it lies.
        return torch.baddbmm(self.bias.unsqueeze(-1), self.weight, x.mT).mT

    def extra_repr(self) -> str:
        k, out, n = self.weight.shape
        return f"members={k}, in_features={n}, out_features={out}"


class StackedPReLU(PReLU):
    """K PReLUs: slope (K, units), each member's α applied to its own slice."""

    def __init__(self, prelus: list[PReLU]):
        nn.Module.__init__(self)
        self.slope = nn.Parameter(torch.stack([m.slope.detach() for m in prelus]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, z, self.slope.unsqueeze(1) * z)


class StackedDropout(Dropout):
    """Dropout with member k's own rate and mode, its mask drawn from generator k, shaped like
    one member's input."""

    def __init__(self, ps: list[float], modes: list[str], generators: list[torch.Generator]):
        super().__init__(max(ps), modes[0])
        self.ps, self.modes, self.generators = ps, modes, generators
        keeps = torch.tensor([1.0 - p for p in ps]).view(-1, 1, 1)  # (K, 1, 1): each member's 1 − p
        inverted = torch.tensor([m == "inverted" for m in modes]).view(-1, 1, 1)
        # Member k alone computes x·mask (weight scaling) or x·mask / keep (inverted) in training,
        # x·keep or x at test: the same operations here, with a divisor or factor of 1 (exact).
        self.register_buffer("keeps", keeps, persistent=False)
        self.register_buffer("divisors", torch.where(inverted, keeps, 1.0), persistent=False)
        self.register_buffer("test_factors", torch.where(inverted, 1.0, keeps), persistent=False)
        self.one_mode = len(set(modes)) == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.keeps.to(x)
        if self.one_mode:  # as Dropout computes it
            if self.training:
                mask = self.sample_mask(x, keep)
                return x * mask if self.mode == "weight_scaling" else x * mask / keep
            return x * keep if self.mode == "weight_scaling" else x
        if self.training:
            return x * self.sample_mask(x, keep) / self.divisors.to(x)
        return x * self.test_factors.to(x)

    def sample_mask(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [
                torch.empty(x.shape[1:], dtype=x.dtype, device=x.device).bernoulli_(1.0 - p, generator=g)
                for p, g in zip(self.ps, self.generators)
            ]
        )

    def keep(self, slices: list[int]) -> None:
        """Only these members' rates, modes and generators, in this order (Stack.drop_done)."""
        self.ps, self.modes = [self.ps[s] for s in slices], [self.modes[s] for s in slices]
        self.generators = [self.generators[s] for s in slices]
        self.p, self.mode, self.one_mode = max(self.ps), self.modes[0], len(set(self.modes)) == 1
        for name in ("keeps", "divisors", "test_factors"):
            setattr(self, name, getattr(self, name)[slices])

    def extra_repr(self) -> str:
        return f"p={self.ps}, mode={self.modes}"


def stack(models: list[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    """One module computing all `models` at once (same architecture), each member's dropout
    drawing from its own generator. Parameter names and order are the members' own."""
    stacked = copy.deepcopy(models[0])
    for name, module in models[0].named_modules():
        peers = [m.get_submodule(name) for m in models]
        if isinstance(module, nn.Linear):
            replace(stacked, name, StackedLinear(peers))
        elif isinstance(module, PReLU):
            replace(stacked, name, StackedPReLU(peers))
        elif isinstance(module, Dropout):
            replace(stacked, name, StackedDropout([m.p for m in peers], [m.mode for m in peers], generators))
    for name, module in stacked.named_modules():
        # Anything else with parameters would be shared by all members (their gradients summed),
        # and another dropout would draw every member's masks from one stream.
        shared = any(True for _ in module.parameters(recurse=False)) and not isinstance(
            module, (StackedLinear, StackedPReLU)
        )
        if shared or (isinstance(module, nn.modules.dropout._DropoutNd)):
            raise ValueError(
                "Invalid model._target_ trained together (trainer.seeds, hydra/launcher=stacked): "
                f"{name or 'the model'} is a {type(module).__name__}; "
                "allowed: layers that stack, torch.nn.Linear, dltips.nn.PReLU and dltips.nn.Dropout"
            )
    return stacked


@torch.no_grad()
def keep_members(stacked: nn.Module, index: torch.Tensor) -> dict[nn.Parameter, nn.Parameter]:
    """The stack narrowed in place to the members at `index` (K → S slices, in that order), each
    slice with its values; returns each parameter's replacement, for the optimizer
    (dltips.optim.per_member.keep_optimizer_members). New Parameter objects, not new data in
    the old ones: autograd keeps the old ones' shapes for as long as the last step's graph lives."""
    replaced = {}
    for module in stacked.modules():
        if isinstance(module, StackedDropout):
            module.keep(index.tolist())
        for name, p in list(module.named_parameters(recurse=False)):
            replaced[p] = nn.Parameter(p.detach()[index], requires_grad=p.requires_grad)
            setattr(module, name, replaced[p])
    return replaced


def tie(members: list[nn.Module], stacked: nn.Module) -> None:
    """Make each member's parameters views of its slice of the stacked ones: the members become
    plain networks over the weights being trained, for evaluation and diagnostics (one
    (n × in)·(in × out) matmul per layer on a whole split beats the batched one), nothing copied."""
    params = dict(stacked.named_parameters())
    with torch.no_grad():
        for k, member in enumerate(members):
            for name, p in member.named_parameters():
                p.data = params[name][k]


def tie_grads(members: list[nn.Module], stacked: nn.Module) -> None:
    """Each member's .grad: a view of its slice of the stacked gradients (for diagnostics)."""
    params = dict(stacked.named_parameters())
    for k, member in enumerate(members):
        for name, p in member.named_parameters():
            grad = params[name].grad
            p.grad = None if grad is None else grad[k]


def replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def member_state(state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Member k's slice of a stacked model's (or optimizer state's) tensors, as views: copy
    them before keeping them (torch.save of a view writes the whole stack's storage)."""
    return {name: t[k] for name, t in state.items()}
