"""`trainer.seeds=K`: K seeds of one config trained at once, stacked (dltips.engine.members).

Member k has seed `seed + k`: its own initialisation, batch order, augmentation and dropout
masks; all share the data split of the first (`data.split_seed`). Each writes a complete run
directory, `member_<k>/`, with the config that reproduces it alone (`dltips-train` with that
config gives the same numbers, to float tolerance), its metrics.json, TensorBoard events and
checkpoints. The directory itself holds the mean of the members' metrics and their ensemble's
(the average of the members' predicted probabilities) in its metrics.json; `resume=` it to
continue every member.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dltips.config.copies import from_template, template
from dltips.engine.loop import train_networks
from dltips.engine.members import HydraContext, Networks
from dltips.observe.subnetworks import explicit_ensemble_curve
from dltips.run import report
from dltips.run.interrupt import Interrupted, record_interrupted

log = logging.getLogger("dltips")


def member_dir(out: Path, k: int) -> Path:
    return out / f"member_{k:02d}"


def seed_configs(cfg: DictConfig) -> list[DictConfig]:
    """The K configs, seeds seed … seed+K−1 on the first one's data split, each in
    `<output_dir>/member_<k>`; with `resume`, each member continues from its own directory."""
    out = Path(cfg.output_dir)
    # split_seed: ${seed} → a number; each member a copy of one config made from it (K copies)
    frozen = template(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)))
    configs = []
    for k in range(cfg.trainer.seeds):
        member = from_template(frozen)
        member.seed, member.trainer.seeds, member.trainer.ensemble = cfg.seed + k, 1, None
        member.output_dir = str(member_dir(out, k))
        member.resume = member.output_dir if cfg.get("resume") else None
        configs.append(member)
    return configs


def train_seeds(cfg: DictConfig, context: HydraContext | None = None) -> dict[str, float]:
    """Train the K seeds; returns the mean metrics of those that completed and their ensemble's
    test accuracy and NLL (`ensemble/test/acc`, `ensemble/test/nll`). `context`: what Hydra
    chose for the job."""
    started = time.perf_counter()
    configs = seed_configs(cfg)
    context = context or HydraContext()
    try:
        ms = train_networks(configs, [context] * len(configs), root=cfg)
    except Interrupted as err:
        out = Path(cfg.output_dir)
        raise record_interrupted(out, err.signum, err.epoch, err.step, time.perf_counter() - started) from None
    return summarise(cfg, ms, time.perf_counter() - started)


def summarise(cfg: DictConfig, ms: Networks, time_s: float) -> dict[str, float]:
    """The directory's metrics.json: the members' mean and their ensemble's, over those that
    completed (a diverged one's NaNs would say nothing about the others)."""
    done = [m for m in ms.members if m.report["status"] == report.COMPLETED]
    for m in done:  # its weights when it finished (a stack's slice trained on after an early stop)
        m.view.load_state_dict(m.final_state)
    curve = explicit_ensemble_curve([m.view for m in done], *ms.members[0].splits.test) if done else []
    keys = list(ms.members[0].report["metrics"])
    summary = {key: sum(m.report["metrics"][key] for m in done) / len(done) if done else math.nan for key in keys}
    summary |= {
        "ensemble/test/acc": curve[-1]["arithmetic/acc"] if curve else math.nan,
        "ensemble/test/nll": curve[-1]["arithmetic/nll"] if curve else math.nan,
        "members_completed": len(done),
    }
    report.write(
        Path(cfg.output_dir),
        report.COMPLETED if len(done) == len(ms.members) else report.DIVERGED,
        metrics=summary,
        members={m.out.name: m.report["status"] for m in ms.members},
        explicit_ensemble=curve,
        time_s=time_s,
    )
    log.info(
        "%d/%d seeds completed: test/acc mean %.4f, their ensemble %.4f (%s)",
        len(done),
        len(ms.members),
        summary["test/acc"],
        summary["ensemble/test/acc"],
        cfg.output_dir,
    )
    return summary
