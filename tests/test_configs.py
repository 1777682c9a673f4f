"""Every config file composes, and every group option instantiates into a working object."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from dltips.config.validate import CONFIG_DIR, ConfigError, config_errors
from dltips.early_stopping import EarlyStopping
from dltips.nn import MLP
from dltips.optim import param_groups
from tests.conftest import compose_config

CONFIGS = Path(CONFIG_DIR)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def test_config_dir_found_from_checkout():
    assert (CONFIGS / "train.yaml").is_file()


@pytest.mark.parametrize("name", options("model"))
def test_model_configs(name, tmp_path):
    cfg = compose_config([f"model={name}"], tmp_path)
    model = instantiate(cfg.model, in_features=64, out_features=10)
    assert isinstance(model, MLP)
    assert model(torch.randn(5, 64)).shape == (5, 10)


@pytest.mark.parametrize("name", options("optimizer"))
def test_optimizer_configs(name, tmp_path):
    cfg = compose_config([f"optimizer={name}"], tmp_path)
    model = torch.nn.Linear(3, 2)
    optimizer = instantiate(cfg.optimizer)(param_groups(model, 0.01))
    assert isinstance(optimizer, torch.optim.Optimizer)
    before = model.weight.detach().clone()
    model(torch.randn(4, 3)).pow(2).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight)


@pytest.mark.parametrize("name", options("loss"))
def test_loss_configs(name, tmp_path):
    cfg = compose_config([f"loss={name}"], tmp_path)
    loss = instantiate(cfg.loss)(torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1]))
    assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("name", options("scheduler"))
def test_scheduler_configs(name, tmp_path):
    cfg = compose_config([f"scheduler={name}"], tmp_path)
    factor = instantiate(cfg.scheduler.factor)
    assert factor(0) == 1.0 and 0 < factor(100) <= 1.0
    assert cfg.scheduler.interval in ("epoch", "step")


@pytest.mark.parametrize("name", options("regularizer"))
def test_regularizer_configs(name, tmp_path):
    cfg = compose_config([f"regularizer={name}"], tmp_path)
    assert isinstance(instantiate(cfg.regularizer.early_stopping), EarlyStopping)
    assert cfg.regularizer.weight_decay >= 0


BUNDLED = ("digits", "synthetic", "mnist1d", "mnist5k", "wine", "breast_cancer")  # no download needed


@pytest.mark.parametrize("name", [n for n in options("data") if n in BUNDLED])
def test_bundled_data_configs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where data=mnist1d caches what it generates
    cfg = compose_config([f"data={name}"], tmp_path)
    dataset = instantiate(cfg.data.source)
    assert len(dataset.x) == len(dataset.y) > 0


@pytest.mark.parametrize("name", [n for n in options("data") if n not in BUNDLED])
def test_download_data_configs_name_their_files(name, tmp_path):
    """Sets that need a download compose, and without their files say where they looked."""
    cfg = compose_config([f"data={name}", f"data.root={tmp_path}"], tmp_path / "run")
    with pytest.raises(ConfigError, match=str(tmp_path)), config_errors():
        instantiate(cfg.data.source)


@pytest.mark.parametrize("device, gpus", [("cpu", 0), ("auto", 0), ("cuda", 1)])
def test_slurm_jobs_ask_for_a_gpu_only_for_cuda_runs(device, gpus):
    cfg = compose_config(["hydra/launcher=slurm", f"trainer.device={device}"], hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher.gpus_per_task == gpus and launcher.cpus_per_task == 1 and launcher.mem_gb <= 4


YAML_CASES = {
    "a run's config": None,  # written below from the default config, as Hydra writes it
    "floats, dates, nulls": "a: 1e-3\nb: .5\nc: 2026-12-03\nd: null\ne: 1_000\nf: [1e-2, x]\ng: .inf\nh: 'yes'\n",
    "references": "seed: 3\ndata:\n  split_seed: ${seed}\n  name: run-${seed}\nlist: ['${seed}']\n",
    "a reference to a reference or a node": "a: 1\nb: ${a}\nc: ${b}\nm: {x: 1}\nn: ${m}\n",
    "a resolver only Hydra knows": "out: ${hydra:runtime.output_dir}\nseed: 1\ns: ${seed}\n",
}


@pytest.mark.parametrize("case", YAML_CASES)
def test_yaml_files_read_as_omegaconf_reads_them(case, tmp_path):
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from dltips.config.keys import flatten
    from dltips.config.yaml_files import load_flat

    path = tmp_path / "config.yaml"
    if YAML_CASES[case] is None:
        path.write_text(OmegaConf.to_yaml(compose_config(["optimizer.lr=1e-4", "seed=7"], tmp_path / "run")))
    else:
        path.write_text(YAML_CASES[case])
    reference = OmegaConf.load(path)
    try:
        expected = flatten(OmegaConf.to_container(reference, resolve=True))
    except OmegaConfBaseException:
        expected = flatten(OmegaConf.to_container(reference, resolve=False))
    got = load_flat(path)
    assert got == expected and [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_yaml_files_write_what_omegaconf_writes_byte_for_byte():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from dltips.config.yaml_files import to_yaml

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        full = compose("train", overrides=["hydra/launcher=stacked", "optimizer.lr=1e-3"], return_hydra_config=True)
    tricky = OmegaConf.create(
        {
            "words": ["yes", "No", "on", "OFF", "y", "true", "maybe"],
            "numbers as text": ["1", "1e-3", "0x10", ".5", "inf", "nan", "1_000", "12:30"],
            "numbers": [1, 1.0, 1e-3, float("inf"), True, None],
            "long": "a line long enough to be folded by the emitter, " * 4 + "\nwith a newline and λ, ‖w‖²",
            "empty": {},
            "nothing": [],
            "nested": {"a": [{"b": "${seed}"}, [1, [2, "x: y"]]], "c": "# not a comment", "{}": {"d": "{}"}},
            "seed": 3,
            "deep": {"x": {"y": {"z": 1, "w": {}, "v": [{"u": 2}]}, "t": "${seed}"}},
            "k" * 200: {"long key": {"y": 1}},  # written as a complex key ("? ")
        }
    )
    hydra_yaml = OmegaConf.masked_copy(full, "hydra")  # what .hydra/hydra.yaml holds: one key
    for cfg in (full, hydra_yaml, tricky, OmegaConf.create({}), OmegaConf.create(["a=1", "b=yes"])):
        assert to_yaml(cfg) == OmegaConf.to_yaml(cfg)
    # A key's text is kept for the next config whose value is the same, never for a different one;
    # an int or a plain word follows the key's text as it is.
    words = ["x", "0", "a=1,b=2", "lr=0.1/seed=3", "_a.b-c+d", "/abs/path", "null", "NULL", "Yes", "off", "n"]
    words += ["a:b", "a: b", "a #b", "-a", "a ", "k" * 300, "é", "", "~", "=", "<<", ".inf", "2001-12-14", "1:20"]
    for value in (1, "1", 1.0, True, "true", [1], None, 0, -7, 10**30, *words):
        cfg = OmegaConf.create({"k": value, "other": {"x": 1, "y": value, "d": {"e": {"f": value}}}})
        assert to_yaml(cfg) == OmegaConf.to_yaml(cfg), value


def test_a_copied_config_is_a_deep_copy():
    import copy

    from omegaconf import OmegaConf

    from dltips.config.copies import copied

    cfg = compose_config(["optimizer.lr=0.3"], "/tmp/run")
    OmegaConf.set_readonly(cfg.trainer, True)
    copy_, reference = copied(cfg), copy.deepcopy(cfg)
    assert OmegaConf.to_yaml(copy_) == OmegaConf.to_yaml(reference)  # interpolations kept as written
    assert copy_.data.split_seed == reference.data.split_seed == cfg.seed  # and resolved
    assert OmegaConf.is_struct(copy_) == OmegaConf.is_struct(cfg) and OmegaConf.is_readonly(copy_.trainer)
    copy_.optimizer.lr = 0.01
    assert cfg.optimizer.lr == 0.3  # nothing shared


def test_a_config_that_does_not_pickle_is_still_copied():
    from dataclasses import dataclass

    from omegaconf import OmegaConf

    from dltips.config.copies import from_template, template

    @dataclass
    class Local:  # not importable by its name: pickle refuses a node typed by it
        lr: float = 0.1

    cfg = OmegaConf.create({"optimizer": OmegaConf.structured(Local), "seed": 1})
    frozen = template(cfg)
    first, second = from_template(frozen), from_template(frozen)
    first.optimizer.lr = 0.5
    assert second.optimizer.lr == cfg.optimizer.lr == 0.1 and OmegaConf.get_type(second.optimizer) is Local
