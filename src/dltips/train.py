"""`train(cfg) -> metrics`: one run, the public entry (no Hydra here: `dltips-train` is
dltips.launch.cli, which calls this for every job).

    from dltips.config.validate import compose_train
    from dltips.train import train
    metrics = train(compose_train(["model.activation=relu"], "outputs/runs/mine"))
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m dltips.train` is the dltips-train command: hand over before
    # torch and Hydra load, so that a Ctrl-C while they do meets the command's handler
    from dltips.launch.command import main

    main()
    raise SystemExit(0)

from omegaconf import DictConfig  # noqa: E402

from dltips.config.validate import check_added, check_seeds, config_errors, use_aliases  # noqa: E402
from dltips.engine.loop import train_networks  # noqa: E402
from dltips.engine.members import HydraContext  # noqa: E402
from dltips.engine.seeds import train_seeds  # noqa: E402
from dltips.run.resume import resume_config  # noqa: E402


def train(cfg: DictConfig, context: HydraContext | None = None, overrides: list[str] | None = None) -> dict[str, float]:
    """Train, validate every epoch, test once at the end; return the final metrics (with
    trainer.seeds=K, the mean over the seeds and their ensemble's: dltips.engine.seeds).
    `context`: what Hydra chose for the job; `overrides`: what its command line changed next
    to `resume` (None for a Python caller: every key that differs from the defaults)."""
    return train_prepared(prepare(cfg, overrides), context or HydraContext())


def prepare(cfg: DictConfig, overrides: list[str] | None = None) -> DictConfig:
    """The config as it trains: old key names moved to the new ones, and with `resume` the
    run's own saved config (dltips.run.resume)."""
    if overrides is not None:
        with config_errors():
            check_added(cfg, overrides)
    cfg = resume_config(use_aliases(cfg), overrides)
    with config_errors():
        check_seeds(cfg)
    return cfg


def train_prepared(cfg: DictConfig, context: HydraContext) -> dict[str, float]:
    """train() once the config is prepared."""
    if cfg.trainer.seeds != 1:
        return train_seeds(cfg, context)
    return train_networks([cfg], [context]).members[0].report["metrics"]
