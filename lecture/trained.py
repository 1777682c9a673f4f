"""What the studies measure on trained networks: each run's network and data, loaded back."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from dltips.data import Splits
from dltips.nn import MLP
from dltips.run import checkpoint
from lecture.lab import Run


def load(run: Run, which: str = "last.pt") -> tuple[MLP, Splits]:
    """The network a run trained, from its `which` checkpoint (last.pt; best.pt: the best epoch by
    regularizer.early_stopping.monitor), in eval mode, with the run's data splits."""
    from dltips.engine.build import setup  # the report code stays cheap to import

    s = setup(OmegaConf.load(run.path / "config.yaml"))
    s.model.load_state_dict(checkpoint.load(run.path / which)["model"])
    return s.model.eval(), s.splits


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(dim=1) == y).float().mean().item()


def held_out(run: Run, split: str = "test") -> tuple[str, int]:
    """(the split's name in words, its number of rows) of the run's data: what a held-out interval rests on."""
    _, splits = load(run)
    return {"test": "test", "val": "validation"}[split], len(getattr(splits, split)[1])
