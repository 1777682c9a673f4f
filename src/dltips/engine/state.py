"""A network's checkpoint: what member k goes on from, as a run alone saves it, and loading the
members' checkpoints back into the networks being trained (dltips.run.checkpoint writes them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dltips.engine.members import Member, Networks
from dltips.run import checkpoint
from dltips.run.resume import Position, check_same_run, trained_with


@dataclass
class Point:
    """What the checkpoints of every member at one point of training share, read once for all:
    the networks' state (any member's, Networks.states) and the process's random streams."""

    states: Callable[[int], dict]
    rng: dict


def point_of(ms: Networks, order: torch.Tensor | None) -> Point:
    return Point(ms.states(order), checkpoint.process_rng_state())


def checkpoint_of(ms: Networks, k: int, at: Position, point: Point | None = None) -> dict:
    """Everything member k goes on from, as a run alone holds it (a stacked member's slice of
    the weights and optimizer state, its dropout generator as torch's default one, its row of
    the batch order). `at.epoch` is the last epoch finished, or the one interrupted when
    `at.order` is set; `point`: what the members' checkpoints at `at` share (read now if not
    given). The tensors training goes on changing are copied, the rest is fresh or never
    changed in place: the copy is all the checkpoint's writer thread needs."""
    point = point_of(ms, at.order) if point is None else point
    m = ms.members[k]
    if m.recorded is None:
        m.recorded = trained_with(m.cfg)
    return {
        "epoch": at.epoch,
        "step": at.step,
        "batch": at.batch,
        "config": m.recorded,
        **checkpoint.detached(point.states(k)),
        "early_stopping": m.stopper.state_dict(),
        "initial_weights": m.flow.initial if m.flow else [],
        "gradient_flow": m.flow.history() if m.flow else None,
        "rng": rng_state(m, ms.device, point.rng),
    }


def restore(ms: Networks, resumed: list[int]) -> Position:
    """Load the last.pt of each resumed member into its part of the networks; returns where
    the running ones go on (the same place for all: they were saved together)."""
    states, at = {}, {}
    for k in resumed:
        m = ms.members[k]
        path = m.out / "last.pt"
        state = states[k] = checkpoint.load(path)
        check_same_run(m.cfg, state, path)
        m.stopper.load_state_dict(state["early_stopping"])
        if m.flow and state["initial_weights"]:
            m.flow.initial = [w.to(ms.device) for w in state["initial_weights"]]
        if m.flow and state.get("gradient_flow"):  # checkpoints written before it was kept have none
            m.flow.load_history(*state["gradient_flow"])
        set_rng_state(m, ms.device, state["rng"])
        if not m.done:
            at[k] = (state["epoch"], state["step"], state["batch"])
    if len(set(at.values())) > 1:
        where = ", ".join(f"{ms.members[k].out} at epoch {e} step {s}" for k, (e, s, _) in at.items())
        raise checkpoint.CheckpointError(
            f"the members' last.pt files were written at different points ({where}); resume each alone"
        )
    source = next(iter(at), None)  # a running member: its counters (Adam's step) are the stack's
    try:
        order = ms.load_state(states, source if source is not None else resumed[0])
    except (RuntimeError, ValueError, KeyError) as err:
        path = ms.members[source if source is not None else resumed[0]].out / "last.pt"
        first = str(err).strip().splitlines()[0]
        raise checkpoint.CheckpointError(f"{path} does not fit the run's config.yaml: {first}") from err
    if source is None:
        return Position()
    first = states[source]
    if order is not None:  # interrupted inside this epoch
        return Position(first["epoch"], first["step"], order.to(ms.device), first["batch"])
    return Position(first["epoch"] + 1, first["step"])


def rng_state(m: Member, device: torch.device, process: dict | None = None) -> dict:
    """Every RNG state member m goes on from (`process`: the process's, if read already), a
    stacked member's dropout generator saved as torch's default one."""
    rng = checkpoint.rng_state(m.shuffle, process)
    if m.dropout_rng is not None:
        if device.type == "cuda":
            rng["cuda"] = rng["cuda"].clone()  # the process's, shared with the other members, stays
            rng["cuda"][device.index or torch.cuda.current_device()] = m.dropout_rng.get_state()
        else:
            rng["torch"] = m.dropout_rng.get_state()
    return rng


def set_rng_state(m: Member, device: torch.device, rng: dict) -> None:
    checkpoint.set_rng_state(rng, m.shuffle)
    if m.dropout_rng is not None:
        m.dropout_rng.set_state(rng["cuda"][device.index or 0] if device.type == "cuda" else rng["torch"])
