"""`grukit forecast … --backtest`: rolling-origin evaluation of the GRU and the baselines alike.

For each series the backtest origins are the last row that leaves a whole horizon after it and the
`windows − 1` before it, `step` rows apart (default step h): o_N = T − h − 1, o_k = o_N − (N − k)·S.
Without refit one GRU is trained (`forecast.fit_and_score`) on the windows whose targets all precede
the first origin (validation from that period only), then forecasts from every origin reading the
data up to it; ETS is fitted on the same rows and run to each origin; seasonal naive needs no
fitting. With refit both are trained anew for each origin on everything before it (one run
directory per origin). MASE's scale is the in-sample seasonal-naive error of the rows the training
windows touch, the same for every window and method.

Written together, each to a staging file renamed into place once all are written:

    backtest.csv  series, method, origin (the time of the last observed row), step (1 … h), time,
                  actual, median, and one q<level> column per quantile (q0.1, q0.5, q0.9; empty for
                  the baselines, which give a point forecast)
    metrics.csv   series, method, mase, smape, mae, rmse, pinball, coverage_80 — one row per series
                  and method, plus the rows of series "all": the mean over series of MASE and sMAPE
    backtest.png  each series' forecasts from every origin against the actuals (first four series)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from grukit.app.forecast import Scored, check_outputs, fit_and_score, fresh_run_dir
from grukit.data.series import Series
from grukit.errors import InputError, check_positive
from grukit.forecasting.inputs import read_forecast_input
from grukit.forecasting.metrics import scale_free_means
from grukit.forecasting.windows import ForecastConfig, minimum_rows
from grukit.io.atomic import staged_file
from grukit.tasks.base import QUANTILES

METRICS = ("mase", "smape", "mae", "rmse", "pinball", "coverage_80")
PLOTTED_SERIES = 4


@dataclass(frozen=True)
class BacktestConfig:
    windows: int = 5  # N, origins per series
    step: int = 0  # S, rows between origins; 0: the horizon (non-overlapping targets)
    refit: bool = False  # train anew at every origin

    def __post_init__(self) -> None:
        check_positive(windows=self.windows)
        if self.step < 0:
            raise InputError(f"the backtest step must be ≥ 1 (0: the horizon), got {self.step}")


@dataclass(frozen=True)
class BacktestResult:
    metrics: dict[str, dict[str, dict[str, float]]]  # series → method → metric ("all": the scale-free means)
    files: tuple[Path, ...]
    run_dir: Path
    origins: int  # forecast origins in all


def backtest_origins(series: Series, config: ForecastConfig, backtest: BacktestConfig, *, where: str) -> np.ndarray:
    """The N origins of one series (module docstring); an InputError when they leave too little before them."""
    step = backtest.step or config.horizon
    last = len(series) - config.horizon - 1
    origins = last - step * np.arange(backtest.windows)[::-1]
    # rows before the first origin
    needed = minimum_rows(max(config.lookback, config.season), config.horizon) - config.horizon - 1
    if origins[0] < needed:
        rows = needed + step * (backtest.windows - 1) + config.horizon + 1
        raise InputError(f"{where} has {len(series)} rows; {backtest.windows} backtest windows {step} rows apart "
                         f"need at least {rows} ({needed} to train on before the first origin); use fewer --windows, "
                         "a smaller --step, or a shorter --lookback")
    return origins


def run_backtest(path, config: ForecastConfig, backtest: BacktestConfig, *, out_dir=".", run_dir=None,
                 overwrite: bool = False, progress: bool = True, panel: dict[str, Series] | None = None
                 ) -> BacktestResult:
    """The backtest of the module docstring; files under out_dir, training runs under run_dir."""
    if panel is None:
        panel = read_forecast_input(path, config, ahead=False)
    files = check_outputs(Path(out_dir), ("backtest.csv", "metrics.csv", "backtest.png"), overwrite=overwrite)
    run_dir = fresh_run_dir(run_dir, f"backtest-{config.target}", overwrite=overwrite)
    origins = {name: backtest_origins(series, config, backtest,
                                      where=f"{path}" + (f" (group {name!r})" if name else ""))
               for name, series in panel.items()}
    if not backtest.refit:
        scored = fit_and_score(panel, config, run_dir, progress=progress, tests=origins, data_path=path)
    else:
        runs = [fit_and_score(panel, config, run_dir / f"origin-{k + 1}", progress=progress,
                              tests={name: o[k : k + 1] for name, o in origins.items()}, data_path=path)
                for k in range(backtest.windows)]
        scored = {name: _joined([run[name] for run in runs]) for name in panel}
    metrics = {_series_name(name, config): one.metrics(config.season) for name, one in scored.items()}
    if len(metrics) > 1:
        metrics["all"] = scale_free_means(metrics)
    _write(files, panel, config, scored, metrics)
    return BacktestResult(metrics, files, run_dir, sum(len(o) for o in origins.values()))


def backtest_table(result: BacktestResult, *, season: int):
    """A rich Table of each series' and method's backtest errors ("all": the scale-free means)."""
    from rich.table import Table

    table = Table()
    for heading in ("series", "method", f"MASE (m={season})", "sMAPE", "MAE", "RMSE", "80% coverage"):
        table.add_column(heading, justify="left" if heading in ("series", "method") else "right")
    for series, methods in result.metrics.items():
        for method, values in methods.items():
            cells = [format(values[k], digits) if values.get(k) is not None else ""
                     for k, digits in (("mase", ".3f"), ("smape", ".1f"), ("mae", ".4g"), ("rmse", ".4g"))]
            cover = values.get("coverage_80")
            table.add_row(series, method, *cells, "" if cover is None else f"{100 * cover:.0f}%")
    return table


def _joined(parts: list[Scored]) -> Scored:
    """One Scored from the refit runs' one-origin parts (MASE's scale: the first run's history)."""
    return replace(parts[0], origins=np.concatenate([p.origins for p in parts]),
                   truth=np.concatenate([p.truth for p in parts]),
                   quantiles=np.concatenate([p.quantiles for p in parts]),
                   baselines={k: np.concatenate([p.baselines[k] for p in parts]) for k in parts[0].baselines})


def _series_name(name: str, config: ForecastConfig) -> str:
    return name or config.target


def _write(files, panel: dict[str, Series], config: ForecastConfig, scored: dict[str, Scored], metrics: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    csv_path, metrics_path, png_path = files
    levels = [f"q{level:g}" for level in QUANTILES]
    rows, metric_rows = [], []
    for name, one in scored.items():
        series, label = panel[name], _series_name(name, config)
        steps = np.arange(1, config.horizon + 1)
        for k, origin in enumerate(one.origins):
            common = {"series": label, "origin": series.time[origin], "step": steps,
                      "time": series.time[origin + steps], "actual": one.truth[k]}
            rows.append(pd.DataFrame({**common, "method": "GRU (median)", "median": one.quantiles[k, :, 1],
                                      **{q: one.quantiles[k, :, j] for j, q in enumerate(levels)}}))
            for method, forecast in one.baselines.items():
                rows.append(pd.DataFrame({**common, "method": method, "median": forecast[k]}))
    table = pd.concat(rows, ignore_index=True)[["series", "method", "origin", "step", "time", "actual", "median",
                                                  *levels]]
    for label, methods in metrics.items():
        for method, values in methods.items():
            metric_rows.append({"series": label, "method": method, **{k: values.get(k) for k in METRICS}})
    shown = list(scored)[:PLOTTED_SERIES]
    figure, axes = plt.subplots(len(shown), 1, figsize=(10, 3.8 * len(shown)), squeeze=False)
    for axis, name in zip(axes[:, 0], shown, strict=False):
        one, series = scored[name], panel[name]
        start = max(0, int(one.origins[0]) - 3 * config.horizon)
        axis.plot(series.time[start:], series.values[start:, 0], color="black", lw=1, label="actual")
        for k, origin in enumerate(one.origins):
            times = series.time[origin + np.arange(1, config.horizon + 1)]
            axis.fill_between(times, one.quantiles[k, :, 0], one.quantiles[k, :, 2], color="tab:blue", alpha=0.2,
                              label="GRU 80% interval" if k == 0 else None)
            axis.plot(times, one.quantiles[k, :, 1], color="tab:blue", lw=1.5, label="GRU median" if k == 0 else None)
            axis.axvline(series.time[origin], color="grey", lw=0.6, ls=":")
        axis.set_title(f"{_series_name(name, config)}: {len(one.origins)} backtest forecasts of {config.horizon} "
                       "steps (dotted: each origin)")
        axis.set_xlabel(series.time_name or "step")
        axis.set_ylabel(config.target)
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    try:
        with (staged_file(csv_path) as csv_staging, staged_file(metrics_path) as metrics_staging,
              staged_file(png_path) as png_staging):
            table.to_csv(csv_staging, index=False)
            pd.DataFrame(metric_rows).to_csv(metrics_staging, index=False)
            figure.savefig(png_staging, dpi=110, format="png")
    finally:
        plt.close(figure)
