"""Steps of the lecture's MLPs with 1 and with 2 torch threads, side by side: the measurement
behind trainer.threads=auto (dltips.engine.threads).

    uv run python scripts/bench_threads.py [--threads 1 2 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

# (inputs, width, hidden layers, batch): the digits MLP, a deep sigmoid-sized net, MNIST-shaped ones.
SIZES = [(64, 128, 2, 32), (64, 64, 10, 32), (784, 512, 2, 128), (784, 1024, 3, 256)]


def mlp(inputs: int, width: int, depth: int) -> nn.Sequential:
    layers, features = [], inputs
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, 10))


def seconds_per_step(model: nn.Module, inputs: int, batch: int, steps: int = 150) -> float:
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=0.01), nn.CrossEntropyLoss()
    x, y = torch.randn(2048, inputs), torch.randint(0, 10, (2048,))
    for i in range(steps + 20):  # the first 20 warm up
        if i == 20:
            started = time.perf_counter()
        idx = torch.randint(0, 2048, (batch,))
        optimizer.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| network | parameters | batch | " + " | ".join(f"{t} thread(s), ms/step" for t in args.threads) + " |")
    print("|---|---:|---:|" + "---:|" * len(args.threads))
    for inputs, width, depth, batch in SIZES:
        model = mlp(inputs, width, depth)
        best = {t: float("inf") for t in args.threads}
        for _ in range(args.repeats):  # interleaved, so a busy moment hits every thread count
            for t in args.threads:
                torch.set_num_threads(t)
                best[t] = min(best[t], seconds_per_step(model, inputs, batch))
        name = f"{inputs}-{width}×{depth}-10"
        cells = " | ".join(f"{best[t] * 1e3:.2f}" for t in args.threads)
        print(f"| {name} | {sum(p.numel() for p in model.parameters()):,} | {batch} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
