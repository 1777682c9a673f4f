"""dltips-compare --diff RUN_A RUN_B: what differs between two runs, read from what they wrote:
the config keys (config.yaml) and, where both runs recorded one, their environment.json
(dltips.run.environment: git commit, library versions, CPU or GPU, threads, ...). Writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from dltips.observe.compare_groups import read_config
from dltips.observe.compare_tables import text
from dltips.run import environment

MISSING = "(missing)"


def shown(values: dict, key: str) -> str:
    return str(values[key]) if key in values else MISSING


def changed(a: dict, b: dict) -> list[tuple[str, str, str]]:
    """(key, value in a, value in b) for every key whose values differ, a key one side lacks too."""
    return [(k, shown(a, k), shown(b, k)) for k in sorted(a.keys() | b.keys()) if shown(a, k) != shown(b, k)]


def table(what: str, rows: list[tuple[str, str, str]]) -> str:
    if not rows:
        return f"{what}: no key differs"
    many = "keys differ" if len(rows) > 1 else "key differs"
    return f"{what}: {len(rows)} {many}\n" + text(["key", "A", "B"], [list(r) for r in rows])


def diff(a: Path, b: Path) -> str:
    """The report --diff prints. Raises FileNotFoundError for a run without config.yaml."""
    configs = []
    for run in (a, b):
        config = read_config(run)
        if config is None:
            raise FileNotFoundError(f"no config.yaml in {run}")
        configs.append(config)
    out = [f"A: {a}", f"B: {b}", "", table("config.yaml", changed(*configs)), ""]
    envs = [environment.read(run) for run in (a, b)]
    if None in envs:
        lacking = " and ".join(name for name, env in zip("AB", envs) if env is None)
        out.append(f"{environment.FILE}: none in {lacking} (a run from before it was recorded): not compared")
    else:
        out.append(table(environment.FILE, changed(*envs)))
    return "\n".join(out)
