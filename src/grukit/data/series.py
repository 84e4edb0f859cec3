"""A user's CSV as a regularly indexed time series, checked, then cut into forecasting windows.

`read_series(path, target=, covariates=(), time=None)` reads one series: a target column, optional
covariate columns and a time column (named, or the first of date/time/timestamp/ds/week/year
found); `read_panel(..., group=)` reads several from one long file, one per value of the group
column. The file is read by `data.csv` (delimiter sniffed, times parsed without guessing day
from month, the calendar spacing inferred). Every problem is an `InputError` that names the file,
the column and the row (rows counted as in the file, header = row 1): a missing column, a
non-numeric or empty value, an unparseable, duplicate or unsorted time, a time off the series'
regular grid, a missing row (a gap in the calendar) unless `fill` names a rule for it:

    fill="error"     (default) the first missing time is named
    fill="previous"  a missing row repeats the row before it (every column)
    fill="linear"    a missing row is interpolated linearly between its neighbours (every column)

Empty cells are not imputed (GRU-D is the model for gappy data); the error says where the first is.

`make_windows(values, lookback=L, horizon=h)`: for each forecast origin o (the last observed step),
inputs = rows o−L+1 … o of [target, covariates], outputs = target o+1 … o+h. Covariates are used
from the past only, so a forecast never needs future covariates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grukit.data.csv import Frequency, infer_frequency, parse_times, read_text_table
from grukit.errors import InputError, check_choice

TIME_COLUMNS = ("date", "time", "timestamp", "ds", "week", "year")
FILLS = ("error", "previous", "linear")


@dataclass(frozen=True)
class Series:
    values: np.ndarray  # (T, 1 + C) float64: the target, then the covariates
    time: np.ndarray  # (T,) datetime64 or float64 (row numbers when the file has no time column)
    target: str
    covariates: tuple[str, ...]
    time_name: str | None
    frequency: Frequency = Frequency("steps of 1", step=1.0)
    filled: int = 0  # rows added by the fill rule

    def __len__(self) -> int:
        return self.values.shape[0]

    def future_times(self, horizon: int) -> np.ndarray:
        """The next `horizon` time stamps, on the series' calendar (`data.csv.Frequency`)."""
        return self.frequency.future(self.time[-1], horizon)


def read_series(path, *, target: str, covariates=(), time: str | None = None, dayfirst: bool | None = None,
                fill: str = "error") -> Series:
    """One series from a CSV file (see the module docstring for the checks)."""
    frame, time = _read_frame(path, columns=[target, *covariates], time=time)
    return _series(frame, Path(path), target=target, covariates=tuple(covariates), time=time, dayfirst=dayfirst,
                   fill=fill)


def read_panel(path, *, target: str, group: str, covariates=(), time: str | None = None,
               dayfirst: bool | None = None, fill: str = "error") -> dict[str, Series]:
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
    return {name: _series(frame[names == name], Path(path), target=target, covariates=tuple(covariates), time=time,
                          dayfirst=dayfirst, fill=fill, group=name)
            for name in dict.fromkeys(names)}


def _read_frame(path, *, columns: list[str], time: str | None):
    frame = read_text_table(path)
    if time is None:
        time = next((c for c in frame.columns if c.strip().lower() in TIME_COLUMNS), None)
    for column in [*columns, *([time] if time else [])]:
        if column not in frame.columns:
            hint = (" (the file looks ;-separated with one column: check its delimiter)"
                    if len(frame.columns) == 1 and ";" in frame.columns[0] else "")
            raise InputError(f"{path} has no column {column!r}; its columns: {', '.join(frame.columns)}{hint}")
    return frame, time


def _series(frame, path: Path, *, target: str, covariates: tuple[str, ...], time: str | None,
            dayfirst: bool | None = None, fill: str = "error", group: str | None = None) -> Series:
    """The checked Series of `frame`'s rows; row numbers in messages are the file's (index + 2)."""
    import pandas as pd

    check_choice("fill", fill, FILLS)
    where = f"{path}" + (f" (group {group!r})" if group else "")
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
    if not time:
        return Series(values, np.arange(len(frame), dtype=float), target, tuple(covariates), time)
    text = frame[time].str.strip()
    stamps = parse_times(text, where=where, column=time, rows=rows, dayfirst=dayfirst)
    _check_order(stamps, text, where=where, column=time, rows=rows)
    frequency = infer_frequency(stamps, where=where, column=time, rows=rows)
    missing = frequency.missing(stamps)
    if len(missing) and fill == "error":
        after = int(np.searchsorted(stamps, missing[0])) - 1
        raise InputError(f"{where}: the {frequency.name} series has no row for {_shown(missing[0])} (between row "
                         f"{rows[after]}, {text.iloc[after]}, and row {rows[after + 1]}, {text.iloc[after + 1]}); "
                         f"{len(missing)} time{'s are' if len(missing) > 1 else ' is'} missing in all: add the rows, "
                         "or pass --fill previous or --fill linear")
    if len(missing):
        grid = frequency.grid(stamps[0], stamps[-1])
        table = pd.DataFrame(values).set_axis(pd.Index(np.searchsorted(grid, stamps))).reindex(range(len(grid)))
        table = table.ffill() if fill == "previous" else table.interpolate(method="linear")
        values, stamps = table.to_numpy(dtype=float), grid
    return Series(values, stamps, target, tuple(covariates), time, frequency, len(missing))


def _check_order(stamps: np.ndarray, text, *, where: str, column: str, rows: np.ndarray) -> None:
    steps = np.diff(stamps)
    zero = steps == steps.dtype.type(0)
    backwards = steps < steps.dtype.type(0)
    if zero.any():
        row = np.flatnonzero(zero)[0] + 1
        raise InputError(f"{where}: column {column!r} repeats the time {text.iloc[row]!r} at row {rows[row]}")
    if backwards.any():
        row = np.flatnonzero(backwards)[0] + 1
        raise InputError(f"{where}: the times in {column!r} are not sorted: row {rows[row]} ({text.iloc[row]}) comes "
                         f"before row {rows[row - 1]} ({text.iloc[row - 1]}); sort the file by time")


def _shown(stamp) -> str:
    import pandas as pd

    if isinstance(stamp, np.datetime64):
        moment = pd.Timestamp(stamp)
        return str(moment.date()) if moment == moment.normalize() else str(moment)
    return f"{float(stamp):g}"


def make_windows(values: np.ndarray, *, lookback: int, horizon: int, origins: np.ndarray):
    """inputs (N, L, F) and targets (N, h) for the given origins (indices of the last observed step)."""
    inputs = np.stack([values[o - lookback + 1 : o + 1] for o in origins])
    targets = np.stack([values[o + 1 : o + 1 + horizon, 0] for o in origins])
    return inputs, targets
