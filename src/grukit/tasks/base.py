"""What every task gives the trainer: three splits, the loss, the metrics and the baselines.

A task is a dataset builder plus its metric plus its baselines. `Task.build(seed=...)` returns
`TaskData` with train / validation / test `Split`s of batch-first tensors, the sizes the model
needs, and the loss; `Task.metrics` scores predictions; `Task.baselines` scores the reference
predictors the literature compares against, on the same test split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from grukit.errors import check_positive

Loss = Literal["mse", "masked_mse", "cross_entropy", "quantile"]
IGNORE = -100  # class target of a step with nothing to predict (F.cross_entropy's ignore_index)
QUANTILES = (0.1, 0.5, 0.9)  # the "quantile" loss: an 80% interval around the median


@dataclass(frozen=True)
class Split:
    """inputs (N, T, I); targets (N, O) or (N,) class ids, or per step (N, T, O) / (N, T);
    lengths (N,) valid steps per sequence, or None when all have T steps. Class targets equal to
    IGNORE (−100) are left out of the loss and the metrics (steps with nothing to predict).
    groups (N,) an integer per sequence for per-group metrics (e.g. attractor counts), or None."""

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor | None = None
    groups: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        def pick(t):
            return None if t is None else t[index]

        return Split(self.inputs[index], self.targets[index], pick(self.lengths), pick(self.groups))


@dataclass(frozen=True)
class TaskData:
    name: str
    train: Split
    validation: Split
    test: Split
    input_size: int  # I
    output_size: int  # O: regression outputs, or classes
    loss: Loss  # "mse" / "masked_mse" (regression), "quantile", or "cross_entropy" (classes: logits)
    readout: Literal["last", "sequence", "ahead"]  # one prediction per sequence, one per step, or per last step
    #                                                (training.model)
    metric: str  # the headline metric's name in `Task.metrics`
    lower_is_better: bool  # for the headline metric
    description: str = ""
    token_inputs: bool = False  # inputs are symbol ids (N, T), read one-hot over input_size symbols
    ahead: int = 0  # readout="ahead": the last steps read out


class Task:
    """Base class: subclasses set `name` and implement `build` and `baselines`."""

    name: str = ""

    def build(self, *, seed: int) -> TaskData:
        raise NotImplementedError

    def metrics(self, data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
        """Loss-based metrics shared by all tasks (mse, or cross-entropy and accuracy)."""
        return standard_metrics(data.loss, predictions, split.targets)

    def baselines(self, data: TaskData) -> dict[str, float]:
        """The headline metric of each reference predictor on the test split."""
        return {}


def loss_value(loss: Loss, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean MSE; for "masked_mse" the mean squared error over the targets that are not NaN (NaN: an
    entry with nothing to predict, e.g. one never observed); mean cross-entropy of logits (…, C)
    against class ids (…); or the mean pinball loss of predictions (N, O·Q) for the quantiles
    QUANTILES against targets (N, O): ρ_q(e) = max(q e, (q − 1) e), e = y − ŷ_q."""
    if loss == "mse":
        return F.mse_loss(predictions, targets)
    if loss == "masked_mse":
        scored = ~torch.isnan(targets)
        error = torch.where(scored, predictions - targets.nan_to_num(), torch.zeros(()))
        return error.square().sum() / scored.sum().clamp_min(1)
    if loss == "quantile":
        q = torch.tensor(QUANTILES, dtype=predictions.dtype, device=predictions.device)
        error = targets.unsqueeze(-1) - predictions.reshape(*targets.shape, len(QUANTILES))  # (N, O, Q)
        return torch.maximum(q * error, (q - 1) * error).mean()
    return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


def standard_metrics(loss: Loss, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    if loss == "quantile":
        median = predictions.reshape(*targets.shape, len(QUANTILES))[..., QUANTILES.index(0.5)]
        return {"pinball": float(loss_value(loss, predictions, targets)),
                "mae": float((median - targets).abs().mean())}
    if loss == "masked_mse":
        scored = ~torch.isnan(targets)
        error = predictions[scored] - targets[scored]
        return {"mse": float(error.square().mean()), "mae": float(error.abs().mean())}
    if loss == "mse":
        return {"mse": float(F.mse_loss(predictions, targets)),
                "mae": float((predictions - targets).abs().mean())}
    scored = targets != IGNORE
    classes = predictions.argmax(-1)
    return {"cross_entropy": float(loss_value(loss, predictions, targets)),
            "accuracy": float((classes == targets)[scored].float().mean())}


def seeded_splits(make, task, *, seed: int) -> tuple[Split, Split, Split]:
    """(train, validation, test) = make(size, split_seed) for a synthetic task's train_size,
    validation_size and test_size (each checked positive), split_seed = 3·seed + k, so no two splits
    (or two task seeds) share a generator stream."""
    sizes = {"train_size": task.train_size, "validation_size": task.validation_size, "test_size": task.test_size}
    check_positive(**sizes)
    train, validation, test = (make(size, seed * 3 + k) for k, size in enumerate(sizes.values()))
    return train, validation, test


def split_three(count: int, *, seed: int, fractions=(0.7, 0.15)) -> tuple[torch.Tensor, ...]:
    """Random (train, validation, test) index sets of a dataset of `count` items."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    n_train, n_val = int(fractions[0] * count), int(fractions[1] * count)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def entropy_nats(probabilities) -> float:
    return -sum(p * math.log(p) for p in probabilities if p > 0)
