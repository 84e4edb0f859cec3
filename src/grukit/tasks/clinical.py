"""ICU-like stays with informative missingness: predict in-hospital death from sparse, irregular records.

A documented simulator (no real ICU data ships in any package; see DATA.md). Each stay lasts
`hours` hours. Physiology is homeostatic — the premise of GRU-D's decay toward the mean (Che et
al. 2018) — so each patient's latent severity is an Ornstein–Uhlenbeck process around their own
level, with episodes that fade on a timescale of 1/θ hours:

    s(t) = b + e(t),  b ~ N(0, 0.5²),  de = −θ e dt + √(2θ) dW,  e(0) ~ N(0, 1),  θ = THETA
    died ~ Bernoulli(σ(−3 + 3 s̄)),  s̄ the mean of s over the stay (the burden of illness)

Six variables, vitals and labs, each a noisy linear read-out of the severity when it is measured:

    value_v = μ_v + β_v s(t) + σ_v ε      (VARIABLES holds μ, β, σ per variable)

Measurements are informative: in each hour variable v is measured with probability
1 − exp(−λ_v e^{κ s(t)}) (vitals λ = 0.3/h, labs λ = 0.05/h, κ = 0.8): sicker patients are measured
more often, as in real ICUs. A measurement's time is uniform in its hour, rounded to a quarter
hour; the variables measured at one time form one step (`IrregularDataset.from_long`).

Between measurements a value is best guessed as x̄ + (x_last − x̄) e^{−θδ}: GRU-D's input decay
with a learned rate. The outcome reads the whole stay, so the time between steps matters too.
(A first version had a non-reverting random-walk severity and death read from its final value;
there GRU-D, GRU-Mean and GRU-Forward tied at AUROC 0.933/0.932/0.933 — forward filling is the
right guess for a random walk.)

Model inputs (B, T, 3V) = [values, mask, gaps δ in hours] — the layout the GRU-D family of
`SequenceModel` reads (cell "grud", "gru-mean", "gru-forward", "gru-simple"); a plain GRU reads the
same tensor. Values are standardised with the training stays' observed mean and std, so the
empirical mean x̄ GRU-D imputes toward is 0; missing entries hold 0. Targets: died (class ids).
Metrics: AUROC and AUPRC of the predicted probability of death. Baselines: the number of
measurements in the stay as the score (what informative missingness alone tells) and the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from grukit.tasks.base import Split, Task, TaskData, check_positive, split_three, standard_metrics
from grukit.validation import InputError

#                 name          μ      β      σ     λ (per hour)
VARIABLES = (("heart_rate", 85.0, 12.0, 6.0, 0.3), ("systolic_bp", 120.0, -12.0, 8.0, 0.3),
             ("resp_rate", 18.0, 3.0, 2.0, 0.3), ("temperature", 37.0, 0.4, 0.3, 0.3),
             ("lactate", 1.5, 1.0, 0.4, 0.05), ("creatinine", 1.0, 0.4, 0.2, 0.05))
KAPPA = 0.8
THETA = 1 / 6  # per hour: an episode's deviation halves in about 4 hours


def simulate_stays(count: int, *, hours: int, seed: int):
    """Long-format observations (a pandas DataFrame: stay, hour, variable, value, died), by the
    model above."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    fade = math.exp(-THETA)  # the OU process sampled exactly at whole hours
    for stay in range(count):
        level = rng.normal(0.0, 0.5)
        episode = np.empty(hours + 1)
        episode[0] = rng.normal()
        for hour in range(hours):
            episode[hour + 1] = fade * episode[hour] + math.sqrt(1 - fade**2) * rng.normal()
        severity = level + episode
        died = int(rng.random() < 1 / (1 + math.exp(-(-3.0 + 3.0 * severity.mean()))))
        for hour in range(hours):
            for name, mu, beta, sigma, rate in VARIABLES:
                if rng.random() < 1 - math.exp(-rate * math.exp(KAPPA * severity[hour])):
                    when = round((hour + rng.random()) * 4) / 4
                    value = mu + beta * severity[hour] + sigma * rng.normal()
                    rows.append((stay, min(when, hours - 0.25), name, value, died))
        if not rows or rows[-1][0] != stay:  # a stay with no measurement at all gets one
            rows.append((stay, 0.0, VARIABLES[0][0], VARIABLES[0][1] + VARIABLES[0][2] * severity[0], died))
    frame = pd.DataFrame(rows, columns=["stay", "hour", "variable", "value", "died"])
    return frame.drop_duplicates(["stay", "hour", "variable"], keep="first").reset_index(drop=True)


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting ½
    (the Mann–Whitney statistic, from average ranks)."""
    scores, labels = scores.double(), labels.bool()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, tie_group, counts = scores.unique(return_inverse=True, return_counts=True)  # distinct values, sorted
    below = counts.cumsum(0) - counts  # entries ranked under each distinct value
    average_rank = below + (counts + 1) / 2  # a tie group shares the mean of its ranks
    ranks = average_rank.double()[tie_group]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auprc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Average precision: Σ_k (recall_k − recall_{k−1}) precision_k over the scores, highest first."""
    order = scores.double().argsort(descending=True)
    hits = labels.bool()[order].double()
    if hits.sum() == 0:
        return float("nan")
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision * hits).sum() / hits.sum())


class IrregularClassification(Task):
    """What the tasks built by `irregular_task_data` share (clinical, masked, observations): its
    metrics and baselines, and for `grukit compare` GRU-D against the paper's baselines and a GRU
    reading [values; mask; δ]."""

    compared_models: ClassVar[dict[str, str]] = {
        "GRU-D": "grud", "GRU-Mean": "gru-mean", "GRU-Forward": "gru-forward", "GRU-Simple": "gru-simple",
        "GRU reading x, m, δ": "gru"}

    def metrics(self, data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
        return irregular_metrics(data, predictions, split)

    def baselines(self, data: TaskData) -> dict[str, float]:
        return irregular_baselines(data)


@dataclass(frozen=True)
class ClinicalTask(IrregularClassification):
    stays: int = 3_000  # split 70/15/15 by stay
    hours: int = 48
    name: str = "clinical"

    def build(self, *, seed: int) -> TaskData:
        from grukit.data.irregular import IrregularDataset

        check_positive(stays=self.stays, hours=self.hours)
        frame = simulate_stays(self.stays, hours=self.hours, seed=seed)
        names = tuple(v[0] for v in VARIABLES)
        data = IrregularDataset.from_long(frame, id="stay", time="hour", variable="variable", value="value",
                                          label="died", variables=names)
        return irregular_task_data(data, name=self.name, seed=seed,
                                   description=f"simulated ICU stays ({self.hours} h, informative missingness): "
                                               "predict death")


MIN_SEQUENCES = 20  # for a 70/15/15 split with ≥ 3 sequences in validation and test


def irregular_task_data(data, *, name: str, seed: int, description: str, splits=None) -> TaskData:
    """TaskData from an `IrregularDataset` with one class label per sequence: split 70/15/15 by
    sequence (seeded) unless `splits` gives the (train, validation, test) indices; values
    standardised with the training sequences' observed mean and std (so GRU-D's x̄ is 0; missing
    entries 0); inputs (N, T, 3V) = [values; mask; gaps δ], δ in units of the training split's mean
    gap (`gap_scale`: unit-free decay rates and δ inputs); targets the label's class ids
    (classes: the sorted distinct labels). Metric: AUROC for two classes, accuracy for more."""
    if data.labels is None:
        raise InputError("the sequences need a label column to train a classifier on")
    if splits is not None:
        train, validation, test = (torch.as_tensor(part, dtype=torch.int64) for part in splits)
    elif len(data) < MIN_SEQUENCES:
        raise InputError(f"{len(data)} sequences are too few to split into training, validation and test "
                         f"(at least {MIN_SEQUENCES})")
    else:
        train, validation, test = split_three(len(data), seed=seed)
    batch = data.collate(range(len(data)))
    mean = data.empirical_mean(train).to(batch.values.dtype)
    observed = batch.mask[train].bool()
    values = batch.values[train]
    std = torch.stack([values[..., v][observed[..., v]].std() for v in range(len(data.variables))])
    std = torch.where(torch.isfinite(std) & (std > 0), std, torch.ones(()))
    scaled = torch.where(batch.mask.bool(), (batch.values - mean) / std, torch.zeros(()))
    gap_unit = gap_scale(batch.gaps[train], batch.lengths[train])
    inputs = torch.cat([scaled, batch.mask, batch.gaps / gap_unit], -1)  # (N, T, 3V)
    classes, labels = torch.unique(batch.labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError(f"the label has one value ({float(classes[0]):g}) in every sequence: nothing to learn")

    def split(index: torch.Tensor) -> Split:
        return Split(inputs[index], labels[index], batch.lengths[index])

    return TaskData(name, split(train), split(validation), split(test), input_size=3 * len(data.variables),
                    output_size=len(classes), loss="cross_entropy", readout="last",
                    metric="auroc" if len(classes) == 2 else "accuracy", lower_is_better=False,
                    description=description)


def gap_scale(gaps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean δ over the real (unpadded) steps of these sequences, after their first: the unit
    δ is given in to the models. Hours or seconds, 35 variables or 6, the typical gap is then 1 —
    what the decays' initialisation (`grud.DECAY_INIT`) and a plain GRU reading δ assume."""
    steps = torch.arange(gaps.shape[1])[None, :]
    real = (steps >= 1) & (steps < lengths[:, None])
    unit = gaps[real].mean() if real.any() else torch.ones(())
    return unit if torch.isfinite(unit) and unit > 0 else torch.ones((), dtype=gaps.dtype)


def irregular_metrics(data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
    """The standard metrics, plus AUROC and AUPRC of the second class's probability (two classes)."""
    metrics = standard_metrics(data.loss, predictions, split.targets)
    if data.output_size != 2:
        return metrics
    risk = predictions.softmax(-1)[:, 1]
    return metrics | {"auroc": auroc(risk, split.targets), "auprc": auprc(risk, split.targets)}


def irregular_baselines(data: TaskData) -> dict[str, float]:
    """Two classes: the number of measurements in the sequence as the score (what informative
    missingness alone tells) and the prior, each by AUROC. More classes: the majority class's accuracy."""
    test = data.test
    if data.output_size != 2:
        majority = torch.bincount(data.train.targets, minlength=data.output_size).argmax()
        return {"majority class": float((test.targets == majority).double().mean())}
    variables = data.input_size // 3
    measurements = test.inputs[..., variables : 2 * variables].sum((1, 2))
    prior = torch.full((len(test),), float(data.train.targets.float().mean()))
    return {"number of measurements": auroc(measurements, test.targets), "prior": auroc(prior, test.targets)}
