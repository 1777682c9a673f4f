"""Which runs of dltips-compare are one setting: a run's config as flat keys, the keys that group
runs (--group, else what the sweep varies), and the names that tell groups and runs apart.

A setting is a run's config values except the seeds (dltips.config.plan.SEEDS): runs that
differ only in them are samples of one setting, and a group is one combination of values of the
grouping keys.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dltips.config.keys import WHERE
from dltips.config.plan import SEEDS, Plan, short_keys
from dltips.config.yaml_files import load, load_flat

# Where a run is, not what it trains: every run has its own, so they never separate settings.
# --group none: one row and one curve per run, no groups.
NONE = "none"
# The label of the one group when no key separates the runs (the seeds of one config).
ALL = "all runs"
# Hydra names single runs "<date>_<time>_<override_dirname>" (configs/hydra/default.yaml).
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_?")


class UnknownKey(ValueError):
    """A --group key that no run's config has."""


def parse_overrides(name: str) -> list[str]:
    """'k=v,k2=v2' (Hydra's override_dirname) -> ['k=v', 'k2=v2']; a comma starts a new
    override only where a 'key=' follows, so list values like 'x=[1,2]' stay whole."""
    name = TIMESTAMP.sub("", name)
    return [item for item in re.split(r",(?=[\w.+~/-]+=)", name) if "=" in item]


def read_overrides(path: Path) -> list[str]:
    if path.name.startswith("member_") and (path / "config.yaml").is_file():
        # An ensemble member: its ensemble's overrides, with its own seed in place of the ensemble's.
        seed = load_flat(path / "config.yaml")["seed"]
        return [item for item in read_overrides(path.parent) if not item.startswith("seed=")] + [f"seed={seed}"]
    file = path / ".hydra" / "overrides.yaml"
    if file.is_file():
        return [str(item) for item in load(file) or []]
    return parse_overrides(path.name)


def read_config(path: Path) -> dict[str, object] | None:
    """The run's config.yaml as flat key -> value (interpolations resolved where they can be:
    data.split_seed is ${seed}); None when the run wrote none."""
    file = Path(path) / "config.yaml"
    if not file.is_file():
        return None
    return load_flat(file)


def settings(path: Path, overrides: list[str]) -> dict[str, object]:
    """The run's config values: config.yaml's leaves, and the overrides where it has no leaf (a
    config group is a whole node there, its name only in optimizer=adam; older runs without a
    config.yaml); {} when the run wrote neither (it failed before)."""
    out = read_config(path) or {}
    for item in overrides:
        key, _, value = item.lstrip("+").partition("=")
        if not key.startswith("~"):  # ~key deletes the key: no value
            out.setdefault(key, value)
    return out


def differing(configs: list[dict], skip: tuple[str, ...] = ()) -> list[str]:
    """The keys on which two of the configs that have them disagree, sorted. A key a config lacks
    says nothing: a run without config.yaml knows only its overrides."""
    values: dict[str, set[str]] = {}
    for c in configs:
        for key, value in c.items():
            # str(): a value from an override ("0.1") equals the same value from config.yaml (0.1).
            values.setdefault(key, set()).add(str(value))
    return sorted(key for key, seen in values.items() if len(seen) > 1 and key not in skip)


def group_keys(group: str | list[str] | None, root: Path, configs: list[dict]) -> list[str] | None:
    """The keys whose values make a group: `group` (comma-separated, or a list; NONE: None, one
    row per run), by default the keys the sweep at root varies (sweep.yaml), else those whose
    values differ between the runs; never the seeds. Raises UnknownKey for a key no run has."""
    if group is None:
        plan = Plan.load(root)
        if plan is not None:
            return [key for key in plan.keys if key not in SEEDS]
        return differing(configs, skip=(*SEEDS, *WHERE))
    if group == NONE:
        return None
    keys = [key.strip() for key in group.split(",") if key.strip()] if isinstance(group, str) else list(group)
    known = {key for c in configs for key in c}
    unknown = [key for key in keys if key not in known]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise UnknownKey(f"unknown --group key {names}; keys: {', '.join(sorted(known))}")
    return keys


def group_label(values: tuple, keys: list[str]) -> str:
    """'relu' for one key (the table's column names it), 'activation=relu, lr=0.1' for several."""
    if not keys:
        return ALL
    if len(keys) == 1:
        return str(values[0])
    short = short_keys(keys)
    return ", ".join(f"{short[key]}={value}" for key, value in zip(keys, values))


def order(values: tuple) -> tuple:
    """Sort key of a group's values: numbers by size (depth 2 < 10), then text."""

    def one(value) -> tuple:
        try:
            return 0, float(str(value)), ""
        except ValueError:
            return 1, 0.0, str(value)

    return tuple(one(v) for v in values)


def run_labels(runs: list[str], configs: list[dict]) -> list[str]:
    """A legend name per run: its values of the keys that differ between these runs ('lr=0.1,
    seed=2'), never a path prefix they share; runs alike in every key (or without a config)
    are told apart by what differs in their paths."""
    keys = differing(configs, skip=WHERE)
    if all(c.get("data.split_seed") == c.get("seed") for c in configs if c):
        keys = [k for k in keys if k != "data.split_seed"]  # it follows seed: the same name twice
    short = short_keys(keys)
    labels = [", ".join(f"{short[k]}={c[k]}" for k in keys if k in c) for c in configs]
    parts = [Path(run).parts for run in runs]
    # Path components all runs share in front; a single run keeps its last one.
    shared = len(os.path.commonprefix(parts)) if len(parts) > 1 else len(parts[0]) - 1 if parts else 0
    paths = [str(Path(*p[shared:])) for p in parts]
    return [
        path if not label else f"{label} ({path})" if labels.count(label) > 1 else label
        for label, path in zip(labels, paths)
    ]
