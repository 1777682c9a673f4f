"""How fast dltips trains: its loop against plain PyTorch loops, same model, data and steps.

Variants, all in one process: `dltips` (train(cfg), default logging), `hand` (randperm + X[idx],
the floor), `dataloader` (DataLoader over a TensorDataset), `lightning` (when installed), and
`dltips_diagnostics` (train(cfg) with diagnostics=true). They are timed the same way, from
inside: a global optimizer post-step hook stamps every step (`StepClock`), so no loop needs
changing and per-run setup, per-epoch work and the steps themselves come apart.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.data import DataLoader, TensorDataset

from dltips.config import compose_train
from dltips.train import setup, train

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
    "data=synthetic", "data.source.n_samples=3000", "data.source.n_features=784", "data.source.n_classes=10",
    "data.source.n_informative=10", "data.train_size=2048", "data.batch_size=128", "model.width=512",
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
class Run:
    """One timed training run: seconds per optimizer step, by the wall clock and in CPU time."""

    steady_s: float  # inside epochs 2…E: first to last step of each epoch, epoch boundaries left out
    all_in_s: float  # last step of epoch 1 to the last step: per-epoch work (eval, checkpoints) included
    cpu_steady_s: float  # the same spans in process CPU time (all threads): blind to other processes
    cpu_all_in_s: float
    samples_per_s: float  # over the steady spans
    setup_s: float  # run call → first step done (model, optimizer, run directory, …)
    wall_s: float


def per_step(t: list[float], k: int) -> tuple[float, float]:
    """(steady, all-in) seconds per step from stamps after each of whole epochs of k steps."""
    epochs = len(t) // k
    spans = [t[e * k + k - 1] - t[e * k] for e in range(1, epochs)]  # epoch 1 is the warm-up
    return sum(spans) / ((k - 1) * (epochs - 1)), (t[-1] - t[k - 1]) / ((epochs - 1) * k)


class StepClock:
    """Wall and CPU stamps after every optimizer step of any optimizer (a global hook)."""

    def __init__(self, steps_per_epoch: int, cuda: bool):
        self.k, self.cuda, self.times, self.cpu = steps_per_epoch, cuda, [], []

    def _stamp(self, *_) -> None:
        if self.cuda and len(self.times) % self.k in (0, self.k - 1):  # the span ends: wait for the GPU
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def __enter__(self) -> StepClock:
        self.handle = register_optimizer_step_post_hook(self._stamp)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.end = time.perf_counter()
        self.handle.remove()

    def run(self, n_train: int, batch_size: int) -> Run:
        k, n = self.k, len(self.times)
        if n < 2 * k or n % k:
            raise RuntimeError(f"expected whole epochs of {k} steps, at least 2; got {n} steps")
        (steady, all_in), (cpu_steady, cpu_all_in) = per_step(self.times, k), per_step(self.cpu, k)
        return Run(
            steady, all_in, cpu_steady, cpu_all_in,
            samples_per_s=(n_train - batch_size) / (steady * (k - 1)),  # steps 2…k of each epoch
            setup_s=self.times[0] - self.start,
            wall_s=self.end - self.start,
        )  # fmt: skip


@dataclass
class Case:
    """One workload composed once: its config and its training tensors on the device."""

    workload: Workload
    cfg: DictConfig
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int

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
    return Case(workload, cfg, *s.splits.train, s.splits.num_classes)


def hand_written(case: Case, epochs: int) -> None:
    model = case.model()
    optimizer = torch.optim.SGD(model.parameters(), lr=case.cfg.optimizer.lr)
    x, y = case.x, case.y
    shuffle = torch.Generator(device=x.device).manual_seed(case.cfg.seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), device=x.device, generator=shuffle).split(case.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()


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
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        trainer = L.Trainer(max_epochs=epochs, default_root_dir=str(run_dir), accelerator=accelerator, devices=1)
        trainer.fit(Classifier(case.model()), loader)


def runner(variant: str, case: Case, epochs: int, run_dir: Path) -> Callable[[], object]:
    """What to call for one run; configs are composed here, before the clock starts."""
    if variant in ("dltips", "dltips_diagnostics"):
        diagnostics = "true" if variant == "dltips_diagnostics" else "false"
        overrides = [*case.workload.overrides, f"diagnostics={diagnostics}", f"trainer.max_epochs={epochs}", "trainer.progress=log"]
        cfg = compose_train(overrides, run_dir)
        return lambda: train(cfg)
    if variant == "hand":
        return lambda: hand_written(case, epochs)
    if variant == "dataloader":
        return lambda: dataloader_loop(case, epochs)
    if variant == "lightning":
        return lambda: lightning_fit(case, epochs, run_dir)
    raise ValueError(f"Invalid variant: {variant!r}; allowed: {', '.join(LABELS)}")


def time_run(variant: str, case: Case, epochs: int, scratch: Path) -> Run:
    with tempfile.TemporaryDirectory(dir=scratch) as run_dir:
        start = runner(variant, case, epochs, Path(run_dir))
        with StepClock(case.steps_per_epoch, case.x.is_cuda) as clock:
            start()
    return clock.run(len(case.y), case.batch_size)


def gemm_rate(n: int = 2048, repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """FLOP/s of an n×n float32 matmul, best of `repeats` (the machine's attainable peak)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    inner = 20 if torch.device(device).type == "cuda" else 1
    best = math.inf
    for _ in range(repeats + 1):  # the first is a warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - start) / inner)
    return 2 * n**3 / best


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bench_workload(
    workload: Workload, scratch: Path, repeats: int, target_s: float, warmup: bool, budget_s: float = math.inf, log=print
) -> dict:
    """Every variant, interleaved over repeats (start rotated each repeat), same epochs for all;
    fewer repeats (at least 2, or 1 when only 1 is asked) once `budget_s` is spent (a busy machine)."""
    began = time.perf_counter()
    case = make_case(workload, scratch)
    variants = [v for v in workload.variants if v != "lightning" or lightning_module() is not None]
    # Calibrate: enough epochs that each run's steady part lasts about target_s.
    probe = time_run("hand", case, 2, scratch)
    epochs = min(40, max(2, 1 + math.ceil(target_s / (probe.steady_s * case.steps_per_epoch))))
    if warmup:  # lazy imports, allocator, first SummaryWriter: paid once, outside the timings
        for v in variants:
            time_run(v, case, 2, scratch)
    runs: dict[str, list[Run]] = {v: [] for v in variants}
    for r in range(repeats):
        if r >= min(2, repeats) and time.perf_counter() - began > budget_s:
            log(f"  stopping after {r} repeats: over the {budget_s:.0f} s budget")
            break
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
            runs[v].append(time_run(v, case, epochs, scratch))
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{v} {runs[v][-1].steady_s * 1e6:.0f} µs" for v in variants))
    return {
        "key": workload.key,
        "name": workload.name,
        "batch_size": case.batch_size,
        "n_train": len(case.y),
        "steps_per_epoch": case.steps_per_epoch,
        "epochs": epochs,
        "repeats": len(runs[variants[0]]),
        "flops_per_sample": case.flops_per_sample(),
        "skipped": {"lightning": "not installed: `uv sync --group bench`"} if "lightning" in set(workload.variants) - set(variants) else {},
        "runs": {v: [asdict(run) for run in rs] for v, rs in runs.items()},
    }


STARTUP_MARKS = ("interpreter", "imports", "setup", "first_step")
STARTUP_CHILDREN = {
    # Exactly what the dltips-train script runs, plus a hook that records the first step and exits.
    "dltips-train": """
import json, os, sys, time
marks = {"interpreter": time.time()}
import dltips.train
from torch.optim.optimizer import register_optimizer_step_post_hook
marks["imports"] = time.time()
setup = dltips.train.setup
def timed_setup(cfg):  # train() looks setup up at call time
    s = setup(cfg)
    marks["setup"] = time.time()
    return s
dltips.train.setup = timed_setup
def first_step(*_):
    marks["first_step"] = time.time()
    print("BENCH-MARKS " + json.dumps(marks), flush=True)
    os._exit(0)
register_optimizer_step_post_hook(first_step)
sys.argv = ["dltips-train", *sys.argv[1:]]
dltips.train.main()
""",
    # The floor: import torch, build the digits MLP, one step on random data.
    "plain torch script": """
import json, sys, time
marks = {"interpreter": time.time()}
import torch
marks["imports"] = time.time()
model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
marks["setup"] = time.time()
torch.nn.functional.cross_entropy(model(torch.randn(32, 64)), torch.randint(0, 10, (32,))).backward()
optimizer.step()
marks["first_step"] = time.time()
print("BENCH-MARKS " + json.dumps(marks), flush=True)
""",
}


def parse_marks(output: str, launched: float) -> dict[str, float]:
    """Seconds from launch: interpreter up, imports done, setup done, first optimizer step done."""
    line = next(line for line in output.splitlines() if line.startswith("BENCH-MARKS "))
    marks = json.loads(line.removeprefix("BENCH-MARKS "))
    return {key: marks[key] - launched for key in STARTUP_MARKS}


def time_startup(name: str, run_dir: Path) -> dict[str, float]:
    args = ["trainer.max_epochs=1", "trainer.progress=log", f"hydra.run.dir={run_dir}"] if name == "dltips-train" else []
    launched = time.time()  # wall clock: the child's marks use the same one
    env = os.environ | {"OMP_NUM_THREADS": str(torch.get_num_threads())}  # the threads this process uses
    proc = subprocess.run([sys.executable, "-c", STARTUP_CHILDREN[name], *args], capture_output=True, text=True, timeout=600, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return parse_marks(proc.stdout, launched)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def load_average() -> tuple[float, ...] | None:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def machine() -> dict:
    L = lightning_module()
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "lightning": getattr(L, "__version__", "?") if L else None,
        "load_average": load_average(),
    }


def benchmark(out: Path, quick: bool = False, workloads=WORKLOADS, startup: bool = True, log=print) -> dict:
    """The whole benchmark in this process; returns the raw report (render() makes BENCH.md)."""
    out.mkdir(parents=True, exist_ok=True)
    repeats, target_s, budget_s = (2, 0.05, 8.0) if quick else (5, 0.4, 50.0)
    report = {"quick": quick, "repeats": repeats, "machine": machine(), "workloads": [], "startup": {}}
    began, say = time.perf_counter(), log

    def log(msg: str) -> None:
        say(f"[{time.perf_counter() - began:5.1f} s] {msg}")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(dir=out, prefix=".scratch-") as tmp:
        scratch = Path(tmp)
        rates = [gemm_rate(repeats=2 if quick else 3, device=device)]
        for workload in workloads:
            log(f"{workload.name}")
            report["workloads"].append(bench_workload(workload, scratch, repeats, target_s, not quick, budget_s, log))
        rates.append(gemm_rate(repeats=2 if quick else 3, device=device))  # before and after: take the best
        report["gemm_flops"] = max(rates)
        if startup:
            log("startup")
            for i in range(1 if quick else 2):  # quick: the command only, not the floor
                for name in STARTUP_CHILDREN if not quick else ["dltips-train"]:
                    report["startup"].setdefault(name, []).append(time_startup(name, scratch / f"startup{i}"))
    report["machine"]["load_average_end"] = load_average()
    return report


def paired(runs: dict[str, list[dict]], fast: str, slow: str, key: str = "steady_s") -> tuple[float, float, float]:
    """How many times faster `fast` steps than `slow`: the median (min, max) over repeats of
    t_slow / t_fast, each pair from the same repeat, so machine noise hits both alike."""
    ratios = [b[key] / a[key] for a, b in zip(runs[fast], runs[slow])]
    return statistics.median(ratios), min(ratios), max(ratios)


def targets(report: dict) -> list[tuple[str, str, str, bool | None, bool | None]]:
    """(target, wall-clock ratio, CPU-time ratio, met by wall, met by CPU); None: not measured."""
    rows = []

    def check(name, runs, fast, slow, goal, key, cost=False):
        measured = []
        for k in (key, f"cpu_{key}"):
            r, lo, hi = paired(runs, fast, slow, k)
            text = f"+{(r - 1) * 100:.0f}% ({(lo - 1) * 100:+.0f}…{(hi - 1) * 100:+.0f}%)" if cost else f"{r:.2f}× ({lo:.2f}–{hi:.2f})"
            measured.append((text, r < goal if cost else r >= goal))
        rows.append((name, measured[0][0], measured[1][0], measured[0][1], measured[1][1]))

    for i, w in enumerate(report["workloads"]):
        runs, short = w["runs"], w["key"]
        if "hand" in runs and "dltips" in runs:
            check(f"{short}: dltips ≥ 0.95× hand-written", runs, "dltips", "hand", 0.95, "steady_s")
            check(f"{short}: the same, per-epoch work included", runs, "dltips", "hand", 0.95, "all_in_s")
        for v, goal in (("dataloader", 3.0), ("lightning", 2.0)) if i == 0 else ():
            name = f"{short}: dltips ≥ {goal:g}× {LABELS[v][4:]}"
            if v in runs:
                check(name, runs, "dltips", v, goal, "steady_s")
            else:
                rows.append((name, w["skipped"].get(v, "not run"), "", None, None))
        if "dltips_diagnostics" in runs:
            check(f"{short}: diagnostics=true costs < 25%", runs, "dltips", "dltips_diagnostics", 1.25, "steady_s", cost=True)
    return rows


def workload_table(w: dict, gemm: float) -> list[str]:
    lines = [
        f"### {w['name']}",
        "",
        f"{w['n_train']} training samples, {w['steps_per_epoch']} steps per epoch, {w['epochs']} epochs per run "
        f"(the first is warm-up), {w['repeats']} repeats, {w['flops_per_sample'] * w['batch_size'] / 1e6:.2f} MFLOP per full step.",
        "",
        "| variant | µs/step | min–max | steps/s vs (b) | CPU µs/step | vs (b) | samples/s | % of GEMM peak "
        "| µs/step incl. per-epoch work | vs (b) | CPU, incl. per-epoch | vs (b) | run setup, s |",
        "|---|" + "---:|" * 12,
    ]
    runs = w["runs"]
    for v, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        steady = [r["steady_s"] * 1e6 for r in rs]
        cells = [f"{med['steady_s'] * 1e6:,.0f}", f"{min(steady):,.0f}–{max(steady):,.0f}"]
        for key in ("steady_s", "cpu_steady_s", "all_in_s", "cpu_all_in_s"):
            if key != "steady_s":
                cells.append(f"{med[key] * 1e6:,.0f}")
            cells.append(f"{paired(runs, v, 'hand', key)[0]:.2f}×" if "hand" in runs else "–")
            if key == "cpu_steady_s":
                cells += [f"{med['samples_per_s']:,.0f}", f"{100 * w['flops_per_sample'] * med['samples_per_s'] / gemm:.2f}%"]
        lines.append(f"| {LABELS[v]} | " + " | ".join([*cells, f"{med['setup_s']:.2f}"]) + " |")
    for v, why in w["skipped"].items():
        lines.append(f"| {LABELS[v]} | skipped: {why} |" + " |" * 11)
    spread = max(max(r["steady_s"] for r in rs) / min(r["steady_s"] for r in rs) for rs in runs.values())
    if spread > 1.5:
        lines += ["", f"Noisy: one variant's slowest repeat took {spread:.1f}× its fastest (wall clock); the CPU-time columns are steadier."]
    return [*lines, ""]


METHOD = """\
- **One process, one run.** Every variant trains the same `dltips.nn.MLP` (built from the
  workload's config with the same seed) on the same training tensors (those `setup(cfg)` makes
  for `train(cfg)`), with SGD at the config's learning rate, the same batch size and the same
  number of epochs. Variants are interleaved, the first one rotated each repeat, so a noisy
  neighbour hits all of them alike. Each variant runs once untimed first (full runs).
- **Timed from inside, the same way for all.** A global optimizer post-step hook
  (`torch.optim.optimizer.register_optimizer_step_post_hook`) stamps `perf_counter()` and
  `process_time()` after every `optimizer.step()`, in every variant, `train(cfg)` and Lightning
  included, without touching their code (under 1 µs a step; on CUDA it synchronizes at the
  first and last step of each epoch only).
  - *µs/step*: first to last step of each epoch over the steps in between, epochs 2…E (epoch 1
    is warm-up). The loop itself: indexing, zero_grad, forward, loss, backward, step, and
    dltips' logging every `log_every_n_steps` (except a log that falls on an epoch's last step).
  - *incl. per-epoch work*: last step of epoch 1 to the last step, over the steps in between:
    what running E and E−1 epochs and taking the difference would give, without a second run.
    Adds shuffling and, for dltips, evaluation of train and val, epoch scalars, the event-file
    flush and the checkpoints (fsync'ed); for Lightning its checkpoint and logger.
  - *run setup*: calling the variant (`train(cfg)`, the loop, `Trainer.fit`) to its first step
    done; composing the config happens before and is not counted.
- **Wall clock and CPU time.** The wall clock is what a user waits for. On a machine shared with
  other work it also counts time spent descheduled, and a process that blocks (a checkpoint's
  fsync, a flush) is descheduled more afterwards, so the variants that write files lose more
  than their own work. CPU time (this process, all threads) ignores other processes; with several
  torch threads it also counts threads spinning while they wait for each other.
- **Median over repeats**, *min–max* the spread. Ratios are steps/s ratios paired by repeat
  (t(b)/t(x) within one repeat), then their median.
- **% of GEMM peak**: useful FLOPs (forward + backward ≈ 6 × Σ in×out per sample; dropout,
  diagnostics and the partial last batch not counted) × samples/s over the best rate of a
  2048×2048 float32 matmul timed in the same run, before and after the workloads.
- **Startup**: the `dltips-train` command (`trainer.max_epochs=1`) runs as `python -c` with the
  code of the installed script, plus a hook that records the wall clock when `setup()` returns
  and at the first optimizer step, then exits. Times are from just before the parent launches
  the process. The plain torch script (import torch, build the MLP, one step) is the floor."""


def busy_warning(m: dict) -> list[str]:
    """Other work on the cores makes multi-threaded ops wait for each other (OpenMP barriers)."""
    load = max((m.get(k) or (0,))[0] for k in ("load_average", "load_average_end"))
    if load < 0.5 * m["cores"] or m["threads"] == 1:
        return []
    return [
        f"**Busy machine**: load average up to {load:.1f} on {m['cores']} cores while torch used {m['threads']} threads "
        "per op; each op waits for its slowest thread, so single runs can be many times slower. Rerun on an "
        "idle machine, or compare with `--threads 1`.",
        "",
    ]


def loads(m: dict, key: str) -> str:
    return ", ".join(f"{x:.2f}" for x in m[key]) if m.get(key) else "n/a"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**not met**"


def render(report: dict) -> str:
    m, gemm = report["machine"], report["gemm_flops"]
    lines = [
        "# dltips benchmark: steps per second against plain PyTorch",
        "",
        f"torch {m['torch']} · Python {m['python']} · device {m['device']} · CPU {m['cpu']} ({m['cores']} cores) · "
        f"{m['threads']} torch threads · Lightning {m['lightning'] or 'not installed'}",
        f"{'quick' if report['quick'] else 'full'} run, up to {report['repeats']} repeats · "
        f"2048×2048 float32 matmul: {gemm / 1e9:.1f} GFLOP/s · load average {loads(m, 'load_average')} at start, "
        f"{loads(m, 'load_average_end')} at the end",
        "",
        *busy_warning(m),
        "## Targets",
        "",
        "Steps/s ratios, median (min–max) of the per-repeat ratios; diagnostics: extra time per step.",
        "",
        "| target | wall clock | met | CPU time | met |",
        "|---|---|---|---|---|",
    ]
    for name, wall, cpu, met_wall, met_cpu in targets(report):
        lines.append(f"| {name} | {wall} | {verdict(met_wall)} | {cpu} | {verdict(met_cpu)} |")
    lines += ["", "## Per step", ""]
    for w in report["workloads"]:
        lines += workload_table(w, gemm)
    if report["startup"]:
        n = len(next(iter(report["startup"].values())))
        lines += [
            "## Startup: process start to the first optimizer step",
            "",
            f"Median seconds from launch over {n} run(s).",
            "",
            "| command | interpreter up | imports done | setup done (config, data, model, optimizer) | first step done |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, marks in report["startup"].items():
            med = [statistics.median(x[k] for x in marks) for k in STARTUP_MARKS]
            lines.append(f"| {name} | " + " | ".join(f"{t:.2f}" for t in med) + " |")
        lines.append("")
    return "\n".join([*lines, "## Method", "", METHOD, ""])


def write(report: dict, out: Path) -> str:
    text = render(report)
    (out / "BENCH.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    return text
