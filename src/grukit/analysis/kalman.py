"""The update gate as a learned Kalman gain.

For the local-level model μ_t = μ_{t−1} + η_t, y_t = μ_t + ε_t (Var η = q σ², Var ε = σ²) the
Kalman filter's estimate is exponential smoothing with a gain that settles to

    K = (−q + √(q² + 4q)) / 2          (q = 1 → 0.618, q = 0.1 → 0.270, q = 0.01 → 0.095)

and a GRU unit that reads y_t computes h' = (1 − u) h + u ñ: the same form, with u in K's place.
When σ² varies in time (and the model is told it), so does the optimal gain: K_t = P_t / (P_t + σ²_t)
falls where the observations are noisy.

`steady_state_gain` is the formula and `filter_gains` (both from `grukit.tasks.kalman`) runs statsmodels'
Kalman filter (`statsmodels.tsa.statespace.kalman_filter`) with
the given variances, time-varying ones included; `kalman_comparison` sets a trained task model's
mean update gate beside those gains, step by step, and scores both forecasts on the same targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from grukit.errors import InputError
from grukit.tasks.kalman import filter_gains, steady_state_gain


@dataclass(frozen=True)
class KalmanComparison:
    mean_update: float  # the model's update gate, mean over units, series and steps after burn-in
    mean_gain: float  # the filter's gain, same steps
    steady_state_gain: float | None  # the formula's K (constant noise only)
    correlation: float  # Pearson, gate against gain, pooled over series and steps after burn-in
    model_mse: float  # one-step forecast MSE of the model
    filter_mse: float  # of the Kalman filter, same targets
    update: np.ndarray  # (N, T) mean update gate per step
    gain: np.ndarray  # (N, T)

    @property
    def mse_ratio(self) -> float:
        return self.model_mse / self.filter_mse


def kalman_comparison(model, inputs: torch.Tensor, targets: torch.Tensor, *, state_variance: float,
                      observation_variance: float | np.ndarray = 1.0, burn_in: int = 20) -> KalmanComparison:
    """A trained task model (`SequenceModel` with a GRU backbone, readout "sequence") on local-level
    inputs (N, T, F) — y_t in feature 0, further features (e.g. the noise level) as the model was
    trained — and targets (N, T, 1), y_{t+1}. The filter runs with the variances the data came from:
    Var η = state_variance, Var ε = observation_variance (a number, or (N, T) per step)."""
    if inputs.dim() != 3 or targets.shape[:2] != inputs.shape[:2]:
        raise InputError(f"inputs must be (N, T, F) and targets (N, T, 1); got {tuple(inputs.shape)} and "
                         f"{tuple(targets.shape)}")
    if not 0 <= burn_in < inputs.shape[1]:
        raise InputError(f"burn_in must be in 0…{inputs.shape[1] - 1}, got {burn_in}")
    with torch.no_grad():
        prediction = model(inputs)[..., 0]
        trace = model.recurrent(inputs, return_gates=True)[2]
    update = trace.update.mean(dim=(0, 3)).double().numpy()  # (N, T)
    y = inputs[..., 0].double().numpy()
    scale = np.asarray(observation_variance, dtype=float)
    gains, predictions = filter_gains(y, state_variance=state_variance, observation_variance=scale)
    truth = targets[..., 0].double().numpy()
    after = slice(burn_in, None)
    gate, gain = update[:, after].ravel(), gains[:, after].ravel()
    return KalmanComparison(
        mean_update=float(gate.mean()), mean_gain=float(gain.mean()),
        steady_state_gain=steady_state_gain(state_variance / float(scale)) if scale.ndim == 0 else None,
        correlation=float(np.corrcoef(gate, gain)[0, 1]),
        model_mse=float(((prediction.double().numpy() - truth)[:, after] ** 2).mean()),
        filter_mse=float(((predictions - truth)[:, after] ** 2).mean()),
        update=update, gain=gains)


def plot_kalman(comparison: KalmanComparison, *, series: int = 0, ax=None):
    """The model's mean update gate and the filter's gain along one series."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3))[1]
    ax.plot(comparison.gain[series], label="Kalman gain K_t")
    ax.plot(comparison.update[series], label="GRU mean update gate u_t")
    if comparison.steady_state_gain is not None:
        ax.axhline(comparison.steady_state_gain, color="grey", linestyle="--", linewidth=0.8, label="steady state")
    ax.set_xlabel("step t")
    ax.set_ylabel("gain")
    ax.set_ylim(0, 1)
    ax.legend()
    return ax
