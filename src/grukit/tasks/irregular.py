"""Classification of irregular, partially observed sequences: what `clinical`, `masked` and
`observations` share.

`irregular_task_data` turns an `IrregularDataset` with one label per sequence into TaskData whose
inputs are [values; mask; gaps δ] — the layout the GRU-D family of `SequenceModel` reads, and a
plain recurrence can read too; `IrregularClassification` gives such tasks their metrics (AUROC and
AUPRC for two classes, scikit-learn's), their baselines, and the models `grukit compare` trains on
them.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from grukit.errors import InputError
from grukit.tasks.base import Split, Task, TaskData, split_three, standard_metrics


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of `scores` (N,) for binary `labels` (N,): P(score of a positive >
    score of a negative), a tie counting ½ — scikit-learn's `roc_auc_score`, in float64. NaN when
    one class is absent (scikit-learn raises there)."""
    from sklearn.metrics import roc_auc_score

    labels = labels.bool()
    if bool(labels.all()) or not bool(labels.any()):
        return float("nan")
    return float(roc_auc_score(labels.numpy(), scores.double().numpy()))


def auprc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Average precision of `scores` (N,) for binary `labels` (N,): Σ_k (R_k − R_{k−1}) P_k over the
    distinct scores, highest first, with P_k and R_k the precision and recall of "score ≥ the k-th"
    — scikit-learn's `average_precision_score`, in float64. Tied scores form one threshold, so the
    result does not depend on their order. NaN without positives."""
    from sklearn.metrics import average_precision_score

    labels = labels.bool()
    if not bool(labels.any()):
        return float("nan")
    return float(average_precision_score(labels.numpy(), scores.double().numpy()))


class IrregularClassification(Task):
    """What the tasks built by `irregular_task_data` share (clinical, masked, observations): its
    metrics and baselines, and for `grukit compare` GRU-D against the paper's baselines and a GRU
    reading [values; mask; δ]."""

    compared_models: ClassVar[dict[str, str]] = {
        "GRU-D": "grud", "GRU-Mean": "gru-mean", "GRU-Forward": "gru-forward", "GRU-Simple": "gru-simple",
        "GRU reading x, m, δ": "gru"}
    pypots_peer: ClassVar[bool] = True  # `grukit compare` adds PyPOTS' GRU-D classifier when installed

    def metrics(self, data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
        return irregular_metrics(data, predictions, split)

    def baselines(self, data: TaskData) -> dict[str, float]:
        return irregular_baselines(data)


MIN_SEQUENCES = 20  # for a 70/15/15 split with ≥ 3 sequences in validation and test


def irregular_task_data(data, *, name: str, seed: int, description: str, splits=None) -> TaskData:
    """TaskData from an `IrregularDataset` with one class label per sequence: split 70/15/15 by
    sequence (seeded) unless `splits` gives the (train, validation, test) indices; values
    standardised with the training sequences' observed mean and std (so GRU-D's x̄ is 0; missing
    entries 0); inputs (N, T, 3V) = [values; mask; gaps δ], δ in units of the training split's mean
    gap (`gap_scale`: unit-free decay rates and δ inputs); targets the label's class ids
    (classes: the sorted distinct labels). Metric: AUROC for two classes, accuracy for more.
    Raises InputError for data without labels, for a label with one value in every sequence,
    and (with no `splits`) for fewer than MIN_SEQUENCES sequences."""
    if data.labels is None:
        raise InputError("the sequences need a label column to train a classifier on")
    train, validation, test = sequence_splits(len(data), seed=seed, splits=splits)
    batch, inputs, _ = irregular_inputs(data, train)
    classes, labels = torch.unique(batch.labels, return_inverse=True)
    if len(classes) < 2:
        raise InputError(f"the label has one value ({float(classes[0]):g}) in every sequence: nothing to learn")

    def split(index: torch.Tensor) -> Split:
        return Split(inputs[index], labels[index], batch.lengths[index])

    return TaskData(name, split(train), split(validation), split(test), input_size=3 * len(data.variables),
                    output_size=len(classes), loss="cross_entropy", readout="last",
                    metric="auroc" if len(classes) == 2 else "accuracy", lower_is_better=False,
                    description=description)


def sequence_splits(count: int, *, seed: int, splits=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, validation, test) sequence indices: `splits` as given, else a seeded 70/15/15 split
    (`split_three`). Raises InputError for fewer than MIN_SEQUENCES sequences to split."""
    if splits is not None:
        return tuple(torch.as_tensor(part, dtype=torch.int64) for part in splits)
    if count < MIN_SEQUENCES:
        raise InputError(f"{count} sequences are too few to split into training, validation and test "
                         f"(at least {MIN_SEQUENCES})")
    return split_three(count, seed=seed)


def irregular_inputs(data, train: torch.Tensor):
    """(batch, inputs, (mean, std)): every sequence of `data` collated; the model inputs (N, T, 3V) =
    [values; mask; gaps δ] — values standardised with the `train` sequences' observed mean and std,
    each (V,) (GRU-D's x̄ is then 0; missing entries 0), δ in units of `gap_scale` of the training
    sequences; and that mean and std."""
    batch = data.collate(range(len(data)))
    mean, std = standardisation(data, batch, train)
    gap_unit = gap_scale(batch.gaps[train], batch.lengths[train])
    return batch, _model_inputs(batch, mean, std, gap_unit), (mean, std)


def inputs_like(data, reference, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (N, T, 3V), lengths (N,)) of `data`'s sequences prepared exactly as `irregular_inputs`
    prepares `reference`'s: standardised with the mean and std of reference's `train` sequences, δ
    in their gap unit (new sequences read by a model trained on `reference`). The variables must be
    reference's, in its order (`IrregularDataset.from_long(variables=…)`)."""
    if tuple(data.variables) != tuple(reference.variables):
        raise InputError(f"the sequences' variables {', '.join(data.variables)} are not the model's "
                         f"{', '.join(reference.variables)}")
    known = reference.collate(range(len(reference)))
    mean, std = standardisation(reference, known, train)
    batch = data.collate(range(len(data)))
    return _model_inputs(batch, mean, std, gap_scale(known.gaps[train], known.lengths[train])), batch.lengths


def _model_inputs(batch, mean, std, gap_unit) -> torch.Tensor:
    """[values standardised (0 where missing); mask; gaps δ / gap_unit], (N, T, 3V)."""
    scaled = torch.where(batch.mask.bool(), (batch.values - mean) / std, torch.zeros(()))
    return torch.cat([scaled, batch.mask, batch.gaps / gap_unit], -1)


def standardisation(data, batch, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std), each (V,): the training sequences' observed values' mean and standard deviation
    per variable (a variable with one distinct value there: std 1)."""
    mean = data.empirical_mean(train).to(batch.values.dtype)
    observed = batch.mask[train].bool()
    values = batch.values[train]
    std = torch.stack([values[..., v][observed[..., v]].std() for v in range(len(data.variables))])
    return mean, torch.where(torch.isfinite(std) & (std > 0), std, torch.ones(()))


def gap_scale(gaps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean δ over the real (unpadded) steps of these sequences, after their first: the unit
    δ is given in to the models. Hours or seconds, 35 variables or 6, the typical gap is then 1 —
    what the decays' initialisation (`grud.DECAY_INIT`) and a plain GRU reading δ assume."""
    steps = torch.arange(gaps.shape[1])[None, :]
    real = (steps >= 1) & (steps < lengths[:, None])
    # times increase strictly, so every real gap is > 0; one-step sequences alone have none: unit 1
    return gaps[real].mean() if real.any() else torch.ones((), dtype=gaps.dtype)


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
