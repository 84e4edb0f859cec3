"""Does the reset gate drop at a context break? A hypothesis the articles state without evidence.

On test tweets the text model reads each tweet twice: as it is, and with everything from a
position p (20 characters in or later) replaced — by a span of random characters, or by the
beginning of another, unrelated tweet. At the first 5 steps after p, the mean reset gate (over
units) of the altered tweet is set against the same steps of the original: a paired difference
per tweet. Reported: the mean difference, its 95 % confidence interval (t distribution over
tweets), and the paired effect size d = mean / standard deviation. The prediction is a drop
(difference < 0); either outcome is reported as measured.
"""

from __future__ import annotations

import math

import torch

from grukit.experiments.language import mean_gate, text_model
from grukit.experiments.report import Report, verdict
from grukit.tasks.text import encode_batch

SPAN = 5  # steps after the break that are averaged
TWEETS = 400  # test tweets, at most


def paired(differences: torch.Tensor) -> dict:
    from scipy import stats

    if not torch.isfinite(differences).all():
        raise ValueError("a paired difference is not finite: a compared step lies outside its sequence")
    n = len(differences)
    mean, sd = float(differences.mean()), float(differences.std())
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "ci95": [mean - half, mean + half], "effect_size": mean / sd if sd > 0 else 0.0}


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    task, model = text_model(quick=quick, seed=seed, runs_dir=work_dir.parent)
    vocabulary = task.vocabulary(seed=seed)
    tweets = [t for t in task.split_texts(seed=seed)[2] if len(t) >= 50][:TWEETS]
    generator = torch.Generator().manual_seed(seed)
    letters = [c for c in vocabulary.characters[2:] if c.isprintable()]
    originals, random_spans, spliced, breaks = [], [], [], []
    for i, tweet in enumerate(tweets):
        read = min(len(tweet), task.max_chars)  # the model reads at most max_chars characters
        p = int(torch.randint(20, read - 25, (1,), generator=generator))
        noise = "".join(letters[int(j)] for j in torch.randint(len(letters), (len(tweet) - p,), generator=generator))
        other = tweets[(i + 1) % len(tweets)]
        originals.append(tweet)  # the three versions share the first p characters
        random_spans.append(tweet[:p] + noise)
        spliced.append((tweet[:p] + other)[: len(tweet)])
        breaks.append(p)
    def reset_after_break(texts):
        batch = encode_batch(texts, vocabulary, max_chars=task.max_chars)
        gate = mean_gate(model, batch.inputs, batch.lengths, "reset")  # (N, T); step t reads character t − 1
        # the first altered character c_p is read at step p + 1
        return torch.stack([gate[i, p + 1 : p + 1 + SPAN].mean() for i, p in enumerate(breaks)]), gate
    base, base_gate = reset_after_break(originals)
    results, gates = {}, {}
    for name, texts in (("random characters", random_spans), ("unrelated tweet", spliced)):
        altered, gates[name] = reset_after_break(texts)
        results[name] = paired(altered - base)
    drop = results["random characters"]["ci95"][1] < 0
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    window = range(-10, 20)
    for name, gate in (("original", base_gate), *gates.items()):
        curve = torch.stack([gate[i, p + 1 + k] if 0 <= p + 1 + k < gate.shape[1] else torch.tensor(float("nan"))
                             for i, p in enumerate(breaks) for k in window]).reshape(len(breaks), len(window))
        left.plot(list(window), curve.nanmean(0), label=name)
    left.axvline(0, color="grey", linewidth=0.8)
    left.set_xlabel("steps from the break")
    left.set_ylabel("mean reset gate")
    left.legend(fontsize=8)
    names = list(results)
    means = [results[n]["mean"] for n in names]
    errors = [[m - results[n]["ci95"][0] for n, m in zip(names, means, strict=True)],
              [results[n]["ci95"][1] - m for n, m in zip(names, means, strict=True)]]
    right.errorbar(range(len(names)), means, yerr=errors, fmt="o", capsize=4)
    right.axhline(0, color="grey", linewidth=0.8)
    right.set_xticks(range(len(names)), labels=names)
    right.set_ylabel(f"reset change, first {SPAN} steps (95 % CI)")
    figure.tight_layout()
    report = Report(
        name="reset",
        claim="the reset gate drops when the context breaks, shutting out a past that no longer helps",
        criterion=f"the mean reset gate over the first {SPAN} steps after a random-character span begins is lower "
                  "than at the same steps of the original tweet: the 95 % CI of the paired difference below 0",
        measured="; ".join(f"{name}: {r['mean']:+.4f} (95 % CI {r['ci95'][0]:+.4f} … {r['ci95'][1]:+.4f}, "
                           f"d = {r['effect_size']:+.2f}, {r['n']} tweets)" for name, r in results.items()),
        verdict=verdict(drop),
        numbers={"differences": results, "span": SPAN},
    )
    return report, figure
