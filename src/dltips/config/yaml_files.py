"""The YAML files a run wrote (config.yaml, .hydra/overrides.yaml), read as OmegaConf.load reads
them but at libyaml's speed. A sweep's end and dltips-compare read every run's: OmegaConf.load,
pure-Python YAML and then a config tree, takes about 20 ms a file, 40 s at the end of a sweep
of 1,024 points; this, about 1 ms."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dltips.config.keys import flatten

BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML was built with it


class Loader(BaseLoader):
    """YAML as OmegaConf reads it: `1e-3` is a float (YAML 1.1 wants a dot), a date stays text."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in BaseLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
        |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
# A value that is one reference to another key, as Hydra writes data.split_seed: ${seed}.
REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def load(path: Path):
    """The file's data: dicts, lists and plain values, before any interpolation."""
    with open(path, encoding="utf-8") as file:
        return yaml.load(file, Loader=Loader)  # noqa: S506 (a safe loader)


def load_flat(path: Path) -> dict[str, object]:
    """A config file as flat key -> value, its interpolations resolved as
    OmegaConf.to_container(resolve=True) resolves them (an `${hydra:...}` only Hydra can resolve:
    every value as written). A value that only refers to another key is looked up here; anything
    else goes through OmegaConf."""
    data = load(path)
    flat = flatten(data) if isinstance(data, dict) else {}
    refs = {k: REFERENCE.match(v) for k, v in flat.items() if isinstance(v, str) and "${" in v}
    in_lists = any("${" in repr(v) for v in flat.values() if isinstance(v, list))
    if not in_lists and all(m and m[1] in flat and m[1] not in refs for m in refs.values()):
        return flat | {k: flat[m[1]] for k, m in refs.items()}
    cfg = OmegaConf.create(data)
    try:
        return flatten(OmegaConf.to_container(cfg, resolve=True))
    except OmegaConfBaseException:
        return flatten(OmegaConf.to_container(cfg, resolve=False))
