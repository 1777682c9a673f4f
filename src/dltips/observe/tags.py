"""TensorBoard tag names, in one place.

TensorBoard's TIME SERIES tab groups cards by the part of a tag before its first "/", orders the
groups in natural sort order ("/" and digits first, then by character code) and opens only the
first two. The training and validation curves are `train/*` and `val/*`; every other tag starts
with "~", which sorts after every letter, so the curves are what a run opens on and the
bookkeeping, end-of-run numbers and diagnostics are listed, collapsed, below them.

metrics.json keeps the plain names (`test/acc`, `best_epoch`); the HPARAMS table shows those
names for the tags below (dltips.observe.hparams).
"""

from __future__ import annotations

# The curves, measured every epoch in eval mode over the whole split (train/loss: the mini-batch
# loss every trainer.log_every_n_steps steps).
TRAIN_LOSS = "train/loss"
TRAIN_LOSS_EPOCH = "train/loss_epoch"

# Every epoch: where the run is.
EPOCH = "~run/epoch"
LR = "~run/lr"

# Once, at the end of the run: metrics.json key -> tag.
END = {
    "test/loss": "~end/test/loss",
    "test/acc": "~end/test/acc",
    "best_epoch": "~end/best_epoch",
    "stop_epoch": "~end/stop_epoch",
}

# Diagnostics, per layer l = 1 (next to the input) … L (the output layer): per_layer(GRADIENTS, l).
GRADIENTS = "~gradients"  # ‖∂C/∂W^l‖, and its log10 as log10_layer_l
DELTA = "~delta"  # ‖δ^l‖ = ‖∂C/∂b^l‖, and its log10 as log10_layer_l
WEIGHTS = "~weights"  # moved_layer_l = ‖W − W₀‖/‖W₀‖; layer_l: the weight histogram
ACTIVATIONS = "~activations"  # saturated_layer_l, dead_layer_l, idle_pieces_layer_l
OPTIM = "~optim"  # step_size_layer_l: the optimizer's mean effective step
GRADIENT_FLOW = "~gradient_flow"  # images: the lecture's gradient-flow figure over training
SUBNETWORKS = "~subnetworks"  # dropout's sampled sub-networks averaged: ~subnetworks/dropout/<mean>/<metric>, step N


def old_name(tag: str) -> str:
    """What runs written before the "~" groups called a tag (readers accept both)."""
    plain = {EPOCH: "epoch", LR: "lr", **{t: name for name, t in END.items()}}
    return plain.get(tag, tag.removeprefix("~"))


def per_layer(family: str, l: int | str, what: str = "layer") -> str:
    """The tag of layer l in a diagnostics family: per_layer(GRADIENTS, 3) == "~gradients/layer_3"."""
    return f"{family}/{what}_{l}"
