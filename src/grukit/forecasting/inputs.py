"""The user's file as the series a forecaster reads: read, checked and sized before any training.

`read_forecast_input(path, config)` returns {group name: Series} ("" for a file of one series),
every problem an `InputError` naming the file, the column and the row — before torch is imported,
so a bad file is reported within a second.
"""

from __future__ import annotations

from grukit.data.series import Series, read_panel, read_series
from grukit.errors import InputError
from grukit.forecasting.windows import ForecastConfig, minimum_rows


def read_forecast_input(path, config: ForecastConfig, *, rows_needed: int | None = None, future=None,
                        ahead: bool = True) -> dict[str, Series]:
    """{group: Series} of the CSV file at `path`, each long enough for the config's windows: to train
    (the default) or `rows_needed` (a trained model forecasting new data needs its lookback).
    `future`: a second file of the known covariates' future values; `ahead`: the h steps after the
    data will be forecast, so known covariates need their values there (a backtest does not)."""
    common = dict(target=config.target, covariates=config.covariates, known=config.known, time=config.time,
                  dayfirst=config.dayfirst, fill=config.fill, future=future)
    panel = (read_panel(path, group=config.group, static=config.static, **common) if config.group
             else {"": read_series(path, **common)})
    needed = minimum_rows(max(config.lookback, config.season), config.horizon) if rows_needed is None else rows_needed
    for name, series in panel.items():
        where = f"{path}" + (f" (group {name!r})" if name else "")
        if config.log and (series.values[:, 0] < 0).any():
            raise InputError(f"{where}: --log needs a target ≥ 0, but {config.target!r} has "
                             f"{series.values[:, 0].min():g}")
        given = 0 if series.future_known is None else len(series.future_known)
        if config.known and ahead and given < config.horizon:
            raise InputError(f"{where}: a {config.horizon}-step forecast needs the known covariates "
                             f"{', '.join(map(repr, config.known))} for the {config.horizon} rows after the last "
                             f"{config.target!r} value; {given} such row{'s are' if given != 1 else ' is'} given: add "
                             "them to the file with the target empty, or pass them in a second file with --future")
        if len(series) < needed and rows_needed is not None:
            raise InputError(f"{where} has {len(series)} rows; the model reads the last {needed}")
        if len(series) < needed:
            raise InputError(f"{where} has {len(series)} rows; lookback {config.lookback} and horizon "
                             f"{config.horizon} need at least {needed} (8 training, 1 validation, 1 test window and "
                             "gaps); shorten --lookback or --horizon")
    return panel
