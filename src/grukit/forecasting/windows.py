"""Forecast windows of one series: origins split by time, the scaling the model reads, windows.

A forecast origin o is the index of the last observed row; the model reads rows o − L + 1 … o and
predicts rows o + 1 … o + h. Origins are split by time into train / validation / test with a gap of
h origins between the parts, so no target is shared across them; every column is scaled with
statistics of the rows a training window touches only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grukit.data.series import make_windows
from grukit.errors import InputError, check_positive


@dataclass(frozen=True)
class ForecastConfig:
    target: str  # the column to forecast
    covariates: tuple[str, ...] = ()  # past-only inputs beside the target
    known: tuple[str, ...] = ()  # covariates known in advance: also read for the h steps ahead (data.series)
    static: tuple[str, ...] = ()  # a panel's per-series attributes (forecasting.covariates)
    time: str | None = None  # time column; default: the first of date/time/timestamp/ds/week/year
    dayfirst: bool | None = None  # dates like 01.03.2024: True day-first, False month-first, None: from the data
    fill: str = "error"  # a missing row of the calendar: "error", "previous" or "linear" (data.series)
    group: str | None = None  # column naming the series of each row: one model for all of them
    log: bool = False  # model log(1 + target) (counts, rates ≥ 0); quantiles map back exactly (monotone)
    scaling: str = "auto"  # "auto": seasonal or level, per series on validation; "series", "window" (SeriesScaler)
    horizon: int = 14  # h, steps forecast from each origin
    lookback: int = 56  # L, steps the model reads
    season: int = 1  # m for the seasonal-naive baseline and ETS (7: daily data, weekly cycle)
    hidden_size: int = 64
    epochs: int = 200  # at most; early stopping usually ends sooner
    patience: int = 15  # epochs without a better validation loss before stopping
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0
    validation_fraction: float = 0.15  # of the forecast origins, before the test ones
    test_fraction: float = 0.15  # of the forecast origins, the latest ones

    def __post_init__(self) -> None:
        check_positive(**{name: getattr(self, name)
                          for name in ("horizon", "lookback", "season", "hidden_size", "epochs", "batch_size")})
        if self.scaling not in SCALINGS:
            raise InputError(f"scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}")
        if self.static and not self.group:
            raise InputError("static attributes tell a panel's series apart: --static needs --group")


MODEL_FILE = "forecast_model.json"  # in a forecast run directory: its ForecastConfig and what forecasting again needs
SCALINGS = ("series", "window", "level", "seasonal", "auto")  # auto: the pipeline chooses per series
WINDOW_SCALE_FLOOR = 0.01  # × the training rows' std of the target: the least window scale (all-zero windows)


def minimum_rows(lookback: int, horizon: int) -> int:
    """Rows needed for ≥ 8 training, 1 validation and 1 test origin with gaps of h between the parts."""
    return lookback + 3 * horizon + 9


def split_origins(series_length: int, config: ForecastConfig,
                  test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) origins. Default: the latest test_fraction of the origins are the
    test ones. Given `test` origins (a backtest's), training and validation use the origins whose
    targets all precede the first of them (o + h ≤ test[0]). Either way a gap of h origins separates
    the parts, so no target is shared across them."""
    # the first origin has a whole window behind it and, m = season, a whole season: the seasonal naive
    # forecast y_{o+k−m⌈k/m⌉} (a baseline, and what scaling="seasonal" measures from) reads row o + 1 − m
    first, last = max(config.lookback, config.season) - 1, series_length - config.horizon - 1
    origins = np.arange(first, last + 1)
    gap = config.horizon  # the last training target (o + h) precedes the first validation origin's
    if test is None:
        n = len(origins)
        n_test = max(1, math.ceil(config.test_fraction * n))
        test = origins[n - n_test :]
        before = origins[: n - n_test - gap]
    else:
        test = np.asarray(test, dtype=int)
        before = origins[origins <= test[0] - gap]
    n_val = max(1, math.ceil(config.validation_fraction * (len(before) + len(test) + gap)))
    validation = before[len(before) - n_val :]
    train = before[: max(0, len(before) - n_val - gap)]
    return train, validation, test


@dataclass(frozen=True)
class Windows:
    """Model-ready windows of one series at some forecast origins. The target in data (model-scale)
    units is offset + scale × what the model reads and outputs, per window."""

    inputs: np.ndarray  # (N, L, F'), float
    targets: np.ndarray  # (N, h), scaled as the inputs' target column
    offset: np.ndarray  # (N,) what the inputs' target column is measured from
    scale: np.ndarray  # (N,)
    origins: np.ndarray  # (N,), index of each window's last observed row
    baseline: np.ndarray | None = None  # (N, h) what the targets are measured from; None: the offset

    @property
    def target_offset(self) -> np.ndarray:
        """(N, h): target in data units = target_offset + scale × what the model outputs."""
        return np.broadcast_to(self.offset[:, None], self.targets.shape) if self.baseline is None else self.baseline


class SeriesScaler:
    """How one series' values (T, F) — target in column 0 — become model inputs, fitted on the rows
    its training windows touch.

    scaling="seasonal": as "level" for the inputs, but the h values to predict are
      measured from the seasonal naive forecast ŷ_{o+k} = y_{o+k−m⌈k/m⌉} (the last value when m = 1),
      in units of the training rows' std of m-step changes: the GRU learns what the series does
      beyond repeating its last season, so an untrained or data-starved model (a short series) is
      the seasonal naive forecast, and a trend is a constant it learns to add (the differencing of
      Box-Jenkins, and the residual learning over a strong baseline of the M4 hybrids).
    scaling="level": the target in each window, inputs and the h values to predict
      alike, is measured from ℓ_o, its mean over the window's last m steps (m = season; the last
      value when m = 1), in units of the training rows' std of one-step changes; (ℓ_o − mean) / std
      of the training rows is one more input. The model reads and predicts changes from the current
      level, so a trend or a level shift never leaves the range it was trained on (with "series"
      scaling a trending series' forecasts flatten at the training maximum), and it still knows
      where the level is (mean-reverting series). In the spirit of the per-window normalisation of
      N-BEATS and ES-RNN (Oreshkin et al. 2020; Smyl 2020).
    scaling="series": every column standardised with those rows' mean and std.

    Known covariates (config.known: the last K columns of values) are read beyond the origin: a
    window is L + h steps long, its last h rows holding the known covariates' values at o + 1 … o + h
    (standardised like their past), zeros for the target and past covariates, the window's level
    input unchanged, and one more input that is 0 on the L observed steps and 1 on the h ahead; the
    model's read-out is at the last of them. `future` (R, K): their values after the last row, for
    the windows that reach past the data. `static` (S,): a panel's series' attributes
    (`forecasting.covariates`), one more input each on every step.
    scaling="window" (DeepAR's mean scaling, Salinas et al. 2020): the target in each window, inputs
      and the h values to predict alike, is divided by ν = mean |y| over the window's L steps
      (at least WINDOW_SCALE_FLOOR × the training std), and log(ν / training std) is one more input,
      so the model sees the shape of the recent past and still knows its level. For a series whose
      level moves by orders of magnitude (epidemics before and after a vaccine). Covariates are
      standardised as with "series".
    """

    def __init__(self, values: np.ndarray, *, fitted_rows: int, config: ForecastConfig, stats: dict | None = None,
                 future: np.ndarray | None = None, static: np.ndarray | None = None):
        """Fitted on values[:fitted_rows], or given the `stats()` of a scaler fitted before (new data
        read by a trained model). scaling="auto" is the forecasting pipeline's choice between two
        scalers, not a scaler: refused here."""
        if config.scaling not in ("series", "window", "level", "seasonal"):
            raise InputError(f"a SeriesScaler scales by series, window, level or seasonal, not {config.scaling!r} "
                             "(auto is a choice the forecasting pipeline makes between seasonal and level)")
        if stats is None:
            fitted = values[:fitted_rows]
            self.mean, std = fitted.mean(0), fitted.std(0)
            self.std = np.where(std > 0, std, 1.0)
            self.step_std = _change_std(fitted[:, 0], 1, fallback=float(self.std[0]))
            self.season_std = _change_std(fitted[:, 0], config.season, fallback=self.step_std)
        else:
            self.mean, self.std = np.asarray(stats["mean"], dtype=float), np.asarray(stats["std"], dtype=float)
            self.step_std, self.season_std = float(stats["step_std"]), float(stats["season_std"])
            if self.mean.shape != (values.shape[1],):
                raise InputError(f"the model was trained on {len(self.mean)} columns (target and covariates), "
                                 f"the data has {values.shape[1]}")
            static = np.asarray(stats.get("static", []), dtype=float) if static is None else static
        self.values, self.config = values, config
        self.standardised = (values - self.mean) / self.std
        self.known = len(config.known)
        ahead = np.zeros((0, self.known)) if future is None else np.asarray(future, dtype=float)
        self.known_ahead = np.concatenate([self.standardised[:, values.shape[1] - self.known:],
                                           (ahead - self.mean[values.shape[1] - self.known:])
                                           / self.std[values.shape[1] - self.known:]]) if self.known else None
        self.static = np.zeros(0) if static is None else np.asarray(static, dtype=float)
        self.features = (values.shape[1] + (config.scaling in ("window", "level", "seasonal")) + (self.known > 0)
                         + len(self.static))

    def stats(self) -> dict:
        """What the scaling learned from the training rows, JSON-ready (the `stats` of __init__)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "step_std": self.step_std,
                "season_std": self.season_std, "static": self.static.tolist()}

    def windows(self, origins: np.ndarray, *, with_targets: bool = True) -> Windows:
        config, values = self.config, self.values
        lookback, horizon = config.lookback, config.horizon
        inputs, _ = make_windows(self.standardised, lookback=lookback, horizon=0, origins=origins)
        future = (make_windows(values, lookback=lookback, horizon=horizon, origins=origins)[1] if with_targets
                  else np.zeros((len(origins), horizon)))  # the future past the data: only its inputs exist
        if config.scaling == "series":
            offset = np.full(len(origins), self.mean[0])
            scale = np.full(len(origins), self.std[0])
        elif config.scaling in ("level", "seasonal"):
            recent = make_windows(values[:, :1], lookback=lookback, horizon=0, origins=origins)[0][..., 0]  # (N, L)
            offset = recent[:, -min(config.season, lookback):].mean(1)  # ℓ_o: the level of the last season
            scale = np.full(len(origins), self.step_std if config.scaling == "level" else self.season_std)
            inputs[:, :, 0] = (recent - offset[:, None]) / scale[:, None]
            level = np.broadcast_to(((offset - self.mean[0]) / self.std[0])[:, None, None], (len(origins), lookback, 1))
            inputs = np.concatenate([inputs, level], axis=2)
        else:  # "window" (the only other scaling __init__ admits)
            recent = make_windows(values[:, :1], lookback=lookback, horizon=0, origins=origins)[0][..., 0]  # (N, L)
            scale = np.maximum(np.abs(recent).mean(1), WINDOW_SCALE_FLOOR * self.std[0])
            offset = np.zeros(len(origins))
            inputs[:, :, 0] = recent / scale[:, None]
            level = np.broadcast_to(np.log(scale / self.std[0])[:, None, None], (len(origins), lookback, 1))
            inputs = np.concatenate([inputs, level], axis=2)
        baseline = None
        if config.scaling == "seasonal":  # the seasonal naive forecast ŷ_{o+k} = y_{o+k−m⌈k/m⌉}
            k = np.arange(1, horizon + 1)
            lag = config.season * np.ceil(k / config.season).astype(int)
            baseline = values[np.asarray(origins)[:, None] + k[None, :] - lag[None, :], 0]  # (N, h)
        targets = (future - (offset[:, None] if baseline is None else baseline)) / scale[:, None]
        if self.known:
            inputs = self._with_known_ahead(inputs, np.asarray(origins))
        if len(self.static):
            inputs = np.concatenate([inputs, np.broadcast_to(self.static, (*inputs.shape[:2], len(self.static)))], 2)
        return Windows(inputs, targets, offset, scale, np.asarray(origins), baseline)

    def _with_known_ahead(self, inputs: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(N, L + h, F' + 1): the h rows ahead appended (known covariates, level input, ahead flag 1)."""
        horizon, first = self.config.horizon, self.values.shape[1] - self.known
        reach = int(origins.max()) + horizon + 1
        if reach > len(self.known_ahead):
            raise InputError(f"the known covariates {', '.join(map(repr, self.config.known))} have values up to row "
                             f"{len(self.known_ahead)} of the series, a forecast from its last row needs {reach}: "
                             f"give their next {reach - len(self.known_ahead)} values after the last target row")
        ahead = np.zeros((len(origins), horizon, inputs.shape[2]))
        ahead[:, :, first : first + self.known] = np.stack([self.known_ahead[o + 1 : o + 1 + horizon] for o in origins])
        if inputs.shape[2] > self.values.shape[1]:  # the level input of the window, on the rows ahead too
            ahead[:, :, -1] = inputs[:, -1:, -1]
        flag = np.concatenate([np.zeros((*inputs.shape[:2], 1)), np.ones((len(origins), horizon, 1))], axis=1)
        return np.concatenate([np.concatenate([inputs, ahead], axis=1), flag], axis=2)


def _change_std(y: np.ndarray, lag: int, *, fallback: float) -> float:
    """The standard deviation of y_t − y_{t−lag}, or `fallback` where it is 0 or undefined."""
    changes = y[lag:] - y[:-lag]
    return float(changes.std()) if len(changes) > 1 and changes.std() > 0 else fallback


def standardised_windows(values: np.ndarray, config: ForecastConfig, test: np.ndarray | None = None, *,
                         future: np.ndarray | None = None, static: np.ndarray | None = None):
    """The time-ordered (train, validation, test) Windows of `values` (T, F) — target in column 0 —
    scaled by a SeriesScaler fitted on the rows a training window touches. Returns (windows, scaler).
    `test`: the test origins (`split_origins`); `future`, `static`: as SeriesScaler's."""
    origins = split_origins(len(values), config, test)
    if len(origins[0]) < 1:
        raise InputError(f"{len(values)} rows leave no training window before the first test origin "
                         f"(row {int(origins[2][0]) + 1}): use fewer or later backtest windows, or a shorter "
                         "--lookback")
    scaler = SeriesScaler(values, fitted_rows=origins[0][-1] + config.horizon + 1, config=config, future=future,
                          static=static)
    return tuple(scaler.windows(o) for o in origins), scaler
