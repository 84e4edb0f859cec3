"""A user's CSV as a regularly indexed time series, checked, then cut into forecasting windows.

`read_series(path, target=, covariates=(), time=None)` reads one series: a target column, optional
covariate columns and a time column (named, or the first of date/time/timestamp/ds/week/year
found); `read_panel(..., group=)` reads several from one long file, one per value of the group
column. Every problem is an `InputError` that names the file, the column and the row (rows
counted as in the file, header = row 1): a missing column, a non-numeric or empty value, an
unparseable, duplicate or unsorted time. Missing values are not imputed here (GRU-D is the model
for gappy data); the error says where the first one is.

`make_windows(values, lookback=L, horizon=h)`: for each forecast origin o (the last observed step),
inputs = rows o−L+1 … o of [target, covariates], outputs = target o+1 … o+h. Covariates are used
from the past only, so a forecast never needs future covariates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grukit.errors import InputError

TIME_COLUMNS = ("date", "time", "timestamp", "ds", "week", "year")


@dataclass(frozen=True)
class Series:
    values: np.ndarray  # (T, 1 + C) float64: the target, then the covariates
    time: np.ndarray  # (T,) datetime64 or float64 (row numbers when the file has no time column)
    target: str
    covariates: tuple[str, ...]
    time_name: str | None

    def __len__(self) -> int:
        return self.values.shape[0]

    def future_times(self, horizon: int) -> np.ndarray:
        """The next `horizon` time stamps, continuing the series' (median) spacing."""
        step = np.median(np.diff(self.time)) if len(self.time) > 1 else 1
        return self.time[-1] + step * np.arange(1, horizon + 1)


def read_series(path, *, target: str, covariates=(), time: str | None = None) -> Series:
    """One series from a CSV file (see the module docstring for the checks)."""
    frame, time = _read_frame(path, columns=[target, *covariates], time=time)
    return _series(frame, Path(path), target=target, covariates=tuple(covariates), time=time)


def read_panel(path, *, target: str, group: str, covariates=(), time: str | None = None) -> dict[str, Series]:
    """Several series in one long CSV file: `group` names the series each row belongs to (a state,
    a country, a store). Each group's rows are checked as one series (its times sorted, no repeats),
    with the file's own row numbers in every message. Groups keep their order of first appearance."""
    frame, time = _read_frame(path, columns=[target, *covariates, group], time=time)
    if group in (target, *covariates) or group == time:
        raise InputError(f"the group column {group!r} is also the target, a covariate or the time")
    names = frame[group].str.strip()
    if (names == "").any():
        row = int(np.flatnonzero((names == "").to_numpy())[0])
        raise InputError(f"{path}: column {group!r} has an empty value at row {row + 2}")
    return {name: _series(frame[names == name], Path(path), target=target, covariates=tuple(covariates), time=time)
            for name in dict.fromkeys(names)}


def _read_frame(path, *, columns: list[str], time: str | None):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as error:  # noqa: BLE001 - any parser failure is the user's file
        raise InputError(f"{path} is not a readable CSV file ({type(error).__name__}: {error})") from error
    if time is None:
        time = next((c for c in frame.columns if c.strip().lower() in TIME_COLUMNS), None)
    for column in [*columns, *([time] if time else [])]:
        if column not in frame.columns:
            raise InputError(f"{path} has no column {column!r}; its columns: {', '.join(frame.columns)}")
    return frame, time


def _series(frame, path: Path, *, target: str, covariates: tuple[str, ...], time: str | None) -> Series:
    """The checked Series of `frame`'s rows; row numbers in messages are the file's (index + 2)."""
    import pandas as pd

    columns = [target, *covariates]
    if len(set(columns)) != len(columns):
        raise InputError(f"the target {target!r} is also listed as a covariate")
    rows = frame.index.to_numpy() + 2  # header = row 1
    values = np.empty((len(frame), len(columns)))
    for k, column in enumerate(columns):
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            value = text.iloc[bad[0]]
            what = "an empty value" if value == "" else f"a non-numeric value {value!r}"
            raise InputError(f"{path}: column {column!r} has {what} at row {rows[bad[0]]}"
                             + ("" if value != "" else " (missing values are not imputed; fill or drop them)"))
        values[:, k] = numbers
    stamps = _parse_time(frame[time].str.strip(), path, time, rows) if time else np.arange(len(frame), dtype=float)
    return Series(values, stamps, target, tuple(covariates), time)


def _parse_time(text, path: Path, column: str, rows: np.ndarray) -> np.ndarray:
    import pandas as pd

    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and not text.str.contains("-").any():
        stamps = numbers.to_numpy(dtype=float)  # years, week numbers, hours
    else:
        parsed = pd.to_datetime(text, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            raise InputError(f"{path}: column {column!r} has an unreadable time {text.iloc[bad[0]]!r} at row "
                             f"{rows[bad[0]]}")
        stamps = parsed.to_numpy()
    steps = np.diff(stamps)
    zero = steps == steps.dtype.type(0)
    backwards = steps < steps.dtype.type(0)
    if zero.any():
        row = np.flatnonzero(zero)[0] + 1
        raise InputError(f"{path}: column {column!r} repeats the time {text.iloc[row]!r} at row {rows[row]}")
    if backwards.any():
        row = np.flatnonzero(backwards)[0] + 1
        raise InputError(f"{path}: the times in {column!r} are not sorted: row {rows[row]} ({text.iloc[row]}) comes "
                         f"before row {rows[row - 1]} ({text.iloc[row - 1]}); sort the file by time")
    return stamps


def make_windows(values: np.ndarray, *, lookback: int, horizon: int, origins: np.ndarray):
    """inputs (N, L, F) and targets (N, h) for the given origins (indices of the last observed step)."""
    inputs = np.stack([values[o - lookback + 1 : o + 1] for o in origins])
    targets = np.stack([values[o + 1 : o + 1 + horizon, 0] for o in origins])
    return inputs, targets
