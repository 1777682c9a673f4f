"""The YAML files of a run (config.yaml, .hydra/hydra.yaml, overrides.yaml), written byte for
byte as OmegaConf.to_yaml writes them and read as OmegaConf.load reads them. Every job of a
sweep writes three and the sweep's end (and dltips-compare) reads them back: in pure Python that
is about 25 ms a file each way, a minute of a 1,024-point sweep. Reading goes through libyaml;
writing through PyYAML's own emitter (libyaml folds long strings differently), entry by entry,
each entry's text kept for the next job whose value is the same: the jobs of a sweep differ in a
few entries (hydra.job, hydra.runtime, the swept keys)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dltips.config.keys import flatten

# libyaml where PyYAML was built with it
BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Strings YAML 1.1 reads as booleans: written quoted, as OmegaConf writes them.
YAML_BOOLS = frozenset(
    f(word)
    for pair in ("y n", "yes no", "true false", "on off")
    for word in pair.split()
    for f in (str, str.title, str.upper)
)


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


class Dumper(yaml.Dumper):
    """YAML as OmegaConf writes it: a string that would read back as a bool or a number is quoted."""


def represent_str(dumper: yaml.Dumper, data: str) -> yaml.ScalarNode:
    quoted = data in YAML_BOOLS or is_number(data)
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'" if quoted else None)


def is_number(text: str) -> bool:
    try:
        float(text)  # int() reads nothing float() does not
    except ValueError:
        return False
    return True


Dumper.add_representer(str, represent_str)


def to_yaml(cfg) -> str:
    """OmegaConf.to_yaml(cfg) (`cfg`: a config, or a dict of config nodes, written as the config
    holding them alone): interpolations kept as written, keys in their order. A block
    mapping's text is its entries' texts one after another, so each entry down to DEPTH levels
    is dumped on its own, at its own depth (the emitter folds long strings by column), and kept:
    a sweep's jobs differ in a few leaves (hydra.job.num, the swept values). tests/test_configs.py
    holds the result to OmegaConf's, byte for byte."""
    if isinstance(cfg, dict):  # {key: node}: as the config holding these nodes alone
        container = {k: OmegaConf.to_container(v, resolve=False, enum_to_str=True) for k, v in cfg.items()}
    else:
        container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    if not isinstance(container, dict) or not container:
        return dump(container)
    if len(DUMPED) > 16384:  # a long process with many different configs does not grow without end
        DUMPED.clear()
    return "".join(entries((), container))


# How deep a mapping is split into entries kept apart (hydra.runtime.choices is at depth 3).
DEPTH = 3


def entries(path: tuple[str, ...], mapping: dict) -> list[str]:
    """The texts of the mapping's entries inside the mappings `path`."""
    parts = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value and len(path) < DEPTH - 1:
            opening = entry(path, key, {})  # `key: {}`: its line, less the empty mapping
            if opening.count("\n") == 1 and opening.rstrip().endswith(": {}"):  # a plain one-line key
                parts.append(opening.rstrip()[: -len(" {}")] + "\n")
                parts += entries((*path, key), value)
                continue
        parts.append(entry(path, key, value))
    return parts


def entry(path: tuple[str, ...], key: str, value) -> str:
    """The text of `key: value` inside the mappings `path`, as the whole document has it."""
    if (type(value) is int and value != 0) or (type(value) is str and value != "x" and is_plain_word(value)):
        # Written as it is, at the end of the key's line: the key's text once, not a dump per value.
        return entry(path, key, 0 if type(value) is int else "x")[: -len("0\n")] + f"{value}\n"
    cached = (path, key, repr(value))  # repr tells 1 from 1.0 and "1" from 1, as the text must
    if cached not in DUMPED:
        wrapped = {key: value}
        for outer in reversed(path):
            wrapped = {outer: wrapped}
        text = dump(wrapped)
        DUMPED[cached] = text.split("\n", len(path))[-1]  # without the lines of the outer keys
    return DUMPED[cached]


# Text YAML writes as it is (a plain scalar) and reads back as that text: it starts with a letter,
# so it is no number, date or indicator; no space, so the emitter does not fold it; no ':' or '#'.
PLAIN_WORD = re.compile(r"[A-Za-z_/][A-Za-z0-9_./=,+-]*")
NOT_TEXT = YAML_BOOLS | {"null", "Null", "NULL"}  # read as a bool or None: written quoted


def is_plain_word(text: str) -> bool:
    return PLAIN_WORD.fullmatch(text) is not None and text not in NOT_TEXT


# (outer keys, key, repr of its value) -> the entry's YAML text.
DUMPED: dict[tuple, str] = {}


def dump(data) -> str:
    return yaml.dump(data, Dumper=Dumper, default_flow_style=False, allow_unicode=True, sort_keys=False)


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
