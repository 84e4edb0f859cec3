"""A local-level series with a known noise ratio, and the optimal filter as the baseline.

    μ_t = μ_{t−1} + η_t,   η_t ~ N(0, q σ²)        (random-walk level)
    y_t = μ_t + ε_t,       ε_t ~ N(0, σ²)          (noisy observation), σ = 1, μ_0 ~ N(0, 1)

Task: read y_1 … y_t and predict y_{t+1}, at every step (inputs y_1…y_{T−1}, targets y_2…y_T).
The best possible predictor is the Kalman filter; its steady state is exponential smoothing with
gain K = P/(P + σ²), where P = (q + √(q² + 4q))/2 σ² solves the Riccati equation
P = P σ²/(P + σ²) + q σ². A GRU's update gate u plays the part of K (the articles' claim that
grukit's analysis checks). Baseline: statsmodels' `UnobservedComponents("llevel")` filtering each
test series with the true variances (diffuse start), scored on the same steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from grukit.errors import InputError
from grukit.tasks.base import Split, Task, TaskData, seeded_splits


def steady_state_gain(noise_ratio: float) -> float:
    """K = P/(P + 1) with P = (q + √(q² + 4q))/2: the Kalman gain the filter settles to (σ = 1)."""
    q = noise_ratio
    prior = (q + math.sqrt(q * q + 4 * q)) / 2
    return prior / (prior + 1)


def make_local_level(count: int, steps: int, *, noise_ratio: float, seed: int) -> torch.Tensor:
    """y (N, T) from the model above."""
    generator = torch.Generator().manual_seed(seed)
    level0 = torch.randn(count, 1, generator=generator)
    level = level0 + torch.cumsum(math.sqrt(noise_ratio) * torch.randn(count, steps, generator=generator), dim=1)
    return level + torch.randn(count, steps, generator=generator)


def kalman_one_step_predictions(series: torch.Tensor, *, noise_ratio: float) -> torch.Tensor:
    """E[y_{t+1} | y_1…y_t] for t = 1 … T−1 by statsmodels' Kalman filter, true variances: (N, T−1)."""
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    predictions = []
    for row in series.double().numpy():
        model = UnobservedComponents(row, level="llevel")
        result = model.filter([1.0, noise_ratio])  # params: σ²_irregular, σ²_level
        predictions.append(torch.from_numpy(result.forecasts[0, 1:].copy()))
    return torch.stack(predictions).to(series.dtype)


@dataclass(frozen=True)
class KalmanTask(Task):
    steps: int = 200  # T
    noise_ratio: float = 0.1  # q = σ²_η / σ²_ε; steady-state gain 0.27 at q = 0.1
    train_size: int = 4_000
    validation_size: int = 500
    test_size: int = 500
    name: str = "kalman"

    def build(self, *, seed: int) -> TaskData:
        if not isinstance(self.steps, int) or self.steps < 3:
            raise InputError(f"the kalman task needs at least 3 steps, got {self.steps!r}")
        if not self.noise_ratio > 0:
            raise InputError(f"noise_ratio must be positive, got {self.noise_ratio!r}")
        def make(size: int, split_seed: int) -> Split:
            y = make_local_level(size, self.steps, noise_ratio=self.noise_ratio, seed=split_seed)
            return Split(y[:, :-1, None], y[:, 1:, None])  # (N, T−1, 1) each

        splits = seeded_splits(make, self, seed=seed)
        return TaskData(self.name, *splits, input_size=1, output_size=1, loss="mse", readout="sequence",
                        metric="mse", lower_is_better=True,
                        description=f"local level, q={self.noise_ratio}: predict the next observation")

    def baselines(self, data: TaskData) -> dict[str, float]:
        series = torch.cat([data.test.inputs[:, :1, 0], data.test.targets[..., 0]], dim=1)  # y_1 … y_T
        kalman = kalman_one_step_predictions(series, noise_ratio=self.noise_ratio)
        last_value = data.test.inputs[..., 0]  # random-walk forecast: y_{t+1} ≈ y_t
        targets = data.test.targets[..., 0]
        return {"Kalman filter (optimal)": float(((kalman - targets) ** 2).mean()),
                "last value": float(((last_value - targets) ** 2).mean())}
