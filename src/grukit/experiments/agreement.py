"""Subject–verb agreement: a unidirectional against a bidirectional GRU, by number of attractors.

The `agreement` task's sentences put 0–4 attractor nouns of the opposite number between the
subject and its verb, and sometimes a pronoun after the verb that refers back to the subject.
Both GRUs (32 units per direction) train on the same sentences with the same budget; accuracy at
the verb is scored per attractor count. The articles' reason for bidirectional GRUs: the right
context (the pronoun) settles cases the left context cannot.
"""

from __future__ import annotations

import torch

from grukit.experiments.report import Report, verdict
from grukit.experiments.training import train
from grukit.tasks.agreement import MAX_ATTRACTORS, AgreementTask
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    task = AgreementTask(train_size=3_000 if quick else 20_000, validation_size=500, test_size=2_000)
    data = task.build(seed=seed)
    accuracy = {}
    for name, bidirectional in (("unidirectional", False), ("bidirectional", True)):
        torch.manual_seed(seed)
        result, _ = train(task, data, ModelConfig(cell="gru", hidden_size=32, bidirectional=bidirectional),
                          TrainConfig(max_epochs=8 if quick else 30, batch_size=64, seed=seed), work_dir / name)
        accuracy[name] = {k: result.test[f"accuracy_{k}_attractors"] for k in range(MAX_ATTRACTORS + 1)}
        accuracy[name]["all"] = result.test["accuracy"]
    baselines = task.baselines(data)
    gap = accuracy["bidirectional"]["all"] - accuracy["unidirectional"]["all"]
    figure, ax = plt.subplots(figsize=(6, 3.8))
    counts = list(range(MAX_ATTRACTORS + 1))
    for name in accuracy:
        ax.plot(counts, [accuracy[name][k] for k in counts], "o-", label=f"{name} GRU")
    ax.axhline(baselines["majority class"], color="grey", linestyle="--", linewidth=0.8, label="majority class")
    ax.set_xlabel("attractors between subject and verb")
    ax.set_ylabel("test accuracy at the verb")
    ax.set_xticks(counts)
    ax.legend()
    report = Report(
        name="agreement",
        claim="a bidirectional GRU, reading the sentence both ways, agrees subject and verb better than a "
              "unidirectional one when the left context leaves the number open",
        criterion="the bidirectional GRU's test accuracy above the unidirectional one's by at least 2 points",
        measured=", ".join(f"{name} {100 * a['all']:.1f} %" for name, a in accuracy.items())
                 + " overall; by attractor count 0–4: "
                 + "; ".join(f"{name} " + " ".join(f"{100 * a[k]:.0f}" for k in counts) for name, a in accuracy.items())
                 + f"; nearest-noun heuristic {100 * baselines['nearest noun']:.1f} %",
        verdict=verdict(gap >= 0.02),
        numbers={"accuracy": accuracy, "baselines": baselines},
    )
    return report, figure
