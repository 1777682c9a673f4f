"""A bad configuration stops the run before training: one line that names the key, the value and
what is allowed, and nothing written. The classes raise the same errors without Hydra."""

from __future__ import annotations

import inspect
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from dltips.config.errors import ConfigError
from dltips.data import Augment, load_synthetic, prepare
from dltips.early_stopping import EarlyStopping
from dltips.nn import ACTIVATION_NAMES, MLP, Dropout, Maxout, MSELoss
from dltips.optim import Adagrad, Momentum, param_groups
from dltips.optim.schedules import step_decay
from dltips.train import train
from tests.conftest import compose_config

FAST = ["data=synthetic", "data.source.n_samples=200", "trainer.max_epochs=1", "trainer.progress=log"]
ACTIVATIONS = ", ".join(ACTIVATION_NAMES)
NO_IMAGES = "0 (this data has no image shape; rotate and shift need data=digits, mnist5k, mnist or fashion_mnist)"


def config_error(overrides: list[str], tmp_path: Path) -> str:
    """train() with these overrides must raise a one-line ConfigError and write nothing."""
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        train(compose_config([*FAST, *overrides], out))
    assert not out.exists()
    message = str(info.value)
    assert "\n" not in message
    return message


BAD_VALUES = [
    (["model.activation=foo"], "model.activation", "'foo'", ACTIVATIONS),
    (["model.activation=maxout", "model.pieces=1"], "model.pieces", "1", "an integer >= 2"),
    (["model.activation=maxout", "model.pieces=0"], "model.pieces", "0", "an integer >= 2"),
    (["model.depth=0"], "model.depth", "0", "an integer >= 1"),
    (["model.depth=abc"], "model.depth", "'abc'", "an integer >= 1"),
    (["model.depth=true"], "model.depth", "True", "an integer >= 1"),  # not a 1-layer network
    (["model.width=0"], "model.width", "0", "an integer >= 1"),
    (["model.width=2.5"], "model.width", "2.5", "an integer >= 1"),
    (["model.dropout=1.0"], "model.dropout", "1.0", "0 <= p < 1"),
    (["model.dropout=-0.1"], "model.dropout", "-0.1", "0 <= p < 1"),
    (["model.input_dropout=1.5"], "model.input_dropout", "1.5", "0 <= p < 1"),
    (["optimizer.lr=0"], "optimizer.lr", "0", "a number > 0"),
    (["optimizer.lr=-0.1"], "optimizer.lr", "-0.1", "a number > 0"),
    (["optimizer.lr=abc"], "optimizer.lr", "'abc'", "a number > 0"),
    (["optimizer.lr=null"], "optimizer.lr", "None", "a number > 0"),
    (["optimizer=adam", "optimizer.lr=0"], "optimizer.lr", "0", "a number > 0"),  # torch's own accepts 0
    (["optimizer=momentum", "optimizer.momentum=1.0"], "optimizer.momentum", "1.0", "0 <= momentum < 1"),
    (["optimizer=momentum", "optimizer.momentum=-0.1"], "optimizer.momentum", "-0.1", "0 <= momentum < 1"),
    (["optimizer=torch_momentum", "optimizer.momentum=1.0"], "optimizer.momentum", "1.0", "0 <= momentum < 1"),
    (["regularizer.weight_decay=-0.001"], "regularizer.weight_decay", "-0.001", "a number >= 0"),
    # The parameter groups set weight decay: a value under optimizer would be ignored.
    (["+optimizer.weight_decay=0.5"], "optimizer.weight_decay", "0.5", "set regularizer.weight_decay"),
    (["optimizer=adam", "+optimizer.weight_decay=0"], "optimizer.weight_decay", "0", "set regularizer.weight_decay"),
    # torch's own checks, named by their config key.
    (["optimizer=adam", "+optimizer.betas=[2,0.9]"], "optimizer.betas", "[2, 0.9]", "two numbers in [0, 1)"),
    (["optimizer=adam", "+optimizer.betas=[0.9,1.0]"], "optimizer.betas", "[0.9, 1.0]", "two numbers in [0, 1)"),
    (["optimizer=adam", "+optimizer.eps=-1"], "optimizer.eps", "-1", "a number >= 0"),
    (["optimizer=rmsprop", "+optimizer.alpha=-0.5"], "optimizer.alpha", "-0.5", "a number >= 0"),
    (["optimizer=torch_adagrad", "optimizer.lr_decay=-1"], "optimizer.lr_decay", "-1", "a number >= 0"),
    (
        ["optimizer=torch_adagrad", "optimizer.initial_accumulator_value=-1"],
        "optimizer.initial_accumulator_value",
        "-1",
        "a number >= 0",
    ),
    (
        ["optimizer=torch_momentum", "+optimizer.nesterov=true", "+optimizer.dampening=0.5"],
        "optimizer.nesterov",
        "True",
        "true only with momentum > 0 and dampening = 0",
    ),
    (["optimizer=adagrad", "optimizer.eps=-1"], "optimizer.eps", "-1", "a number >= 0"),  # ours, same key
    # step(closure) re-evaluates the loss; the loop calls step() after its own backward.
    (
        ["optimizer._target_=torch.optim.LBFGS"],
        "optimizer._target_",
        "'torch.optim.LBFGS'",
        "an optimizer whose step() works without a closure",
    ),
    # Test first (of all 200), then validation (of the rest): 4 classes need 4 training samples.
    (
        ["data.val_fraction=0.99", "data.test_fraction=0.99"],
        "data.test_fraction",
        "0.99",
        "a fraction of the 200 samples that leaves at least 5 for training and validation",
    ),
    (
        ["data.val_fraction=0.99"],
        "data.val_fraction",
        "0.99",
        "a fraction of the 170 samples left after the test split that leaves at least 4",
    ),
    (["data.batch_size=0"], "data.batch_size", "0", "an integer from 1 to the 144 training samples"),
    (["data.batch_size=145"], "data.batch_size", "145", "an integer from 1 to the 144 training samples"),
    (["data.train_size=145"], "data.train_size", "145", "null or an integer from 4 (one per class) to 144"),
    (["data.augment.rotate=15"], "data.augment.rotate", "15", NO_IMAGES),
    (["data.augment.shift=1"], "data.augment.shift", "1", NO_IMAGES),
    (["seed=-1"], "seed", "-1", "an integer from 0 to 4294967295"),
    (["trainer.max_epochs=0"], "trainer.max_epochs", "0", "an integer >= 1"),
    (["trainer.tf32=1"], "trainer.tf32", "1", "true or false"),
    (["trainer.compile=turbo"], "trainer.compile", "'turbo'", "false, true (inductor) or a backend: "),
    (["trainer.checkpoint_every_n_epochs=0"], "trainer.checkpoint_every_n_epochs", "0", "an integer >= 1"),
    (["trainer.seeds=0"], "trainer.seeds", "0", "an integer >= 1 (the number of seeds trained at once)"),
    (["trainer.seeds=2.5"], "trainer.seeds", "2.5", "an integer >= 1"),
    (["seed=4294967295", "trainer.seeds=2"], "trainer.seeds", "2", "at most 1 with seed=4294967295"),
    (
        ["trainer.ensemble=0"],
        "trainer.ensemble",
        "0",
        "null, or 1 with trainer.seeds=1 (it is the old name of trainer.seeds)",
    ),
    (["trainer.ensemble=2", "trainer.seeds=3"], "trainer.ensemble", "2", "null, or 3 with trainer.seeds=3"),
    # Called only inside the loop: checked up front all the same.
    (["scheduler=step", "scheduler.factor.step_size=0"], "scheduler.factor.step_size", "0", "an integer >= 1"),
]


@pytest.mark.parametrize("overrides, key, value, allowed", BAD_VALUES, ids=[" ".join(c[0]) for c in BAD_VALUES])
def test_bad_value_is_one_line_before_training(overrides, key, value, allowed, tmp_path):
    message = config_error(overrides, tmp_path)
    assert message.startswith(f"Invalid {key}: {value}; allowed: ")
    assert allowed in message


@pytest.mark.filterwarnings("error")  # not torch's std() warning about an empty training split
def test_split_fractions_are_checked_before_splitting(tmp_path):
    message = config_error(["data.val_fraction=0.99", "data.test_fraction=0.99"], tmp_path)
    assert message.endswith("this leaves 2")
    assert "data.batch_size" not in message


@pytest.mark.parametrize(
    "override, key, value, allowed",
    [
        ("data.augment.rotate=1e9", "data.augment.rotate", "1000000000.0", "0 to 180 (degrees"),
        ("data.augment.rotate=181", "data.augment.rotate", "181", "0 to 180 (degrees"),
        ("data.augment.shift=1e9", "data.augment.shift", "1000000000.0", "0 to 8 (pixels; the images are 8×8)"),
        ("data.augment.shift=8.5", "data.augment.shift", "8.5", "0 to 8 (pixels"),
    ],
)
def test_augmentation_past_the_image_is_a_config_error(override, key, value, allowed, tmp_path):
    """Rotations past 180° and shifts past the image side train at chance: stopped up front."""
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        train(compose_config(["data=digits", "trainer.max_epochs=1", "trainer.progress=log", override], out))
    message = str(info.value)
    assert message.startswith(f"Invalid {key}: {value}; allowed: ") and allowed in message
    assert "\n" not in message
    assert not out.exists()


def test_cuda_without_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    message = config_error(["trainer.device=cuda"], tmp_path)
    assert message == "Invalid trainer.device: 'cuda', but no CUDA GPU is available here; allowed: auto, cpu"


def test_unknown_key_is_named_by_hydra(tmp_path):
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'model\.widht'"):
        compose_config(["model.widht=64"], tmp_path)


def test_unknown_experiment_lists_the_options(tmp_path):
    with pytest.raises(MissingConfigException) as info:
        compose_config(["experiment=nope"], tmp_path)
    message = str(info.value)
    assert "experiment/nope" in message
    assert all(name in message for name in ("vanishing_gradient", "optimizers", "overfitting"))


# --- the same errors from the classes, without Hydra ------------------------------------------


def _params() -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(2))]


def _mlp(**kwargs) -> MLP:
    return MLP(4, 3, **(dict(depth=2, width=8, activation="relu") | kwargs))


CONSTRUCTOR_ERRORS = [
    (lambda: _mlp(depth=0), "Invalid model.depth: 0; allowed: an integer >= 1"),
    (lambda: _mlp(depth="abc"), "Invalid model.depth: 'abc'; allowed: an integer >= 1"),
    (lambda: _mlp(depth=True), "Invalid model.depth: True; allowed: an integer >= 1"),
    (lambda: _mlp(width=2.0), "Invalid model.width: 2.0; allowed: an integer >= 1"),
    (lambda: _mlp(activation="swish"), f"Invalid model.activation: 'swish'; allowed: {ACTIVATIONS}"),
    (lambda: _mlp(activation="maxout", pieces=1), "Invalid model.pieces: 1; allowed: an integer >= 2"),
    (lambda: _mlp(dropout="0.5"), "Invalid model.dropout: '0.5'; allowed: 0 <= p < 1"),
    (lambda: _mlp(bias_init=float("nan")), "Invalid model.bias_init: nan; allowed: a finite number or null"),
    (lambda: Maxout(3, 2, 1), "Invalid model.pieces: 1; allowed: an integer >= 2"),
    (lambda: Dropout(1.5), "Invalid dropout probability: 1.5; allowed: 0 <= p < 1"),
    (lambda: Dropout(None), "Invalid dropout probability: None; allowed: 0 <= p < 1"),
    (lambda: Momentum(_params(), lr=0.1, momentum=1.0), "Invalid momentum value: 1.0; allowed: 0 <= momentum < 1"),
    (lambda: Momentum(_params(), lr=0), "Invalid learning rate: 0; allowed: a number > 0"),
    (lambda: Adagrad(_params(), lr=0.1, eps="abc"), "Invalid epsilon value: 'abc'; allowed: a number >= 0"),
    (lambda: param_groups(_mlp(), True), "Invalid regularizer.weight_decay: True; allowed: a number >= 0"),
    (
        lambda: EarlyStopping(True, "val/loss", 0.0),
        "Invalid regularizer.early_stopping.patience: True; allowed: null or an integer >= 1",
    ),
    (
        lambda: EarlyStopping(None, "val/f1", 0.0),
        "Invalid regularizer.early_stopping.monitor: 'val/f1'; allowed: val/loss, val/acc",
    ),
    (lambda: MSELoss("tanh"), "Invalid loss.output: 'tanh'; allowed: softmax, sigmoid, identity"),
    (
        lambda: Augment(15, 0, None, torch.zeros(3), torch.ones(3)),
        f"Invalid data.augment.rotate: 15; allowed: {NO_IMAGES}",
    ),
    (
        lambda: Augment(200, 0, (8, 8), torch.zeros(64), torch.ones(64)),
        "Invalid data.augment.rotate: 200; allowed: 0 to 180 (degrees; ±180 already reaches every angle)",
    ),
    (
        lambda: Augment(0, 29, (28, 28), torch.zeros(784), torch.ones(784)),
        "Invalid data.augment.shift: 29; allowed: 0 to 28 (pixels; the images are 28×28)",
    ),
    (lambda: step_decay(0, 0, 0.5), "Invalid scheduler.factor.step_size: 0; allowed: an integer >= 1"),
    (
        lambda: prepare(
            load_synthetic(100, 5, 2, 2, 0),
            seed=0,
            val_fraction=0.2,
            test_fraction=0.2,
            train_size=1000,
            normalize="standard",
            device="cpu",
        ),
        "Invalid data.train_size: 1000; allowed: null or an integer from 2 (one per class) to 64 "
        "(the training samples available)",
    ),
]


@pytest.mark.parametrize("build, message", CONSTRUCTOR_ERRORS, ids=[m.split(";")[0] for _, m in CONSTRUCTOR_ERRORS])
def test_constructors_raise_the_same_errors(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value) == message


# --- the command ------------------------------------------------------------------------------


def test_cli_bad_value_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dltips.train", "model.activation=foo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "Invalid" in line]
    assert line.endswith(f"config error: Invalid model.activation: 'foo'; allowed: {ACTIVATIONS}")
    # Hydra opens the run directory (its .hydra/ record and train.log) before train() runs;
    # a rejected command removes it again: nothing for dltips-compare to list as incomplete.
    assert not list((tmp_path / "outputs" / "runs").iterdir())


@pytest.mark.parametrize("launcher", ["stacked", "slurm"])
def test_a_bad_launcher_key_is_one_line_and_leaves_no_sweep_directory(launcher, tmp_path):
    out = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "dltips.train", "-m", f"hydra/launcher={launcher}", "hydra.launcher.max_members=0"]
        + ["seed=0,1", f"hydra.sweep.dir={out}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Invalid hydra.launcher.max_members: 0; allowed: an integer >= 1" in result.stderr
    assert not out.exists()  # the sweep's plan was written before Hydra built the launcher: removed


# --- fuzz: random wrong values for the main keys ---------------------------------------------

# Values as a user types them on the command line: strings (one that looks like a number), booleans,
# null, lists, a dict, negative, fractional, huge and non-finite numbers, and a few small
# numbers that are valid for many keys, so that some cases train.
TOKENS = [
    "abc",
    "''",
    "'3'",
    "true",
    "false",
    "null",
    "[1,2]",
    "[]",
    "{a:1}",
    "-1",
    "0",
    "1",
    "2",
    "-0.5",
    "0.5",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e30",
    "-1e30",
    "1000000000000",
]
HUGE = "1000000000000"
# A huge integer is a valid request for a huge network or a long run there, not a bad value.
SIZES = {"model.depth", "model.width", "model.pieces", "trainer.max_epochs", "trainer.seeds", "trainer.ensemble"}
# key -> the overrides that make the key matter
FUZZ_KEYS = {
    "model.depth": [],
    "model.width": [],
    "model.activation": [],
    "model.pieces": ["model.activation=maxout"],
    "model.dropout": [],
    "model.input_dropout": [],
    "model.bias_init": [],
    "model.init": [],
    "optimizer.lr": [],
    "optimizer.momentum": ["optimizer=momentum"],
    "data.batch_size": [],
    "data.train_size": [],
    "data.normalize": [],
    "data.augment.rotate": [],
    "data.augment.shift": [],
    "regularizer.weight_decay": [],
    "regularizer.early_stopping.patience": [],
    "regularizer.early_stopping.monitor": [],
    "trainer.max_epochs": [],
    "trainer.log_every_n_steps": [],
    "trainer.checkpoint_every_n_epochs": [],
    "trainer.seeds": [],
    "trainer.ensemble": [],
    "seed": [],
    "loss.output": ["loss=mse"],
}


def fuzz_cases(per_key: int = 3, seed: int = 20261128) -> list:
    rng = random.Random(seed)
    cases = []
    for key, extra in FUZZ_KEYS.items():
        tokens = [t for t in TOKENS if not (key in SIZES and t == HUGE)]
        for token in rng.sample(tokens, per_key):
            cases.append(pytest.param(key, token, extra, id=f"{key}={token}"))
    return cases


@pytest.mark.parametrize("key, token, extra", fuzz_cases())
def test_fuzz_clear_error_or_a_run(key, token, extra, tmp_path):
    """Every value either trains or stops with `Invalid <key>: ...; allowed: ...`; never a
    TypeError, KeyError or RuntimeError from inside torch (pytest fails on any of those)."""
    out = tmp_path / "run"
    try:
        cfg = compose_config([*FAST, *extra, f"{key}={token}"], out)
    except (HydraException, OmegaConfBaseException) as err:
        # Hydra rejecting a value while composing is fine too: the command prints its message
        # without a traceback (exit 1). The untyped YAML configs make this rare, but the message
        # must still name the key.
        assert key in str(err)
        return
    try:
        metrics = train(cfg)
    except ConfigError as err:
        message = str(err)
        assert message.startswith(f"Invalid {key}: ") and "; allowed: " in message, message
        assert "\n" not in message
        assert not out.exists()
        return
    assert {"train/loss", "val/acc", "test/acc"} <= metrics.keys()  # ran (possibly diverged: lr=1e30)
    assert (out / "metrics.json").is_file()


@pytest.mark.parametrize(
    "old, value, new, other",
    [("trainer.ensemble", 3, "trainer.seeds", 2), ("ensemble_eval", True, "eval_subnetworks", None)],
)
def test_old_names_still_set_their_new_keys(old, value, new, other, tmp_path):
    from omegaconf import OmegaConf

    from dltips.config.validate import use_aliases

    cfg = use_aliases(compose_config([f"{old}={value}"], tmp_path / "run"))
    assert OmegaConf.select(cfg, new) == value and OmegaConf.select(cfg, old) is None
    clash = [f"{old}={value}", f"{new}={other}"] if other is not None else [f"{old}=false", f"{new}=true"]
    with pytest.raises(ConfigError, match=rf"^Invalid {old}: "):  # both given, differently
        use_aliases(compose_config(clash, tmp_path / "run"))


@pytest.mark.parametrize(
    "added, message",
    [
        ("+trainer.max_epoch=3", r"Invalid \+trainer.max_epoch: '3'; allowed: the keys of trainer: .*max_epochs"),
        ("+data.batchsize=8", r"Invalid \+data.batchsize: '8'; allowed: the keys of data: .*batch_size"),
        ("+foo=1", r"Invalid \+foo: '1'; allowed: the config's top-level keys: .*seed"),
    ],
)
def test_a_key_added_where_dltips_reads_keys_by_name_is_refused(added, message, tmp_path):
    # Under trainer, data or the top level an added key is never read: a typo would be ignored.
    from dltips.train import prepare

    cfg = compose_config([added], tmp_path / "run")
    with pytest.raises(ConfigError, match=message):
        prepare(cfg, [added])


def test_an_argument_a_constructor_does_not_take_is_named_by_its_key(tmp_path):
    from dltips.nn import MLP

    with pytest.raises(ConfigError, match=r"Invalid model.widht: 3; allowed: the arguments of dltips.nn.MLP: ") as err:
        train(compose_config(["+model.widht=3", "trainer.max_epochs=1"], tmp_path / "run"))
    assert ", ".join(inspect.signature(MLP).parameters) in str(err.value)  # what it takes, from itself
    with pytest.raises(ConfigError, match=r"Invalid data.source.foo: 1; allowed: the arguments of .*load_digits"):
        train(compose_config(["+data.source.foo=1", "trainer.max_epochs=1"], tmp_path / "run2"))


@pytest.mark.parametrize("seeds", [1, 2])
def test_a_missing_value_is_one_line_naming_its_key_and_nothing_is_written(tmp_path, seeds):
    cfg = compose_config(
        ["regularizer.weight_decay=???", f"trainer.seeds={seeds}", "trainer.max_epochs=1"], tmp_path / "run"
    )
    with pytest.raises(ConfigError, match=r"Invalid regularizer.weight_decay: \?\?\? \(missing\); allowed: a value"):
        train(cfg)
    assert not (tmp_path / "run").exists()
