"""The error a bad config value raises (no torch: the launchers and run-state modules use it)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad configuration value: reported in one line, before anything is trained or written."""
