"""scikit-learn's 8×8 handwritten digits read as a sequence (a small, offline sequential MNIST).

1,797 images, 10 classes. `order="pixels"`: 64 steps of one pixel (row-major, the hard, long
form, as in Le et al. 2015's pixel MNIST); `order="rows"`: 8 steps of 8 pixels. Pixel values are
scaled to [0, 1]. Split 70/15/15 at random with the task's seed. Baseline: the majority class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from grukit.errors import InputError
from grukit.tasks.base import Split, Task, TaskData, split_three


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """images (1797, 8, 8) in [0, 1], labels (1797,) — from scikit-learn, which ships them."""
    from sklearn.datasets import load_digits  # a dependency of grukit

    images, labels = load_digits(return_X_y=True)
    return torch.tensor(images, dtype=torch.float32).reshape(-1, 8, 8) / 16.0, torch.tensor(labels)


@dataclass(frozen=True)
class DigitsTask(Task):
    order: Literal["pixels", "rows"] = "pixels"
    name: str = "digits"

    def build(self, *, seed: int) -> TaskData:
        if self.order not in ("pixels", "rows"):
            raise InputError(f"digits order must be 'pixels' or 'rows', got {self.order!r}")
        images, labels = load_digit_images()
        inputs = images.reshape(-1, 64, 1) if self.order == "pixels" else images  # (N, 64, 1) or (N, 8, 8)
        everything = Split(inputs, labels)
        train, validation, test = (everything.subset(index) for index in split_three(len(labels), seed=seed))
        return TaskData(self.name, train, validation, test, input_size=inputs.shape[-1], output_size=10,
                        loss="cross_entropy", readout="last", metric="accuracy", lower_is_better=False,
                        description=f"8×8 digits read {self.order} by {self.order[:-1]}")

    def baselines(self, data: TaskData) -> dict[str, float]:
        majority = torch.bincount(data.train.targets, minlength=10).argmax()
        return {"majority class": float((data.test.targets == majority).float().mean())}
