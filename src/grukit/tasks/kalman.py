"""A local-level series with a known noise ratio, and the optimal filter as the baseline.

    μ_t = μ_{t−1} + η_t,   η_t ~ N(0, q σ²)        (random-walk level)
    y_t = μ_t + ε_t,       ε_t ~ N(0, σ²)          (noisy observation), σ = 1, μ_0 ~ N(0, 1)

Task: read y_1 … y_t and predict y_{t+1}, at every step (inputs y_1…y_{T−1}, targets y_2…y_T).
The best possible predictor is the Kalman filter; its steady state is exponential smoothing with
gain K = P/(P + σ²), where P = (q + √(q² + 4q))/2 σ² solves the Riccati equation
P = P σ²/(P + σ²) + q σ². A GRU's update gate u plays the part of K (the articles' claim that
grukit's analysis checks). Baseline: statsmodels' `UnobservedComponents("llevel")` filtering each
test series with the true variances (diffuse start), scored on the same steps.

varying_noise=True: the observation noise's variance σ²_t switches between 0.25 and 4 (a two-state
Markov chain that switches with probability 0.02 per step), and the model reads log σ²_t beside
y_t, as a forecaster told how noisy each measurement is. The optimal gain then moves with it,
K_t = P_t / (P_t + σ²_t); the baseline is statsmodels' Kalman filter with the true σ²_t
(`filter_gains`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from grukit.errors import InputError
from grukit.tasks.base import Split, Task, TaskData, seeded_splits


def steady_state_gain(noise_ratio: float) -> float:
    """K = P/(P + 1) with P = (q + √(q² + 4q))/2: the Kalman gain the filter settles to (σ = 1)."""
    q = noise_ratio
    prior = (q + math.sqrt(q * q + 4 * q)) / 2
    return prior / (prior + 1)


NOISE_LEVELS = (0.25, 4.0)  # σ²_t of the varying-noise series
NOISE_SWITCH = 0.02  # probability per step that σ²_t switches


def filter_gains(series, *, state_variance: float, observation_variance=1.0):
    """Kalman gains K_t and one-step predictions E[y_{t+1} | y_1…y_t] of local-level series by
    statsmodels' Kalman filter (approximate diffuse start).

    series (N, T); observation_variance a number or (N, T) (σ²_t per step). Returns numpy arrays
    gains (N, T) (K_t weighs the innovation of y_t) and predictions (N, T) (prediction t is of y_{t+1})."""
    from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

    y = np.asarray(series, dtype=float)
    if y.ndim != 2:
        raise InputError(f"series must be (N, T), got shape {y.shape}")
    variance = np.broadcast_to(np.asarray(observation_variance, dtype=float), y.shape)
    gains, predictions = np.empty_like(y), np.empty_like(y)
    for row in range(y.shape[0]):
        kf = KalmanFilter(k_endog=1, k_states=1)
        kf.bind(y[row][None, :].copy())
        kf["design"], kf["transition"], kf["selection"] = [[1.0]], [[1.0]], [[1.0]]
        kf["state_cov"] = [[float(state_variance)]]
        kf["obs_cov"] = variance[row][None, None, :].copy()  # (1, 1, T): time-varying
        kf.initialize_approximate_diffuse()
        result = kf.filter()
        gains[row] = result.kalman_gain[0, 0]
        predictions[row] = result.predicted_state[0, 1:]
    return gains, predictions


def make_varying_noise(count: int, steps: int, *, noise_ratio: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """y (N, T) and σ²_t (N, T): the level as in `make_local_level` (Var η = q), observed with noise of
    variance σ²_t ∈ NOISE_LEVELS that switches with probability NOISE_SWITCH per step."""
    generator = torch.Generator().manual_seed(seed)
    level = torch.randn(count, 1, generator=generator) + torch.cumsum(
        math.sqrt(noise_ratio) * torch.randn(count, steps, generator=generator), dim=1)
    switches = torch.rand(count, steps, generator=generator) < NOISE_SWITCH
    start = torch.rand(count, 1, generator=generator) < 0.5
    high = (start ^ (torch.cumsum(switches.int(), dim=1) % 2).bool())  # (N, T): in the noisy state
    variance = torch.where(high, NOISE_LEVELS[1], NOISE_LEVELS[0])
    return level + variance.sqrt() * torch.randn(count, steps, generator=generator), variance


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
    varying_noise: bool = False  # σ²_t switching between 0.25 and 4, read as log σ²_t beside y_t
    name: str = "kalman"

    def build(self, *, seed: int) -> TaskData:
        if not isinstance(self.steps, int) or self.steps < 3:
            raise InputError(f"the kalman task needs at least 3 steps, got {self.steps!r}")
        if not self.noise_ratio > 0:
            raise InputError(f"noise_ratio must be positive, got {self.noise_ratio!r}")
        def make(size: int, split_seed: int) -> Split:
            if self.varying_noise:  # inputs (N, T−1, 2): y_t and log σ²_t
                y, variance = make_varying_noise(size, self.steps, noise_ratio=self.noise_ratio, seed=split_seed)
                return Split(torch.stack([y[:, :-1], variance[:, :-1].log()], dim=-1), y[:, 1:, None])
            y = make_local_level(size, self.steps, noise_ratio=self.noise_ratio, seed=split_seed)
            return Split(y[:, :-1, None], y[:, 1:, None])  # (N, T−1, 1) each

        splits = seeded_splits(make, self, seed=seed)
        noise = "noise variance switching 0.25/4, given" if self.varying_noise else f"q={self.noise_ratio}"
        return TaskData(self.name, *splits, input_size=2 if self.varying_noise else 1, output_size=1, loss="mse",
                        readout="sequence", metric="mse", lower_is_better=True,
                        description=f"local level, {noise}: predict the next observation")

    def baselines(self, data: TaskData) -> dict[str, float]:
        series = torch.cat([data.test.inputs[:, :1, 0], data.test.targets[..., 0]], dim=1)  # y_1 … y_T
        if self.varying_noise:  # the filter with the true σ²_t of the steps it reads (the last one unused)
            variance = data.test.inputs[..., 1].double().exp()
            variance = torch.cat([variance, variance[:, -1:]], dim=1)
            _, predicted = filter_gains(series.double().numpy(), state_variance=self.noise_ratio,
                                        observation_variance=variance.numpy())
            kalman = torch.from_numpy(predicted[:, :-1]).to(series.dtype)
        else:
            kalman = kalman_one_step_predictions(series, noise_ratio=self.noise_ratio)
        last_value = data.test.inputs[..., 0]  # random-walk forecast: y_{t+1} ≈ y_t
        targets = data.test.targets[..., 0]
        return {"Kalman filter (optimal)": float(((kalman - targets) ** 2).mean()),
                "last value": float(((last_value - targets) ** 2).mean())}
