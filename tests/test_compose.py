"""A sweep job's config composed once per distinct group choice (dltips.launch.compose) equals
what Hydra's own compose gives it, job by job."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from dltips.config.validate import CONFIG_DIR
from dltips.launch import compose

# One sweep's jobs, mixing config groups, values, appended keys, presets and Hydra's own keys.
JOBS = [
    ["optimizer.lr=0.1", "seed=1"],
    ["optimizer.lr=0.3", "seed=2"],
    ["optimizer=adam", "optimizer.lr=0.001", "seed=0"],
    ["optimizer=adam", "optimizer.lr=0.01", "seed=1"],
    ["model.activation=sigmoid", "data=synthetic", "data.source.n_samples=300"],
    ["data=synthetic", "model.activation=relu", "data.source.n_samples=400"],
    ["optimizer=adam", "+optimizer.amsgrad=true", "regularizer.weight_decay=0.01"],
    ["experiment=vanishing_gradient", "model.depth=3", "model.activation=maxout"],
    ["hydra.job.chdir=false", "seed=2", "trainer.progress=log"],
    ["model.dropout=0.2", "data.split_seed=${seed}", "seed=3"],
    ["trainer.max_epochs=7", "regularizer.early_stopping.patience=null"],
]


@pytest.fixture
def hydra():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "train", ["trainer.max_epochs=3", "hydra/launcher=stacked"], RunMode.MULTIRUN
        )
        compose.BASES.clear()
        yield loader, master
    compose.BASES.clear()


def test_every_job_equals_hydras_own_compose(hydra):
    loader, master = hydra
    for job in JOBS:
        fast = compose.compose_job(loader, master, job)
        reference = loader.load_sweep_config(master, job)
        assert OmegaConf.to_yaml(fast) == OmegaConf.to_yaml(reference), job
        assert OmegaConf.is_struct(fast) == OmegaConf.is_struct(reference)
    # Composed by Hydra once per distinct set of group (and other structural) overrides only.
    assert len(compose.BASES) == 6


def test_every_jobs_task_config_is_hydras_config_without_its_node(hydra):
    import copy

    from omegaconf import open_dict, read_write

    loader, master = hydra
    for job in JOBS:
        whole, task = compose.compose_job_and_task(loader, master, job)
        reference = copy.deepcopy(loader.load_sweep_config(master, job))  # as hydra.core.utils.run_job
        with read_write(reference), open_dict(reference):
            del reference["hydra"]
        assert "hydra" not in task and OmegaConf.to_yaml(task) == OmegaConf.to_yaml(reference), job
        assert OmegaConf.is_struct(task) and OmegaConf.to_yaml(whole) == OmegaConf.to_yaml(
            compose.compose_job(loader, master, job)
        )


def test_a_value_the_config_does_not_have_is_hydras_own_error(hydra):
    loader, master = hydra
    with pytest.raises(ConfigCompositionException, match="Could not override 'model.widht'"):
        compose.compose_job(loader, master, ["model.widht=3"])


def test_jobs_do_not_share_their_configs(hydra):
    loader, master = hydra
    a = compose.compose_job(loader, master, ["optimizer.lr=0.1"])
    b = compose.compose_job(loader, master, ["optimizer.lr=0.2"])
    assert (a.optimizer.lr, b.optimizer.lr) == (0.1, 0.2)
    assert list(a.hydra.overrides.task) == ["optimizer.lr=0.1"]


@pytest.mark.parametrize(
    "arguments",
    [
        ["optimizer=sgd,adam", "optimizer.lr=0.01,0.1", "seed=0,1,2"],
        ["model.activation=sigmoid,relu", "trainer.max_epochs=3", "seed=range(0,3)", "model.activation=tanh,relu"],
        ["data=synthetic", "+optimizer.amsgrad=true,false", "optimizer=adam"],
        [],
    ],
)
def test_the_grid_is_hydras_basic_sweep(arguments):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # the reference

    from dltips.launch.grid import grid

    parsed = OverridesParser.create().parse_overrides(arguments)
    assert grid(parsed) == BasicSweeper.split_arguments(parsed, None)[0]


def test_the_vanishing_gradient_presets_first_five_hparams_columns_hold_its_depth(hydra):
    # TensorBoard shows the first five columns, keys marked `differs` first, each part by name
    # (tensorboard.plugins.hparams.backend_context._sort_and_reduce_to_hparams_limit).
    from dltips.config.plan import Plan
    from dltips.observe.hparams import collect_hparams, defining_keys, experiment

    loader, _ = hydra
    master = loader.load_configuration("train", ["experiment=vanishing_gradient"], RunMode.MULTIRUN)
    plan = Plan.of([], {"model.activation": "sigmoid,relu,maxout"}, [], numbered=False)
    plan.defining = [key for key in defining_keys(master) if key not in plan.keys]
    assert {"experiment", "model.depth", "model.width", "model.init", "trainer.max_epochs"} <= set(plan.defining)
    assert "diagnostics" not in plan.defining and "trainer.log_every_n_steps" not in plan.defining  # no result changes
    job = compose.compose_job(loader, master, ["model.activation=sigmoid"])
    choices = {k: v for k, v in job.hydra.runtime.choices.items() if "/" not in k and v}
    infos = experiment(collect_hparams(job, choices, ["model.activation=sigmoid"], plan), plan).hparam_infos
    shown = sorted(infos, key=lambda info: (not info.differs, info.name))[:5]
    assert "model.activation" in [i.name for i in shown] and "model.depth" in [i.name for i in shown]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["optimizer.lr=0.3"], ["optimizer.lr"]),
        (["trainer.max_epochs=3", "model.width=32"], ["model.width", "trainer.max_epochs"]),
        (["optimizer=adam", "optimizer.lr=0.3"], ["optimizer", "optimizer.lr"]),  # against adam's own defaults
    ],
)
def test_an_experiments_defining_keys_are_what_differs_from_the_defaults_of_its_groups(hydra, overrides, expected):
    from dltips.observe.hparams import defining_keys

    loader, _ = hydra
    master = loader.load_configuration("train", overrides, RunMode.MULTIRUN)
    assert defining_keys(master) == expected
