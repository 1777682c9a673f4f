"""What a sweep varies: its plan, job names made of the swept keys, and the HPARAMS table."""

from __future__ import annotations

import pytest
from tensorboard.plugins.hparams import api_pb2

from dltips.config.plan import Plan, job_name, short_keys, value_text
from dltips.observe.hparams import METRICS, collect_hparams, experiment, hparam_value
from tests.conftest import compose_config

EXCLUDED = ["trainer.device", "trainer.progress", "output_dir", "resume"]


def test_plan_keeps_only_keys_with_more_than_one_value():
    plan = Plan.of(
        [
            "model.activation=sigmoid,relu",
            "trainer.max_epochs=5",
            "seed=range(0,3)",
            "experiment=vanishing_gradient",
            "trainer.device=cpu,cuda",
            "hydra.sweep.dir=x",
            "model.width=choice(64)",
        ],
        {},
        EXCLUDED,
        numbered=False,
    )
    assert plan.swept == {"model.activation": ["sigmoid", "relu"], "seed": [0, 1, 2]}
    assert plan.keys == ["model.activation", "seed"] and not plan.intervals


def test_plan_command_line_replaces_the_sweepers_params():
    # experiment=vanishing_gradient sweeps the activation; a value on the command line fixes it.
    params = {"model.activation": "sigmoid,relu,maxout", "model.depth": "2,4"}
    plan = Plan.of(["model.activation=relu"], params, EXCLUDED, numbered=False)
    assert plan.swept == {"model.depth": [2, 4]}


def test_plan_of_a_search_space_keeps_its_intervals():
    params = {"optimizer.lr": "tag(log, interval(0.003, 1.0))", "regularizer.weight_decay": "interval(0, 0.01)"}
    plan = Plan.of([], params, EXCLUDED, numbered=True)
    assert plan.intervals == {"optimizer.lr": [0.003, 1.0], "regularizer.weight_decay": [0, 0.01]}
    assert plan.is_float("optimizer.lr") and plan.is_float("regularizer.weight_decay")


def test_plan_round_trips_through_the_sweep_directory(tmp_path):
    plan = Plan.of(["model.depth=2,10", "optimizer.lr=0.1,1"], {}, EXCLUDED, numbered=False)
    plan.save(tmp_path)
    assert Plan.load(tmp_path) == plan
    assert Plan.load(tmp_path / "nowhere") is None


def test_short_keys_are_the_shortest_unambiguous_suffixes():
    keys = ["model.activation", "model.depth", "model.dropout", "data.augment.dropout", "seed", "optimizer"]
    assert short_keys(keys) == {
        "model.activation": "activation",
        "model.depth": "depth",
        "model.dropout": "model.dropout",
        "data.augment.dropout": "augment.dropout",
        "seed": "seed",
        "optimizer": "optimizer",
    }


@pytest.mark.parametrize(
    "value, shown",
    [
        ("relu", "relu"),
        ("0.1", "0.1"),
        ("10000", "10000"),
        ("0.012345678901", "0.01235"),
        ("a/b", "a_b"),
        ("1e-05", "1e-05"),
    ],
)
def test_value_text_is_short_and_a_single_path_component(value, shown):
    assert value_text(value) == shown


def test_job_name_carries_the_swept_keys_only(tmp_path):
    Plan.of(["model.activation=sigmoid,relu", "model.depth=2,6", "trainer.max_epochs=5"], {}, EXCLUDED, False).save(
        tmp_path
    )
    job = ["model.activation=relu", "model.depth=6", "trainer.max_epochs=5"]
    assert (
        job_name(str(tmp_path), job, 3, "model.activation=relu,model.depth=6,trainer.max_epochs=5")
        == "activation=relu,depth=6"
    )


def test_job_name_is_numbered_for_searches_and_falls_back_without_a_plan(tmp_path):
    Plan.of([], {"optimizer.lr": "interval(0.003, 1.0)"}, EXCLUDED, numbered=True).save(tmp_path / "search")
    assert job_name(str(tmp_path / "search"), ["optimizer.lr=0.0123456789"], 7, "x") == "007_lr=0.01235"
    assert job_name(str(tmp_path / "none"), ["seed=1"], 0, "seed=1") == "seed=1"
    assert job_name(str(tmp_path / "none"), [], 4, "") == "4"


# HPARAMS ------------------------------------------------------------------------------------------


def test_hparam_values_show_integers_as_integers():
    assert hparam_value(32) == "32" and hparam_value(0.1) == 0.1 and hparam_value(True) is True
    assert hparam_value("relu") == "relu" and hparam_value(None) == "None"
    # A key the sweep also gives a float (weight decay 0 and 1e-3) stays a number throughout.
    assert hparam_value(0, as_float=True) == 0.0


def test_collect_hparams_leaves_hydra_out_and_types_by_the_plan():
    cfg = compose_config(["regularizer.weight_decay=0"])
    plan = Plan.of(["regularizer.weight_decay=0,0.001"], {}, EXCLUDED, numbered=False)
    params = collect_hparams(cfg, {"hydra": "default", "optimizer": "sgd"}, ["regularizer.weight_decay=0"], plan)
    assert "hydra" not in params and params["optimizer"] == "sgd"
    assert params["regularizer.weight_decay"] == 0.0 and params["data.batch_size"] == "32"


def test_sweep_experiment_lists_swept_keys_first_then_fixed_keys_and_the_metrics():
    plan = Plan.of(["model.activation=sigmoid,relu", "model.depth=2,10"], {}, EXCLUDED, numbered=False)
    fixed = {"data.batch_size": "32", "optimizer.lr": 0.1, "model.activation": "sigmoid"}
    exp = experiment(fixed, plan)
    infos = {i.name: i for i in exp.hparam_infos}
    assert [i.name for i in exp.hparam_infos][:2] == ["model.activation", "model.depth"]
    assert [i.name for i in exp.hparam_infos if i.differs] == ["model.activation", "model.depth"]
    assert list(infos["model.depth"].domain_discrete) == ["2", "10"]  # as numbers sort, written as integers
    assert infos["optimizer.lr"].type == api_pb2.DATA_TYPE_FLOAT64 and not infos["optimizer.lr"].differs
    assert list(infos["status"].domain_discrete) == ["completed", "diverged"]
    assert [(m.display_name, m.name.tag) for m in exp.metric_infos] == list(METRICS.items())


def test_a_swept_key_with_values_of_mixed_types_is_a_string_column():
    # optimizer.lr=0.1,abc: the bad point fails on its own; the table of the sweep is still written
    plan = Plan.of(["optimizer.lr=0.1,abc", "model.depth=2,x"], {}, EXCLUDED, numbered=False)
    infos = {i.name: i for i in experiment({}, plan).hparam_infos}
    assert infos["optimizer.lr"].type == infos["model.depth"].type == api_pb2.DATA_TYPE_STRING
    assert list(infos["optimizer.lr"].domain_discrete) == ["0.1", "abc"]
    assert list(infos["model.depth"].domain_discrete) == ["2", "x"]


def test_a_path_in_an_override_never_nests_the_run_directory(tmp_path):
    from dltips.config.plan import Plan, job_name
    from dltips.config.resolvers import suffix

    assert "/" not in suffix("data.cache_dir=/data/mnist,seed=1")
    assert suffix("seed=1") == "_seed=1"
    Plan.of(["data.cache_dir=/a/b,/c", "seed=1"], {}, excluded=[], numbered=False).save(tmp_path)
    name = job_name(str(tmp_path), ["data.cache_dir=/a/b", "seed=1"], 0, "")
    assert "/" not in name and name.startswith("cache_dir=")
    assert "/" not in job_name(str(tmp_path / "no plan"), ["data.cache_dir=/x"], 3, "data.cache_dir=/x")
