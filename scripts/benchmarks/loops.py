"""The loops the benchmark compares, all training the same workload: dltips' train(cfg), a
hand-written loop (the floor: the steps, an evaluation of train and val each epoch, one save at
the end), a DataLoader loop and Lightning's defaults."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dltips.config.validate import compose_train
from dltips.engine.build import setup
from dltips.train import train

LABELS = {
    "dltips": "(a) dltips train(cfg)",
    "dltips_diagnostics": "(a) dltips, diagnostics=true",
    "hand": "(b) hand-written loop",
    "dataloader": "(c) DataLoader loop",
    "lightning": "(d) Lightning defaults",
}


@dataclass(frozen=True)
class Workload:
    key: str  # short name for the targets
    name: str
    overrides: tuple[str, ...]  # dltips config overrides; every variant trains what they compose
    variants: tuple[str, ...] = ("dltips", "hand", "dataloader", "lightning")


MNIST_SHAPED = (  # make_classification rows of MNIST's shape; 2048 samples = 16 full batches
    "data=synthetic",
    "data.source.n_samples=3000",
    "data.source.n_features=784",
    "data.source.n_classes=10",
    "data.source.n_informative=10",
    "data.train_size=2048",
    "data.batch_size=128",
    "model.width=512",
)


WORKLOADS = (
    Workload("digits", "digits MLP 64-128-128-10 ReLU, batch 32", ()),
    Workload("MNIST-shaped", "MNIST-shaped MLP 784-512-512-10 ReLU, batch 128 (synthetic data)", MNIST_SHAPED),
    Workload(
        "8×256 sigmoid + dropout",
        "8×256 sigmoid MLP, dropout 0.5, digits, batch 32",
        ("model.depth=8", "model.width=256", "model.activation=sigmoid", "model.dropout=0.5"),
    ),
    Workload(  # experiment=vanishing_gradient's network, at the default log_every_n_steps (10)
        "diagnostics",
        "vanishing-gradient diagnostics: 10×64 sigmoid (xavier), digits, batch 32",
        ("model.depth=10", "model.width=64", "model.activation=sigmoid", "model.init=xavier"),
        ("dltips", "dltips_diagnostics", "hand"),
    ),
)


@dataclass
class Case:
    """One workload composed once: its config and its training tensors on the device."""

    workload: Workload
    cfg: DictConfig
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    val: tuple[torch.Tensor, torch.Tensor]  # evaluated each epoch by the hand-written loop, as by train(cfg)

    @property
    def batch_size(self) -> int:
        return self.cfg.data.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def model(self) -> nn.Module:
        """dltips.nn.MLP from the workload's config, seeded like train(cfg) seeds it."""
        torch.manual_seed(self.cfg.seed)
        model = instantiate(self.cfg.model, in_features=self.x.shape[1], out_features=self.num_classes)
        return model.to(self.x.device)

    def flops_per_sample(self) -> int:
        """Forward + backward ≈ 3 × forward, forward = 2 × Σ in×out multiply-adds per sample."""
        return 6 * sum(m.in_features * m.out_features for m in self.model().linears())


def make_case(workload: Workload, scratch: Path) -> Case:
    cfg = compose_train([*workload.overrides, "trainer.progress=log"], scratch / "case")
    s = setup(cfg)  # the very tensors train(cfg) trains on
    return Case(workload, cfg, *s.splits.train, s.splits.num_classes, s.splits.val)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Loss and accuracy over a whole split in eval mode, the way a plain script measures them."""
    model.eval()
    logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def hand_written(case: Case, epochs: int, run_dir: Path | None = None) -> list[tuple[float, float]]:
    """The floor a whole run is held to: the steps, train and val evaluated once per epoch, the
    weights saved once at the end (into `run_dir`); returns the per-epoch scores."""
    model = case.model()
    optimizer = torch.optim.SGD(model.parameters(), lr=case.cfg.optimizer.lr)
    x, y = case.x, case.y
    shuffle = torch.Generator(device=x.device).manual_seed(case.cfg.seed)
    scores = []
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), device=x.device, generator=shuffle).split(case.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
        scores.append((*evaluate(model, x, y), *evaluate(model, *case.val)))
    if run_dir is not None:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, run_dir / "last.pt")
    return scores


def dataloader_loop(case: Case, epochs: int) -> None:
    model = case.model()
    optimizer = torch.optim.SGD(model.parameters(), lr=case.cfg.optimizer.lr)
    shuffle = torch.Generator().manual_seed(case.cfg.seed)
    loader = DataLoader(TensorDataset(case.x, case.y), batch_size=case.batch_size, shuffle=True, generator=shuffle)
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()


def lightning_module():
    """`lightning` or `pytorch_lightning`, whichever imports; None when neither does."""
    for name in ("lightning", "pytorch_lightning"):
        try:
            return __import__(name)
        except ImportError:
            pass
    return None


def lightning_fit(case: Case, epochs: int, run_dir: Path) -> None:
    """Lightning's defaults (progress bar, logger, checkpoint per epoch, log every 50 steps)."""
    L = lightning_module()

    class Classifier(L.LightningModule):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            loss = F.cross_entropy(self.net(xb), yb)
            self.log("train/loss", loss)  # what dltips logs too
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=case.cfg.optimizer.lr)

    loader = DataLoader(TensorDataset(case.x, case.y), batch_size=case.batch_size, shuffle=True)
    accelerator = "gpu" if case.x.is_cuda else "cpu"
    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric"):  # one-off banners only
        logging.getLogger(name).setLevel(logging.WARNING)
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        trainer = L.Trainer(max_epochs=epochs, default_root_dir=str(run_dir), accelerator=accelerator, devices=1)
        trainer.fit(Classifier(case.model()), loader)


def runner(variant: str, case: Case, epochs: int, run_dir: Path) -> Callable[[], object]:
    """What to call for one run; configs are composed here, before the clock starts."""
    if variant in ("dltips", "dltips_diagnostics"):
        diagnostics = "true" if variant == "dltips_diagnostics" else "false"
        overrides = [
            *case.workload.overrides,
            f"diagnostics={diagnostics}",
            f"trainer.max_epochs={epochs}",
            "trainer.progress=log",
        ]
        # The thread count every other loop of the comparison runs with, not trainer.threads' auto.
        cfg = compose_train([*overrides, f"trainer.threads={torch.get_num_threads()}"], run_dir)
        return lambda: train(cfg)
    if variant == "hand":
        return lambda: hand_written(case, epochs, run_dir)
    if variant == "dataloader":
        return lambda: dataloader_loop(case, epochs)
    if variant == "lightning":
        return lambda: lightning_fit(case, epochs, run_dir)
    raise ValueError(f"Invalid variant: {variant!r}; allowed: {', '.join(LABELS)}")
