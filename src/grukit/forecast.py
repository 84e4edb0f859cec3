"""`grukit forecast`: a GRU forecaster for the user's own CSV, end to end.

Pipeline: read and check the series (`data.series`) → forecast origins split by time into train /
validation / test (a gap of h origins between the parts, so no target is shared across them) →
standardise every column with the training rows' mean and std → train a GRU that reads the last
L steps of [target, covariates] and outputs the next h values at the quantiles 0.1, 0.5, 0.9
(pinball loss; early stopping on the validation loss) → score the median on the test origins, in
the data's own units, beside two baselines on the same origins:

  * seasonal naive: ŷ_{o+k} = y_{o+k−m⌈k/m⌉} (m = --season; m = 1 is the last value);
  * ETS: statsmodels' ETSModel (additive error, damped additive trend, additive season when
    m > 1) fitted on the training rows, then run with those parameters up to each origin;

→ forecast the h steps after the last row and write forecast.csv (time, median, lower, upper)
and forecast.png (history, test-period fit, forecast and its 80% interval). Both files are
written at the end, each atomically, and an existing one is never replaced without overwrite.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time as clock
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grukit.atomic import write_text_atomic
from grukit.data.series import Series, make_windows, read_panel, read_series
from grukit.tasks.base import QUANTILES, Split, Task, TaskData
from grukit.validation import InputError


@dataclass(frozen=True)
class ForecastConfig:
    target: str  # the column to forecast
    covariates: tuple[str, ...] = ()  # past-only inputs beside the target
    time: str | None = None  # time column; default: the first of date/time/timestamp/ds/week/year
    group: str | None = None  # column naming the series of each row: one model for all of them
    log: bool = False  # model log(1 + target) (counts, rates ≥ 0); quantiles map back exactly (monotone)
    scaling: str = "series"  # "series": training rows' mean/std; "window": each window's mean |target| (see below)
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
        for name in ("horizon", "lookback", "season", "hidden_size", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.scaling not in SCALINGS:
            raise InputError(f"scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}")


SCALINGS = ("series", "window")
WINDOW_SCALE_FLOOR = 0.01  # × the training rows' std of the target: the least window scale (all-zero windows)


@dataclass(frozen=True)
class ForecastResult:
    test: dict[str, dict[str, float]]  # predictor → {mae, rmse[, coverage_80]} on the test origins
    future: dict[str, np.ndarray]  # time, median, lower, upper for the h steps after the data
    files: tuple[Path, ...]
    run_dir: Path
    test_origins: int


class ForecastTask(Task):
    """Standardised windows of one series as a TaskData (quantile loss, one read-out per window)."""

    name = "forecast"

    def __init__(self, splits: tuple[Split, Split, Split], *, features: int, horizon: int, description: str):
        self.splits, self.features, self.horizon, self.description = splits, features, horizon, description

    def build(self, *, seed: int) -> TaskData:
        return TaskData("forecast", *self.splits, input_size=self.features,
                        output_size=self.horizon * len(QUANTILES), loss="quantile", readout="last",
                        metric="pinball", lower_is_better=True, description=self.description)


def minimum_rows(lookback: int, horizon: int) -> int:
    """Rows needed for ≥ 8 training, 1 validation and 1 test origin with gaps of h between the parts."""
    return lookback + 3 * horizon + 9


def split_origins(series_length: int, config: ForecastConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first, last = config.lookback - 1, series_length - config.horizon - 1
    origins = np.arange(first, last + 1)
    n = len(origins)
    n_test = max(1, math.ceil(config.test_fraction * n))
    n_val = max(1, math.ceil(config.validation_fraction * n))
    gap = config.horizon  # the last training target (o + h) precedes the first validation origin's
    test = origins[n - n_test :]
    validation = origins[n - n_test - gap - n_val : n - n_test - gap]
    train = origins[: n - n_test - 2 * gap - n_val]
    return train, validation, test


@dataclass(frozen=True)
class Windows:
    """Model-ready windows of one series at some forecast origins. The target in data (model-scale)
    units is offset + scale × what the model reads and outputs, per window."""

    inputs: np.ndarray  # (N, L, F'), float
    targets: np.ndarray  # (N, h), scaled as the inputs' target column
    offset: np.ndarray  # (N,)
    scale: np.ndarray  # (N,)
    origins: np.ndarray  # (N,), index of each window's last observed row

    def split(self) -> Split:
        return Split(torch.tensor(self.inputs, dtype=torch.float32), torch.tensor(self.targets, dtype=torch.float32),
                     groups=torch.tensor(self.origins))


class SeriesScaler:
    """How one series' values (T, F) — target in column 0 — become model inputs, fitted on the rows
    its training windows touch.

    scaling="series": every column standardised with those rows' mean and std.
    scaling="window" (DeepAR's mean scaling, Salinas et al. 2020): the target in each window, inputs
      and the h values to predict alike, is divided by ν = mean |y| over the window's L steps
      (at least WINDOW_SCALE_FLOOR × the training std), and log(ν / training std) is one more input,
      so the model sees the shape of the recent past and still knows its level. For a series whose
      level moves by orders of magnitude (epidemics before and after a vaccine). Covariates are
      standardised as with "series".
    """

    def __init__(self, values: np.ndarray, *, fitted_rows: int, config: ForecastConfig):
        fitted = values[:fitted_rows]
        self.mean, std = fitted.mean(0), fitted.std(0)
        self.std = np.where(std > 0, std, 1.0)
        self.values, self.config = values, config
        self.standardised = (values - self.mean) / self.std
        self.features = values.shape[1] + (config.scaling == "window")

    def windows(self, origins: np.ndarray, *, with_targets: bool = True) -> Windows:
        config, values = self.config, self.values
        lookback, horizon = config.lookback, config.horizon
        inputs, _ = make_windows(self.standardised, lookback=lookback, horizon=0, origins=origins)
        future = (make_windows(values, lookback=lookback, horizon=horizon, origins=origins)[1] if with_targets
                  else np.zeros((len(origins), horizon)))  # the future past the data: only its inputs exist
        if config.scaling == "series":
            offset = np.full(len(origins), self.mean[0])
            scale = np.full(len(origins), self.std[0])
        else:
            recent = make_windows(values[:, :1], lookback=lookback, horizon=0, origins=origins)[0][..., 0]  # (N, L)
            scale = np.maximum(np.abs(recent).mean(1), WINDOW_SCALE_FLOOR * self.std[0])
            offset = np.zeros(len(origins))
            inputs[:, :, 0] = recent / scale[:, None]
            level = np.broadcast_to(np.log(scale / self.std[0])[:, None, None], (len(origins), lookback, 1))
            inputs = np.concatenate([inputs, level], axis=2)
        targets = (future - offset[:, None]) / scale[:, None]
        return Windows(inputs, targets, offset, scale, np.asarray(origins))


def standardised_windows(values: np.ndarray, config: ForecastConfig):
    """The time-ordered (train, validation, test) Windows of `values` (T, F) — target in column 0 —
    scaled by a SeriesScaler fitted on the rows a training window touches. Returns (windows, scaler)."""
    origins = split_origins(len(values), config)
    scaler = SeriesScaler(values, fitted_rows=origins[0][-1] + config.horizon + 1, config=config)
    return tuple(scaler.windows(o) for o in origins), scaler


def run_forecast(path, config: ForecastConfig, *, out_dir=".", run_dir=None, overwrite: bool = False,
                 progress: bool = True) -> ForecastResult:
    """The pipeline of the module docstring. With config.group, every group's series is split by
    time and standardised on its own (its training rows' mean and std), one GRU learns from all
    their windows, and the errors are over all groups' test origins together, in the data's units."""
    from grukit.models import ModelConfig
    from grukit.train import TrainConfig, fit

    if config.group:
        panel = read_panel(path, target=config.target, group=config.group, covariates=config.covariates,
                           time=config.time)
    else:
        panel = {"": read_series(path, target=config.target, covariates=config.covariates, time=config.time)}
    needed = minimum_rows(config.lookback, config.horizon)
    for name, series in panel.items():
        where = f"{path}" + (f" (group {name!r})" if name else "")
        if config.log and (series.values[:, 0] < 0).any():
            raise InputError(f"{where}: --log needs a target ≥ 0, but {config.target!r} has "
                             f"{series.values[:, 0].min():g}")
        if len(series) < needed:
            raise InputError(f"{where} has {len(series)} rows; lookback {config.lookback} and horizon "
                             f"{config.horizon} need at least {needed} (8 training, 1 validation, 1 test window and "
                             "gaps); shorten --lookback or --horizon")
    out_dir = Path(out_dir)
    files = (out_dir / "forecast.csv", out_dir / "forecast.png")
    for file in files:
        if file.exists() and not overwrite:
            raise InputError(f"{file} exists; pass --overwrite to replace it, or choose another --out")
    run_dir = Path(run_dir or f"runs/forecast-{config.target}-{clock.strftime('%Y%m%d-%H%M%S')}")

    def model_scale(values: np.ndarray) -> np.ndarray:  # what the GRU reads: the target log1p'd with --log
        return np.column_stack([np.log1p(values[:, 0]), values[:, 1:]]) if config.log else values

    windows = {name: standardised_windows(model_scale(series.values), config) for name, series in panel.items()}
    parts = [[part.split() for part in w[0]] for w in windows.values()]  # per series: train, validation, test
    splits = tuple(Split(torch.cat([p[k].inputs for p in parts]), torch.cat([p[k].targets for p in parts]),
                         groups=torch.cat([p[k].groups for p in parts])) for k in range(3))
    first = next(iter(windows.values()))[1]
    task = ForecastTask(splits, features=first.features, horizon=config.horizon,
                        description=f"forecast {config.target!r}, {config.horizon} steps")
    data = task.build(seed=config.seed)
    train_config = TrainConfig(max_epochs=config.epochs, batch_size=config.batch_size,
                               learning_rate=config.learning_rate, early_stopping=config.patience, seed=config.seed,
                               progress=progress)
    result = fit(task, data, ModelConfig(hidden_size=config.hidden_size), train_config, run_dir)
    model = _load_best(result.best_checkpoint, data)

    def predict(chosen: Windows) -> np.ndarray:  # (N, h, Q), data units
        with torch.no_grad():
            out = model(torch.tensor(chosen.inputs, dtype=torch.float32)).numpy()
        out = np.sort(out.reshape(len(out), config.horizon, len(QUANTILES)), axis=-1)  # lower ≤ median ≤ upper
        quantiles = chosen.offset[:, None, None] + chosen.scale[:, None, None] * out
        return np.expm1(quantiles) if config.log else quantiles

    naive_name = f"seasonal naive (m={config.season})"
    truths, fitted, naive, ets, futures, test_origins = [], {}, [], [], {}, {}
    for name, series in panel.items():
        (train, _, test), scaler = windows[name]
        y = series.values[:, 0]
        test_origins[name] = test.origins
        truths.append(np.stack([y[o + 1 : o + 1 + config.horizon] for o in test.origins]))  # (N, h)
        fitted[name] = predict(test)
        naive.append(seasonal_naive(y, test.origins, horizon=config.horizon, season=config.season))
        ets.append(ets_forecasts(y, test.origins, fit_until=int(train.origins[-1]), horizon=config.horizon,
                                 season=config.season))
        future = predict(scaler.windows(np.array([len(y) - 1]), with_targets=False))[0]  # (h, Q)
        futures[name] = {"time": series.future_times(config.horizon), "median": future[:, 1],
                         "lower": future[:, 0], "upper": future[:, 2]}
    truth, gru = np.concatenate(truths), np.concatenate(list(fitted.values()))
    scores = {"GRU (median)": _errors(gru[..., 1], truth) | {"coverage_80": float(
        ((truth >= gru[..., 0]) & (truth <= gru[..., 2])).mean())}}
    scores[naive_name] = _errors(np.concatenate(naive), truth)
    scores["ETS"] = _errors(np.concatenate(ets), truth)

    _write_outputs(files, panel, config, futures, test_origins, fitted)
    summary = {"test": scores, "test_origins": len(truth), "groups": len(panel) if config.group else None,
               "horizon": config.horizon, "lookback": config.lookback}
    write_text_atomic(run_dir / "forecast_metrics.json", json.dumps(summary, indent=2))
    future_table = futures[""] if not config.group else {
        key: np.concatenate([f[key] for f in futures.values()]) for key in ("time", "median", "lower", "upper")}
    return ForecastResult(scores, future_table, files, run_dir, len(truth))


def error_table(result: ForecastResult, *, title: str | None = None, digits: str = ".4g"):
    """A rich Table of each predictor's MAE, RMSE and (for the GRU) 80% interval coverage."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("predictor", "MAE", "RMSE", "80% interval coverage"):
        table.add_column(column, justify="left" if column == "predictor" else "right")
    for name, scores in result.test.items():
        coverage = scores.get("coverage_80")
        table.add_row(name, format(scores["mae"], digits), format(scores["rmse"], digits),
                      "" if coverage is None else f"{100 * coverage:.0f}%")
    return table


def _load_best(checkpoint: Path, data: TaskData):
    from grukit.models import ModelConfig, SequenceModel

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = SequenceModel(ModelConfig(**state["hyper_parameters"]["model_config"]))
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    return model.eval()


def _errors(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    error = prediction - truth
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean()))}


def seasonal_naive(y: np.ndarray, origins, *, horizon: int, season: int) -> np.ndarray:
    """ŷ_{o+k} = y_{o+k−m⌈k/m⌉} for k = 1 … h: (N, h)."""
    k = np.arange(1, horizon + 1)
    lag = season * np.ceil(k / season).astype(int)
    return np.stack([y[o + k - lag] for o in origins])


def ets_forecasts(y: np.ndarray, origins, *, fit_until: int, horizon: int, season: int) -> np.ndarray:
    """ETS (A, Ad, A/N) fitted on y[: fit_until + 1], run with those parameters to each origin: (N, h)."""
    import warnings

    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    spec = dict(error="add", trend="add", damped_trend=True,
                seasonal="add" if season > 1 else None, seasonal_periods=season if season > 1 else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter; the fit is used as it is
        params = ETSModel(y[: fit_until + 1], **spec).fit(disp=False).params
        return np.stack([ETSModel(y[: o + 1], **spec).smooth(params).forecast(horizon) for o in origins])


PLOTTED_GROUPS = 4  # forecast.png shows the first few groups of a panel, one panel each


def _write_outputs(files, panel: dict[str, Series], config: ForecastConfig, futures: dict, test_origins: dict,
                   fitted: dict):
    """forecast.csv (with a group column for a panel) and forecast.png, each to a staging file
    beside it, then renamed over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    csv_path, png_path = files
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    first = next(iter(panel.values()))
    frames = []
    for name, table in futures.items():
        frame = pd.DataFrame({first.time_name or "step": table["time"], f"{config.target}_median": table["median"],
                              f"{config.target}_lower_10": table["lower"], f"{config.target}_upper_90": table["upper"]})
        if config.group:
            frame.insert(0, config.group, name)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    shown_groups = list(panel)[:PLOTTED_GROUPS]
    figure, axes = plt.subplots(len(shown_groups), 1, figsize=(10, 4.5 * len(shown_groups)), squeeze=False)
    for axis, name in zip(axes[:, 0], shown_groups):
        series, table = panel[name], futures[name]
        shown = max(0, len(series) - max(6 * config.horizon, 3 * config.lookback))
        axis.plot(series.time[shown:], series.values[shown:, 0], color="black", lw=1, label=f"{config.target} (data)")
        # one-step-ahead ... h-step fits on the test origins: the first step of each
        first_step = fitted[name][:, 0]
        test_time = series.time[np.asarray(test_origins[name]) + 1]
        axis.plot(test_time, first_step[:, 1], color="tab:orange", lw=1, label="GRU on the test period (1 step ahead)")
        axis.plot(table["time"], table["median"], color="tab:blue", lw=2, marker="o", markersize=3,
                  label="forecast (median)")
        if config.horizon == 1:  # one step: the interval as an error bar (a band of one point is invisible)
            axis.errorbar(table["time"], table["median"], yerr=[table["median"] - table["lower"],
                          table["upper"] - table["median"]], color="tab:blue", alpha=0.5, capsize=4,
                          label="80% interval (quantiles 0.1–0.9)")
        else:
            axis.fill_between(table["time"], table["lower"], table["upper"], color="tab:blue", alpha=0.25,
                              label="80% interval (quantiles 0.1–0.9)")
        axis.set_title(f"{config.target}{f' ({name})' if name else ''}: {config.horizon}-step GRU forecast from the "
                       f"last {config.lookback} steps")
        axis.set_xlabel(series.time_name or "step")
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    staged = []
    try:
        for target, write in ((csv_path, lambda p: frame.to_csv(p, index=False)),
                              (png_path, lambda p: figure.savefig(p, dpi=110, format="png"))):
            handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(handle)
            staged.append((staging, target))
            write(staging)
        for staging, target in staged:
            os.replace(staging, target)
    finally:
        plt.close(figure)
        for staging, _ in staged:
            Path(staging).unlink(missing_ok=True)
