"""Dropout as an ensemble: weight scaling vs averaging sampled sub-networks vs real ensembles."""
from __future__ import annotations

import json

from omegaconf import OmegaConf

from dltips import checkpoint
from dltips.ensemble import explicit_ensemble_curve
from dltips.lecture.figures import dropout_figure
from dltips.lecture.lab import Lab, Run, Section, table


def load_members(runs: list[Run]):
    """The trained networks of `runs` and their shared test split (the runs fix data.split_seed)."""
    from dltips.train import setup

    models, test = [], None
    for run in runs:
        s = setup(OmegaConf.load(run.path / "config.yaml"))
        s.model.load_state_dict(checkpoint.load(run.path / "last.pt")["model"])
        models.append(s.model)
        test = s.splits.test
    return models, test


def dropout_ensemble(lab: Lab) -> list[Section]:
    acts, members = ("relu", "maxout", "tanh"), 3 if lab.quick else 5
    base = ["experiment=dropout_ensemble", "data.split_seed=0", f"trainer.max_epochs={lab.epochs(40)}"]
    sampled, explicit = {}, {}
    for a in acts:
        (run,) = lab.run("dropout_ensemble", f"{a},dropout", [*base, f"model.activation={a}"], seeds=1)
        sampled[a] = json.loads((run.path / "metrics.json").read_text())["ensemble"]
        plain = lab.run(
            "dropout_ensemble", f"{a},no_dropout",
            [*base, f"model.activation={a}", "model.dropout=0", "model.input_dropout=0", "ensemble_eval=false"],
            seeds=members,
        )
        models, (x, y) = load_members(plain)
        explicit[a] = explicit_ensemble_curve(models, x, y)

    def at(a: str, n: int) -> dict:
        return next(row for row in sampled[a] if row["n"] == n)

    kl_falls = all(at(a, 100)["arithmetic/kl"] < at(a, 1)["arithmetic/kl"] for a in acts)
    match_50 = {a: at(a, 50)["arithmetic/acc"] - at(a, 50)["weight_scaling/acc"] for a in acts}
    ws_as_good = {a: at(a, 100)["weight_scaling/acc"] - at(a, 100)["arithmetic/acc"] for a in acts}
    held = kl_falls and all(abs(d) <= 0.01 for d in match_50.values()) and all(d >= -0.005 for d in ws_as_good.values())
    ns = [row["n"] for row in sampled["relu"]]
    rows = [
        [a, f"{at(a, 1)['weight_scaling/acc']:.4f}", *[f"{at(a, n)['arithmetic/acc']:.4f}" for n in ns],
         f"{explicit[a][0]['arithmetic/acc']:.4f} → {explicit[a][-1]['arithmetic/acc']:.4f}"]
        for a in acts
    ]
    figure = lab.figure(dropout_figure(sampled, explicit), "dropout_ensemble.png")
    kl100 = {a: at(a, 100)["arithmetic/kl"] for a in acts}
    return [
        Section(
            title="Dropout is an ensemble; weight scaling approximates averaging it",
            claim="Training with dropout trains 2^N weight-sharing sub-networks; multiplying the weights by (1 − p) at "
            "test time approximates averaging them all. Averaging k sampled sub-networks matches weight scaling at "
            "about k = 50 (Srivastava et al.), and weight scaling is as good as sampling (Goodfellow et al.).",
            rule="held if, for relu, maxout and tanh, KL(mean of N ‖ weight scaling) falls from N = 1 to N = 100, "
            "the mean of 50 sub-networks is within 0.01 test accuracy of weight scaling, and weight scaling is "
            "no more than 0.005 below the mean of 100.",
            held=held,
            headline="acc(mean of 50) − acc(weight scaling): " + ", ".join(f"{a} {d:+.4f}" for a, d in match_50.items()),
            table=table(["activation", "weight scaling", *[f"N={n}" for n in ns], f"ensemble K=1→{members}"], rows),
            figure=figure,
            notes=[
                f"explicit ensembles of {members} networks trained without dropout: "
                + ", ".join(f"{a} {explicit[a][0]['arithmetic/acc']:.4f} → {explicit[a][-1]['arithmetic/acc']:.4f}" for a in acts),
                "one dropout network per activation (seed 0); the sampled sub-networks share one mask per network "
                "across the test set (dltips.ensemble.sample_probs).",
            ],
        ),
        Section(
            title="Weight scaling is a closer approximation for maxout than for tanh",
            claim="The KL divergence between the sampled-ensemble prediction and the weight-scaling prediction is "
            "smaller for maxout networks than for tanh networks (Goodfellow et al. 2013).",
            rule="held if KL(mean of 100 sub-networks ‖ weight scaling) is smaller for maxout than for tanh.",
            held=kl100["maxout"] < kl100["tanh"],
            headline=f"KL at N = 100: maxout {kl100['maxout']:.2e}, tanh {kl100['tanh']:.2e}, relu {kl100['relu']:.2e}",
            table=table(["activation", *[f"KL N={n}" for n in ns]], [[a, *[f"{at(a, n)['arithmetic/kl']:.2e}" for n in ns]] for a in acts]),
            figure=figure,
            notes=["a single network per activation: the KL comparison has no error bars"],
        ),
    ]
