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

Three kinds of covariates:

    covariates  past only: read up to each forecast origin, so a forecast never needs their future
    known       known in advance (a planned intervention, a holiday, a price list): their values for
                the rows after the last target row are read from the file's last rows, whose target
                cell is empty, or from a second file (`future=`: its time, the known columns and, for
                a panel, the group); those rows must continue the series' calendar, row by row
    static      attributes of a series in a panel (a region, a store's size): one value per group,
                every row of the group agreeing (a number, or text read as a category)

`make_windows(values, lookback=L, horizon=h)`: for each forecast origin o (the last observed step),
inputs = rows o−L+1 … o of [target, covariates], outputs = target o+1 … o+h.
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
    known: tuple[str, ...] = ()  # the last len(known) columns of values: covariates known in advance
    future_known: np.ndarray | None = None  # (R, len(known)) their values in the R rows after the last target row
    static: dict[str, str] | None = None  # a panel's series: static column → its value (text, as in the file)

    def __len__(self) -> int:
        return self.values.shape[0]

    def future_times(self, horizon: int) -> np.ndarray:
        """The next `horizon` time stamps, on the series' calendar (`data.csv.Frequency`)."""
        return self.frequency.future(self.time[-1], horizon)


def read_series(path, *, target: str, covariates=(), known=(), time: str | None = None,
                dayfirst: bool | None = None, fill: str = "error", future=None) -> Series:
    """One series from a CSV file (see the module docstring for the checks); `future`: a second file
    with the known covariates' values after the last target row."""
    frame, time = _read_frame(path, columns=[target, *covariates, *known], time=time)
    ahead = _future_frame(future, known=known, time=time, group=None)
    return _series(frame, Path(path), target=target, covariates=tuple(covariates), known=tuple(known), time=time,
                   dayfirst=dayfirst, fill=fill, future=ahead)


def read_panel(path, *, target: str, group: str, covariates=(), known=(), static=(), time: str | None = None,
               dayfirst: bool | None = None, fill: str = "error", future=None) -> dict[str, Series]:
    """Several series in one long CSV file: `group` names the series each row belongs to (a state,
    a country, a store). Each group's rows are checked as one series (its times sorted, no repeats),
    with the file's own row numbers in every message. Groups keep their order of first appearance."""
    frame, time = _read_frame(path, columns=[target, *covariates, *known, *static, group], time=time)
    if group in (target, *covariates, *known, *static) or group == time:
        raise InputError(f"the group column {group!r} is also the target, a covariate or the time")
    names = _group_names(frame, group, path)
    ahead = _future_frame(future, known=known, time=time, group=group)
    ahead_names = None if ahead is None else _group_names(ahead, group, ahead.attrs["path"])
    if ahead_names is not None and set(ahead_names) - set(names):
        stray = next(name for name in ahead_names if name not in set(names))
        raise InputError(f"{ahead.attrs['path']}: group {stray!r} is not a group of {path}")
    return {name: _series(frame[names == name], Path(path), target=target, covariates=tuple(covariates),
                          known=tuple(known), static=tuple(static), time=time, dayfirst=dayfirst, fill=fill,
                          group=name, future=None if ahead is None else _keep_attrs(ahead[ahead_names == name], ahead))
            for name in dict.fromkeys(names)}


def _group_names(frame, group: str, path):
    names = frame[group].str.strip()
    if (names == "").any():
        row = int(np.flatnonzero((names == "").to_numpy())[0])
        raise InputError(f"{path}: column {group!r} has an empty value at row {row + 2}")
    return names


def _keep_attrs(part, whole):
    part.attrs.update(whole.attrs)
    return part


def _future_frame(future, *, known, time: str | None, group: str | None):
    """The second file of known-future values (None: none given), its columns checked."""
    if future is None:
        return None
    if not known:
        raise InputError(f"{future} holds future values of known covariates, but none is named (--known COLUMNS)")
    frame, _ = _read_frame(future, columns=[*known, *([group] if group else [])], time=time)
    frame.attrs["path"] = Path(future)
    return frame


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
            known: tuple[str, ...] = (), static: tuple[str, ...] = (), dayfirst: bool | None = None,
            fill: str = "error", group: str | None = None, future=None) -> Series:
    """The checked Series of `frame`'s rows; row numbers in messages are the file's (index + 2).
    With `known` columns, the rows after the last non-empty target cell are the future rows."""
    import pandas as pd

    check_choice("fill", fill, FILLS)
    where = f"{path}" + (f" (group {group!r})" if group else "")
    columns = [target, *covariates, *known]
    if len(set(columns + list(static))) != len(columns) + len(static):
        repeated = next(c for c in columns + list(static) if (columns + list(static)).count(c) > 1)
        raise InputError(f"the column {repeated!r} is named twice among the target, covariates, known and static "
                         "columns")
    ahead = frame.iloc[:0]
    if known:
        filled = np.flatnonzero((frame[target].str.strip() != "").to_numpy())
        end = int(filled[-1]) + 1 if len(filled) else 0
        frame, ahead = frame.iloc[:end], frame.iloc[end:]
        if len(ahead) and future is not None:
            raise InputError(f"{where} has rows after its last {target!r} value and {future.attrs['path']} gives "
                             "future values too: give them in one place")
    if len(frame) == 0:
        raise InputError(f"{where} has no rows with a {target!r} value")
    rows = frame.index.to_numpy() + 2  # header = row 1
    empty = np.flatnonzero((frame[target].str.strip() == "").to_numpy())
    if not known and len(empty) and (frame[target].str.strip().iloc[empty[0]:] == "").all():
        raise InputError(f"{path}: column {target!r} is empty from row {rows[empty[0]]} to the end: rows after the "
                         "last target value hold the future of covariates known in advance; name them with --known, "
                         "or drop those rows")
    values = _numbers(frame, columns, where=where, rows=rows)
    attributes = _static(frame, static, where=where, rows=rows)
    future_known = None
    if known:
        future_where, future_rows = (f"{path}", ahead.index.to_numpy() + 2) if future is None else (
            f"{future.attrs['path']}", future.index.to_numpy() + 2)
        ahead = ahead if future is None else future
        future_known = _numbers(ahead, list(known), where=future_where, rows=future_rows,
                                hint=" (the rows after the last target value hold the known covariates' future)")
    if not time:
        return Series(values, np.arange(len(frame), dtype=float), target, tuple(covariates), time, known=known,
                      future_known=future_known, static=attributes)
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
    if known and len(ahead):
        _check_continues(ahead, stamps[-1], frequency, where=future_where, column=time, rows=future_rows,
                         dayfirst=dayfirst)
    return Series(values, stamps, target, tuple(covariates), time, frequency, len(missing), known=known,
                  future_known=future_known, static=attributes)


def _numbers(frame, columns: list[str], *, where: str, rows: np.ndarray, hint: str = "") -> np.ndarray:
    """(len(frame), len(columns)) float64 of the columns' cells; an InputError for an empty or
    non-numeric one."""
    import pandas as pd

    values = np.empty((len(frame), len(columns)))
    for k, column in enumerate(columns):
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            value = text.iloc[bad[0]]
            what = "an empty value" if value == "" else f"a non-numeric value {value!r}"
            raise InputError(f"{where}: column {column!r} has {what} at row {rows[bad[0]]}"
                             + (hint or ("" if value != "" else " (missing values are not imputed; fill or drop "
                                         "them)")))
        values[:, k] = numbers
    return values


def _static(frame, static: tuple[str, ...], *, where: str, rows: np.ndarray) -> dict[str, str] | None:
    """{column: the one value} of a group's static columns; an InputError where it is empty or changes."""
    if not static:
        return None
    attributes = {}
    for column in static:
        text = frame[column].str.strip()
        if (text == "").any():
            raise InputError(f"{where}: static column {column!r} has an empty value at row "
                             f"{rows[int(np.flatnonzero((text == '').to_numpy())[0])]}")
        changed = np.flatnonzero((text != text.iloc[0]).to_numpy())
        if len(changed):
            raise InputError(f"{where}: static column {column!r} changes from {text.iloc[0]!r} (row {rows[0]}) to "
                             f"{text.iloc[changed[0]]!r} (row {rows[changed[0]]}); a static attribute has one value "
                             "per series")
        attributes[column] = text.iloc[0]
    return attributes


def _check_continues(ahead, last, frequency: Frequency, *, where: str, column: str, rows: np.ndarray,
                     dayfirst: bool | None) -> None:
    """The future rows' times must be the calendar's next ones after the last target row, in order."""
    text = ahead[column].str.strip()
    stamps = parse_times(text, where=where, column=column, rows=rows, dayfirst=dayfirst)
    expected = frequency.future(last, len(stamps))
    wrong = np.flatnonzero(stamps != expected)
    if len(wrong):
        k = int(wrong[0])
        raise InputError(f"{where}: row {rows[k]} ({text.iloc[k]}) should be {_shown(expected[k])}, "
                         f"{'the next' if k == 0 else f'{k + 1} steps'} ({frequency.name}) after the last target "
                         f"row ({_shown(last)}): future rows continue the calendar without gaps")


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
