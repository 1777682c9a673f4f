"""Configs: composing them (resolvers, sweep plan) and checking their values (validate).

Kept free of torch so that `dltips-train --help`, `--cfg` and `--info` answer without it.
"""
