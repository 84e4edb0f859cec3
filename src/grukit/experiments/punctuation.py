"""Update-gate activity at spaces and punctuation against inside words.

On test tweets, the text model's mean update gate (over units) at each step is grouped by the
character read at that step: a space, a punctuation mark (. , ! ? ; : and quotes), or a letter
inside a word (a letter after a letter). Per tweet, the mean at boundaries (space or punctuation)
minus the mean inside words; reported with its 95 % confidence interval over tweets and the
paired effect size. The articles' picture: the state is rewritten (u spikes) at word and phrase
boundaries.
"""

from __future__ import annotations

import torch

from grukit.experiments.language import mean_gate, text_model
from grukit.experiments.report import Report, verdict
from grukit.experiments.reset import paired
from grukit.tasks.text import encode_batch

PUNCTUATION = set(".,!?;:\"'’“”")
TWEETS = 400


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    task, model = text_model(quick=quick, seed=seed, runs_dir=work_dir.parent)
    vocabulary = task.vocabulary(seed=seed)
    tweets = [t for t in task.split_texts(seed=seed)[2] if len(t) >= 40][:TWEETS]
    batch = encode_batch(tweets, vocabulary, max_chars=task.max_chars)
    update = mean_gate(model, batch.inputs, batch.lengths, "update")  # (N, T): step t reads text[t − 1]
    kinds = {"space": [], "punctuation": [], "inside word": []}
    differences = []
    for i, tweet in enumerate(tweets):
        text = tweet[: task.max_chars]
        groups = {k: [] for k in kinds}
        for t in range(1, len(text)):
            read, before = text[t - 1], text[t - 2] if t >= 2 else " "
            kind = ("space" if read == " " else "punctuation" if read in PUNCTUATION
                    else "inside word" if read.isalpha() and before.isalpha() else None)
            if kind:
                groups[kind].append(float(update[i, t]))
        for k in kinds:
            kinds[k] += groups[k]
        boundary = groups["space"] + groups["punctuation"]
        if boundary and groups["inside word"]:
            differences.append(sum(boundary) / len(boundary) - sum(groups["inside word"]) / len(groups["inside word"]))
    result = paired(torch.tensor(differences))
    means = {k: sum(v) / len(v) for k, v in kinds.items() if v}
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.violinplot([kinds[k] for k in means], showmedians=True)
    ax.set_xticks(range(1, len(means) + 1), labels=list(means))
    ax.set_ylabel("mean update gate at the step")
    ax.set_title("what the update gate does at word boundaries")
    report = Report(
        name="punctuation",
        claim="the update gate spikes at spaces and punctuation, where the state is rewritten",
        criterion="the mean update gate at spaces and punctuation above that inside words: the 95 % CI of the "
                  "per-tweet difference above 0",
        measured=f"difference {result['mean']:+.4f} (95 % CI {result['ci95'][0]:+.4f} … {result['ci95'][1]:+.4f}, "
                 f"d = {result['effect_size']:+.2f}, {result['n']} tweets); means: "
                 + ", ".join(f"{k} {v:.3f}" for k, v in means.items()),
        verdict=verdict(result["ci95"][0] > 0),
        numbers={"difference": result, "means": means},
    )
    return report, figure
