"""Epidemic forecasting with regime shifts: an SEIR simulator and its forecasting task.

The simulator integrates an SEIRS model one day at a time (population N, S + E + I + R = N):

    new exposures   = β(t) S I / N          β(t) = R0 γ · season(t) · intervention(t) · variant(t)
    new infectious  = σ E                    σ = 1 / incubation_days
    new recoveries  = γ I                    γ = 1 / infectious_days
    waning immunity = ω R                    ω = 1 / waning_days (so later waves can happen)

with a yearly seasonal factor 1 + a cos(2π (t − peak_day)/365), interventions that keep only a
fraction of β between two days (the regime shifts a forecaster must cope with) and variants that
multiply β from their emergence day on. Reported daily cases are a negative-binomial draw
(mean = reporting_rate × new infectious × weekday factor, size = dispersion): under-reporting, the
weekly reporting cycle and over-dispersed noise, as in surveillance data.

`EpidemicTask` turns one simulated series into forecasting windows with the same time-ordered
split and standardisation as `grukit forecast` (reading cases and the intervention flag, a
covariate public health agencies know), quantile outputs and the pinball loss. Its baselines, on
the same test windows and in the same standardised units: seasonal naive with a weekly period
and ETS fitted on the training rows (both from `grukit.app.forecast`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from grukit.errors import InputError
from grukit.forecasting.baselines import ets_forecasts, seasonal_naive
from grukit.forecasting.windows import ForecastConfig, standardised_windows
from grukit.tasks.base import QUANTILES, Task, TaskData
from grukit.tasks.forecast import window_split

WEEKDAY_FACTORS = (1.10, 1.15, 1.05, 1.0, 0.95, 0.70, 0.60)  # Monday … Sunday: weekend under-reporting


@dataclass(frozen=True)
class SEIRConfig:
    population: int = 2_000_000
    days: int = 900
    r0: float = 2.2  # basic reproduction number before any intervention
    incubation_days: float = 5.0  # 1/σ
    infectious_days: float = 7.0  # 1/γ
    waning_days: float = 300.0  # 1/ω, immunity loss
    seasonal_amplitude: float = 0.25  # a: β varies by ±25% over the year
    peak_day: int = 15  # day of the year with the highest β
    initial_infectious: int = 30
    interventions: tuple[tuple[int, int, float], ...] = ((110, 190, 0.55), (520, 580, 0.6))  # (from, to, β kept)
    variants: tuple[tuple[int, float], ...] = ((420, 1.5),)  # (emergence day, β multiplier)
    reporting_rate: float = 0.35  # share of infections that become reported cases
    dispersion: float = 30.0  # negative-binomial size: smaller is noisier
    seed: int = 0


def simulate_seir(config: SEIRConfig = SEIRConfig()) -> dict[str, np.ndarray]:
    """Daily series: day, cases (reported), incidence (true new infectious), intervention (0/1),
    beta (effective transmission rate), susceptible share."""
    if config.days < 2 or config.population < 1:
        raise InputError("the SEIR simulator needs at least 2 days and a positive population")
    rng = np.random.default_rng(config.seed)
    n = float(config.population)
    sigma, gamma, omega = 1 / config.incubation_days, 1 / config.infectious_days, 1 / config.waning_days
    s, e, i, r = n - config.initial_infectious, 0.0, float(config.initial_infectious), 0.0
    days = np.arange(config.days)
    incidence, beta_t, flag, susceptible = (np.zeros(config.days) for _ in range(4))
    for t in days:
        beta = config.r0 * gamma * (1 + config.seasonal_amplitude * math.cos(2 * math.pi * (t - config.peak_day) / 365))
        for start, end, kept in config.interventions:
            if start <= t < end:
                beta *= kept
                flag[t] = 1.0
        for day, multiplier in config.variants:
            if t >= day:
                beta *= multiplier
        exposed, infectious, recovered, waned = beta * s * i / n, sigma * e, gamma * i, omega * r
        s, e, i, r = s - exposed + waned, e + exposed - infectious, i + infectious - recovered, r + recovered - waned
        incidence[t], beta_t[t], susceptible[t] = infectious, beta, s / n
    mean = config.reporting_rate * incidence * np.array([WEEKDAY_FACTORS[d % 7] for d in days])
    size = config.dispersion
    cases = rng.negative_binomial(size, size / (size + np.maximum(mean, 1e-9)))  # mean = `mean`
    return {"day": days, "cases": cases.astype(float), "incidence": incidence, "intervention": flag,
            "beta": beta_t, "susceptible": susceptible}


@dataclass(frozen=True)
class EpidemicTask(Task):
    days: int = 900
    lookback: int = 56  # L, days the model reads
    horizon: int = 14  # h, days forecast
    season: int = 7  # the weekly reporting cycle, for seasonal naive
    name: str = "epidemic"

    def series(self, seed: int) -> dict[str, np.ndarray]:
        return simulate_seir(SEIRConfig(days=self.days, seed=seed))

    def build(self, *, seed: int) -> TaskData:

        simulated = self.series(seed)
        values = np.stack([np.log1p(simulated["cases"]), simulated["intervention"]], axis=1)  # (T, 2)
        config = ForecastConfig(target="cases", horizon=self.horizon, lookback=self.lookback, season=self.season,
                                scaling="series")
        windows, _ = standardised_windows(values, config)
        splits = tuple(window_split(w) for w in windows)
        return TaskData(self.name, *splits, input_size=2,
                        output_size=self.horizon * len(QUANTILES), loss="quantile", readout="last",
                        metric="mae", lower_is_better=True,
                        description=f"SEIR epidemic with interventions and a variant: forecast log cases "
                                    f"{self.horizon} days ahead from {self.lookback}")

    def baselines(self, data: TaskData) -> dict[str, float]:
        """MAE (standardised log cases) of seasonal naive and ETS on the test windows."""

        test = data.test
        # the whole standardised target series, rebuilt from the windows: inputs hold rows o−L+1 … o
        origins = torch.cat([data.train.groups, data.validation.groups, test.groups]).numpy()
        last = int(origins.max()) + self.horizon
        series = np.zeros(last + 1)
        for split in (data.train, data.validation, test):
            for window, targets, origin in zip(split.inputs[..., 0].numpy(), split.targets.numpy(),
                                               split.groups.numpy()):
                series[origin - self.lookback + 1 : origin + 1] = window
                series[origin + 1 : origin + 1 + self.horizon] = targets
        truth = test.targets.numpy()
        naive = seasonal_naive(series, test.groups.numpy(), horizon=self.horizon, season=self.season)
        ets = ets_forecasts(series, test.groups.numpy(), fit_until=int(data.train.groups.max()),
                            horizon=self.horizon, season=self.season)
        return {f"seasonal naive (m={self.season})": float(np.abs(naive - truth).mean()),
                "ETS": float(np.abs(ets - truth).mean())}
