"""Config keys as dotted paths: one flattening for every reader of a config (resume, stacking,
the HPARAMS columns, dltips-compare), and the keys that say where a run is rather than what
it trains. No torch here: dltips-compare reads configs without it."""

from __future__ import annotations

# Where a run writes and what it continues: the same run under any of their values.
WHERE = ("output_dir", "resume")


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"model": {"depth": 2}} -> {"model.depth": 2}; lists stay whole."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
