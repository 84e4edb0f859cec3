"""The adding problem (Hochreiter & Schmidhuber 1997, §5.4; the form of Le et al. 2015).

Each step carries two features: a value drawn from U(0, 1) and a marker. Exactly two steps are
marked, one in the first half of the sequence and one in the second; the target is the sum of
the two marked values. A model must hold the first value for up to T steps.

The best constant prediction is E[sum] = 1, with MSE = Var(U₁ + U₂) = 2/12 = 1/6 ≈ 0.167;
a model that beats it clearly has learned to remember.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grukit.errors import check_positive
from grukit.tasks.base import Split, Task, TaskData, seeded_splits

CONSTANT_BASELINE_MSE = 1.0 / 6.0  # Var of the sum of two U(0, 1) values


@dataclass(frozen=True)
class AddingProblem:
    """inputs (N, T, 2) as (value, marker) batch-first; targets (N, 1)."""

    inputs: torch.Tensor
    targets: torch.Tensor


def make_adding(count: int, steps: int, *, seed: int, dtype: torch.dtype = torch.float32) -> AddingProblem:
    """`count` sequences of `steps` steps, reproducible from `seed`."""
    if steps < 2:
        raise ValueError(f"the adding problem needs at least 2 steps, got {steps}")
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(count, steps, generator=generator, dtype=dtype)
    half = steps // 2
    first = torch.randint(0, half, (count,), generator=generator)
    second = torch.randint(half, steps, (count,), generator=generator)
    markers = torch.zeros(count, steps, dtype=dtype)
    rows = torch.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).unsqueeze(1)  # (N, 1)
    return AddingProblem(torch.stack([values, markers], dim=-1), targets)


def constant_prediction_mse(targets: torch.Tensor) -> float:
    """MSE of the best constant trained-free guess, 1.0 (the expected sum)."""
    return float(((targets - 1.0) ** 2).mean())


@dataclass(frozen=True)
class AddingTask(Task):
    """The adding problem as a trainable task: regression of the sum from the last state."""

    steps: int = 100  # T: how long the first marked value must be held (the literature uses 100–1000)
    train_size: int = 20_000
    validation_size: int = 2_000
    test_size: int = 2_000
    name: str = "adding"

    def build(self, *, seed: int) -> TaskData:
        check_positive(steps=self.steps)
        def make(size: int, split_seed: int) -> Split:
            problem = make_adding(size, self.steps, seed=split_seed)
            return Split(problem.inputs, problem.targets)

        train, validation, test = seeded_splits(make, self, seed=seed)
        return TaskData(self.name, train, validation, test, input_size=2, output_size=1, loss="mse",
                        readout="last", metric="mse", lower_is_better=True,
                        description=f"adding problem, T={self.steps}: sum of two marked values")

    def baselines(self, data: TaskData) -> dict[str, float]:
        return {"constant 1.0": constant_prediction_mse(data.test.targets)}
