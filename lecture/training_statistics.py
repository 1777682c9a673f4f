"""Normalize the test data with the training statistics: the same trained networks scored on their
test inputs normalized with the training statistics, with statistics of their own, and not at all."""

from __future__ import annotations

import torch

from dltips.data.prepare import normalization
from dltips.observe.intervals import paired
from lecture.figures_practice import normalized_test_figure
from lecture.lab import Lab, Run, Section, fmt, fmt_paired, table
from lecture.trained import accuracy, held_out, load

NO_NUMBER = "— (the lecture's argument; no number)"
TABLES = ("wine", "breast_cancer")
BATCHES = (4, 16)  # rows per small test batch standardized with its own statistics
DRAWS = 20  # random partitions of the test set into such batches
TRAINING, RAW, WHOLE = "training statistics", "raw inputs", "own, whole test set"


def own_statistics(raw: torch.Tensor) -> torch.Tensor:
    """A batch standardized with its own per-feature mean and std, the library's formula for the
    training set (std over n − 1; a constant feature keeps its scale)."""
    shift, scale = normalization(raw, "standard")
    return (raw - shift) / scale


@torch.no_grad()
def own_batch_accuracy(model: torch.nn.Module, raw: torch.Tensor, y: torch.Tensor, rows: int, seed: int = 0) -> float:
    """Accuracy when the test inputs arrive `rows` at a time, each batch standardized with its own
    statistics: DRAWS random partitions (seeded), the len(y) mod rows inputs left over by each left out."""
    g = torch.Generator().manual_seed(seed)
    n = len(y) // rows * rows
    correct = 0
    for _ in range(DRAWS):
        for idx in torch.randperm(len(y), generator=g)[:n].view(-1, rows):
            correct += int((model(own_statistics(raw[idx])).argmax(dim=1) == y[idx]).sum())
    return correct / (DRAWS * n)


def normalized_ways(run: Run) -> dict[str, float]:
    """Test accuracy of one trained network with its test inputs normalized each way."""
    model, splits = load(run)
    x, y = splits.test
    raw = x * splits.scale + splits.shift  # the split is stored normalized with the training statistics
    own = {f"own, batches of {rows}": own_batch_accuracy(model, raw, y, rows) for rows in BATCHES}
    whole = accuracy(model, own_statistics(raw), y)
    return {TRAINING: accuracy(model, x, y), **own, WHOLE: whole, RAW: accuracy(model, raw, y)}


def normalize_test_data(lab: Lab) -> Section:
    runs = {
        data: lab.run(
            "test_normalization",
            data,
            ["experiment=test_normalization", f"data={data}", f"trainer.max_epochs={lab.epochs(30)}"],
        )
        for data in TABLES
    }
    scores = {data: [normalized_ways(r) for r in rs] for data, rs in runs.items()}
    acc = {data: {way: [s[way] for s in ss] for way in ss[0]} for data, ss in scores.items()}
    smallest = f"own, batches of {BATCHES[0]}"
    held, rows, headline = True, [], []
    for data, ways in acc.items():
        base = ways[TRAINING]
        beats = {w: paired(base, ways[w]) for w in ways if w != TRAINING}
        # Beyond the noise above raw inputs and the smallest batches; nowhere below beyond the noise.
        held &= beats[RAW][1] > 0 and beats[smallest][1] > 0 and all(high >= 0 for _, _, high in beats.values())
        headline.append(
            f"{data}: training statistics − raw {fmt_paired(base, ways[RAW])}, − own statistics of "
            f"{BATCHES[0]}-row batches {fmt_paired(base, ways[smallest])}"
        )
        rows += [[data, w, fmt(v), fmt_paired(base, v) if w != TRAINING else ""] for w, v in ways.items()]
    sizes = {data: held_out(rs[0])[1] for data, rs in runs.items()}
    return Section(
        title="Normalize the test data with the training statistics",
        claim="The test inputs are normalized the same way as the training inputs, x_i ← (x_i − m_i)/σ_i with the "
        "training set's m_i and σ_i: raw test inputs, or test inputs standardized with statistics of their own, "
        "reach the network on another scale than the one it was trained on.",
        rule=f"networks trained on standardized inputs (2×64 ReLU, SGD, {lab.epochs(30)} epochs), scored on their test "
        f"set normalized with the training statistics, with the own statistics of test batches of "
        f"{' and '.join(map(str, BATCHES))} rows ({DRAWS} random partitions) or of the whole test set, and not at all; "
        f"held if on both tables the training statistics beat the raw inputs and the {BATCHES[0]}-row batches' own "
        "statistics seed by seed (95% intervals of the differences above 0) and no other way beats them beyond the "
        "noise (no interval below 0). It would have failed had either interval above reached 0, or one way's "
        "interval lain below 0.",
        held=held,
        headline="; ".join(headline),
        table=table(["data", "test inputs normalized with", "test acc", "training statistics − this"], rows),
        figure=lab.figure(normalized_test_figure(acc, sizes), "test_normalization.png"),
        data=f"wine ({sizes['wine']} test rows), breast_cancer ({sizes['breast_cancer']} test rows): small tables",
        held_out=("test", min(sizes.values())),
        published=NO_NUMBER,
        notes=[
            f"Own statistics: each batch's per-feature mean and std (over n − 1), the library's formula for the "
            f"training set; a partition leaves the test set's n mod {BATCHES[0]} (or {BATCHES[1]}) rows out, a "
            f"different few in each of the {DRAWS} partitions. A model deployed on a few inputs at a time can only "
            "compute such statistics; the training statistics it can keep.",
        ],
    )
