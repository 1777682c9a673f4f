"""What a sweep varies, and job names made of it alone.

When a multirun starts, `Plan.of` reads the sweep's own arguments (the command line's and the
sweeper's `params`, later ones winning as in Hydra's sweepers) and keeps the keys that take more
than one value. The plan is saved in the sweep directory, where every job reads it, whichever
launcher runs the job and on whichever machine: a job's directory and TensorBoard run are named
by the swept keys only (`activation=relu,depth=6`), and its hyper-parameters are typed the same
way in every job (dltips.observe.hparams).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from omegaconf import OmegaConf

FILE = "sweep.yaml"
# An override's value may hold a path (data.cache_dir=/data/mnist): in a directory name its slashes
# would nest the run's directory; the division slash reads the same and is one name.
SLASH = "\u2215"
# Keys that draw another sample of the same setting: runs that differ only in them are the seeds
# of one setting (data.split_seed follows seed unless it is set).
SEEDS = ("seed", "data.split_seed")


def one_name(text: str) -> str:
    """`text` as a single path component."""
    return text.replace("/", SLASH)


def parse(overrides: list[str]) -> list:
    """Hydra's parse of each override (its Override objects: shared, not to be changed). The
    grammar takes about 4 ms an override, and a sweep's jobs repeat the same few strings
    (`optimizer.lr=0.1` in a quarter of them): each string is parsed once per process."""
    return [parse_one(o) for o in overrides]


@lru_cache(maxsize=65536)
def parse_one(override: str):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([override])[0]


@dataclass
class Plan:
    # key -> the values it takes, in sweep order; a continuous search range (Optuna's
    # interval) -> [low, high] in `intervals` instead.
    swept: dict[str, list] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    # Job names carry the job number: sweepers other than Hydra's basic one (Optuna) can
    # propose the same point twice, and their floats need rounding to stay short.
    numbered: bool = False
    # Keys the sweep sets to other values than the defaults (an experiment preset's depth, lr,
    # optimizer, …): with the swept keys, what defines the experiment (the HPARAMS columns).
    defining: list[str] = field(default_factory=list)

    @staticmethod
    def of(arguments: list[str], sweeper: dict, excluded: list[str], numbered: bool) -> "Plan":
        """The plan of a sweep launched with these command-line `arguments` and sweeper
        `params` (key -> sweep string); keys in `excluded` (and hydra's own) never count."""
        plan, final = Plan(numbered=numbered), {}
        for o in parse([f"{k}={v}" for k, v in sweeper.items()] + list(arguments)):
            final[o.key_or_group] = o  # a later override of a key replaces an earlier one
        for key, o in final.items():
            if key.startswith("hydra") or key in excluded or not o.is_sweep_override():
                continue
            if o.is_discrete_sweep():
                values = list(dict.fromkeys(o.sweep_iterator()))
                if len(values) > 1:
                    plan.swept[key] = values
            else:
                plan.intervals[key] = [o.value().start, o.value().end]
        return plan

    @property
    def keys(self) -> list[str]:
        return sorted([*self.swept, *self.intervals])

    @property
    def setting_keys(self) -> list[str]:
        """The swept keys that make a setting: all but the seeds."""
        return [key for key in self.keys if key not in SEEDS]

    def setting(self, overrides: list[str]) -> str:
        """A job's setting, named by the swept keys but the seeds: `activation=relu,lr=0.1` (""
        for a sweep over seeds alone)."""
        return named(self.setting_keys, overrides)

    def is_float(self, key: str) -> bool:
        """Whether the key's values are written as numbers (some value or a bound is a float)."""
        values = self.swept.get(key, self.intervals.get(key, []))
        return any(isinstance(v, float) for v in values)

    def save(self, sweep_dir: Path) -> None:
        """Before any job (Hydra's on_multirun_start: before the launcher is even built)."""
        if not sweep_dir.exists():
            CREATED.append(sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(asdict(self)), sweep_dir / FILE)

    @staticmethod
    def load(sweep_dir: Path | str) -> "Plan | None":
        """The sweep's plan, read once per version of its file (every job of a stacked sweep
        names its directory and types its hyper-parameters by it). Shared: not to be changed."""
        path = Path(sweep_dir) / FILE
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in LOADED:
            LOADED[key] = Plan(**OmegaConf.to_container(OmegaConf.load(path)))
        return LOADED[key]


LOADED: dict[tuple, Plan] = {}
# Sweep directories this process created to save a plan in.
CREATED: list[Path] = []


def discard_unlaunched() -> None:
    """A sweep refused before it launched anything (a bad launcher key): remove the sweep
    directories this process made for their plan alone, as a refused run leaves no directory."""
    for sweep_dir in CREATED:
        if sweep_dir.is_dir() and [p.name for p in sweep_dir.iterdir()] == [FILE]:
            (sweep_dir / FILE).unlink()
            sweep_dir.rmdir()


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's shortest dotted suffix that no other key ends with: model.activation and
    model.depth -> activation, depth; model.dropout and data.augment.dropout keep a prefix."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            short = ".".join(parts[-n:])
            if not any(other != key and (other == short or other.endswith("." + short)) for other in keys):
                break
        out[key] = short
    return out


def value_text(value: str) -> str:
    """A value as a name shows it: floats to 4 significant digits, no path separators."""
    try:
        number = float(value)
    except ValueError:
        return value.replace("/", "_")
    if "." in value and math.isfinite(number) and len(value) > 7:
        return f"{number:.4g}"
    return value


def named(keys: list[str], overrides: list[str]) -> str:
    """`short=value` of these keys, in their order, as one path component."""
    values = {o.key_or_group: o.get_value_element_as_str() for o in parse(overrides)}
    short = short_keys(keys)
    return one_name(",".join(f"{short[k]}={value_text(values[k])}" for k in keys if k in values))


def job_name(sweep_dir: str, overrides: list[str], num: int, fallback: str) -> str:
    """A job's sub-directory: the swept keys and this job's values, `activation=relu,depth=6`.
    Without a plan (a sweep of one point, or a sweep started outside dltips-train) the name is
    `fallback` (Hydra's override_dirname), or the job number when that is empty."""
    plan = Plan.load(sweep_dir)
    if plan is None or not plan.keys:
        return one_name(fallback) or str(num)
    name = named(plan.keys, overrides)
    return f"{num:03d}_{name}" if plan.numbered else name or one_name(fallback) or str(num)
