"""Reading a user's CSV without misreading it: the delimiter, the time column, the calendar.

Every CSV reader of grukit (`grukit forecast`, `grukit train --data`) goes through here, so they
agree on what a file means and refuse the same things, each with the file, column and row named
(rows counted as in the file, header = row 1):

* **delimiter**: ",", ";" or a tab, whichever splits the header line into the most columns. A
  ";"-separated file is read with "," as its decimal mark (the convention of spreadsheets that
  write ";"), so "3,5" is 3.5 there.
* **times** (`parse_times`): numbers (years, week numbers, hours: any unit), or dates and
  datetimes. ISO dates (2024-03-01, 2024-03, 2024-03-01 12:00) are read as such. Dates written
  day and month with "." "/" or "-" (01.03.2024, 3/1/2024) are read day-first when some first
  field exceeds 12 and month-first when some second field does; when no field tells (every one
  ≤ 12) the file is ambiguous and refused unless `dayfirst` says which. A column mixing numbers
  and text names its first cell of the minority kind.
* **calendar** (`infer_frequency`): the spacing of a regular series — integer (or any fixed
  numeric) steps, a fixed duration (hourly, daily, …), weekly, monthly, quarterly or yearly, the
  last three following the calendar (month starts stay month starts, month ends month ends) —
  from which future times continue (`Frequency.future`) and missing rows are found
  (`Frequency.missing`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grukit.errors import InputError

DELIMITERS = (",", ";", "\t")
NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
DAY_MONTH = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")


def read_text_table(path):
    """The file as a DataFrame of strings (empty cells ""), its delimiter sniffed from the header."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        with path.open(encoding="utf-8-sig") as handle:
            header = handle.readline()
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    delimiter = max(DELIMITERS, key=header.count)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=delimiter, encoding="utf-8-sig")
    except Exception as error:  # noqa: BLE001 - any parser failure is the user's file
        raise InputError(f"{path} is not a readable CSV file ({type(error).__name__}: {error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if delimiter == ";":  # decimal commas: "3,5" is 3.5
        frame = frame.apply(lambda column: column.str.replace(r"^(-?\d+),(\d+)$", r"\1.\2", regex=True))
    frame.attrs["delimiter"] = delimiter
    return frame


def parse_times(text, *, where: str, column: str, rows: np.ndarray, dayfirst: bool | None = None) -> np.ndarray:
    """(T,) float64 numbers or datetime64[ns] from the strings of a time column (module docstring).
    `where` names the file in messages; `rows` are the cells' rows in it."""
    import pandas as pd

    text = text.astype(str).str.strip()
    if len(text) == 0:
        return np.zeros(0)
    is_number = text.str.fullmatch(NUMBER).to_numpy()
    if is_number.all():
        return text.astype(float).to_numpy()
    if is_number.any():
        mostly_numbers = is_number.mean() >= 0.5
        minority = np.flatnonzero(~is_number if mostly_numbers else is_number)[0]
        raise InputError(f"{where}: column {column!r} mixes numbers and dates: row {rows[minority]} has "
                         f"{'text' if mostly_numbers else 'a number'} {text.iloc[minority]!r}")
    day_month = text.str.extract(DAY_MONTH)
    if day_month[0].notna().all():
        first, second = day_month[0].astype(int).to_numpy(), day_month[2].astype(int).to_numpy()
        if dayfirst is None:
            day_evidence, month_evidence = np.flatnonzero(first > 12), np.flatnonzero(second > 12)
            if len(day_evidence) and len(month_evidence):
                d, m = day_evidence[0], month_evidence[0]
                raise InputError(f"{where}: column {column!r} mixes day-first ({text.iloc[d]!r}, row {rows[d]}) and "
                                 f"month-first ({text.iloc[m]!r}, row {rows[m]}) dates")
            if not len(day_evidence) and not len(month_evidence):
                raise InputError(f"{where}: column {column!r} has dates like {text.iloc[0]!r} that read as day/month "
                                 "and as month/day alike; pass --dayfirst (31.12.2024) or --monthfirst (12/31/2024)")
            dayfirst = bool(len(day_evidence))
        day, month = (day_month[0], day_month[2]) if dayfirst else (day_month[2], day_month[0])
        year = day_month[3].astype(int)
        year = year.where(year >= 100, year + np.where(year < 70, 2000, 1900))  # 24 → 2024, 85 → 1985
        parsed = pd.to_datetime(year.astype(str) + "-" + month + "-" + day, format="%Y-%m-%d", errors="coerce")
        clock = text.str.extract(r"[ T](\d{1,2}:\d{2}(?::\d{2})?)$")[0]
        if clock.notna().any():
            clock = clock.fillna("0:00")
            parsed = parsed + pd.to_timedelta(clock.where(clock.str.count(":") == 2, clock + ":00"))
    else:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if parsed.isna().all():
            parsed = pd.to_datetime(text, format="mixed", errors="coerce", dayfirst=bool(dayfirst))
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise InputError(f"{where}: column {column!r} has an unreadable time {text.iloc[bad[0]]!r} at row "
                         f"{rows[bad[0]]}")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.to_numpy().astype("datetime64[ns]")


@dataclass(frozen=True)
class Frequency:
    """The spacing of a regular series: a calendar offset (dates) or a fixed step (numbers, durations)."""

    name: str  # "daily", "weekly", "monthly", "quarterly", "yearly", "hourly", "every 15 minutes", "steps of 1", …
    offset: object = None  # a pandas offset alias for calendar dates ("D", "W-MON", "MS", "ME", "QS-JAN", …)
    step: float | None = None  # numeric times: the step

    def grid(self, start, end) -> np.ndarray:
        """Every time from start to end (both included) on this spacing."""
        import pandas as pd

        if self.offset is None:
            count = int(round((float(end) - float(start)) / self.step))
            return float(start) + self.step * np.arange(count + 1)
        return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=self.offset).to_numpy().astype(
            "datetime64[ns]")

    def future(self, last, horizon: int) -> np.ndarray:
        """The `horizon` times after `last`."""
        import pandas as pd

        if self.offset is None:
            return float(last) + self.step * np.arange(1, horizon + 1)
        return pd.date_range(pd.Timestamp(last), periods=horizon + 1, freq=self.offset)[1:].to_numpy().astype(
            "datetime64[ns]")

    def missing(self, stamps: np.ndarray) -> np.ndarray:
        """The times of the grid from the first to the last stamp that `stamps` lacks."""
        grid = self.grid(stamps[0], stamps[-1])
        return grid[~np.isin(grid, stamps)]


def infer_frequency(stamps: np.ndarray, *, where: str, column: str, rows: np.ndarray) -> Frequency:
    """The Frequency of sorted, distinct stamps (numbers or datetime64): from their median spacing for
    dates (28–31 days monthly, 89–92 quarterly, 365–366 yearly, 7 weekly on one weekday, else that
    duration), from their smallest step for numbers; a stamp off that grid (an irregular series) is an
    InputError naming its row."""
    import pandas as pd

    if len(stamps) < 2:
        return Frequency("steps of 1", step=1.0) if stamps.dtype.kind == "f" else Frequency("daily", offset="D")
    if stamps.dtype.kind == "f":
        step = float(np.min(np.diff(stamps)))
        ratio = (stamps - stamps[0]) / step
        off = np.flatnonzero(np.abs(ratio - np.round(ratio)) > 1e-6)
        if len(off):
            raise InputError(f"{where}: the times in {column!r} are not on a regular grid of steps of {step:g}: row "
                             f"{rows[off[0]]} has {stamps[off[0]]:g}")
        return Frequency(f"steps of {step:g}", step=step)
    index = pd.DatetimeIndex(stamps)
    days = np.diff(stamps).astype("timedelta64[s]").astype(float) / 86400
    typical = float(np.median(days))  # the spacing: robust to a gap and to one stamp off the grid
    if 28 <= typical <= 31 or 89 <= typical <= 92 or 365 <= typical <= 366:
        months = 1 if typical <= 31 else 3 if typical <= 92 else 12
        month_end = bool(index.is_month_end.all())
        if not month_end and not (index.day == index.day[0]).all():
            k = int(np.flatnonzero(index.day != index.day[0])[0])
            raise InputError(f"{where}: the dates in {column!r} look {_every(months)} but do not fall on one day of "
                             f"the month: row {rows[k]} has {index[k].date()} after {index[0].date()}")
        if months == 1:
            offset = "ME" if month_end else ("MS" if index.day[0] == 1 else None)
        else:
            anchor = pd.Timestamp(stamps[0]).strftime("%b").upper()
            kind = "QE" if months == 3 else "YE"
            start = "QS" if months == 3 else "YS"
            offset = (f"{kind}-{anchor}" if month_end else f"{start}-{anchor}" if index.day[0] == 1 else None)
        if offset is None:  # the 15th of every month, …: a month offset that keeps the day
            offset = pd.DateOffset(months=months)
        frequency = Frequency(_every(months), offset=offset)
    elif typical == 7 and (index.dayofweek == index.dayofweek[0]).all():
        frequency = Frequency("weekly", offset=f"W-{pd.Timestamp(stamps[0]).strftime('%a').upper()}")
    else:
        step = pd.Timedelta(np.min(np.diff(stamps)))
        frequency = Frequency(_duration_name(step), offset=step)
    grid = frequency.grid(stamps[0], stamps[-1])
    off = np.flatnonzero(~np.isin(stamps, grid))
    if len(off):
        raise InputError(f"{where}: the times in {column!r} are not on a regular {frequency.name} grid: row "
                         f"{rows[off[0]]} has {pd.Timestamp(stamps[off[0]])}")
    return frequency


def _every(months: int) -> str:
    return {1: "monthly", 3: "quarterly", 12: "yearly"}[months]


def _duration_name(step) -> str:
    named = {86400: "daily", 3600: "hourly", 60: "every minute", 1: "every second"}
    seconds = step.total_seconds()
    if seconds in named:
        return named[seconds]
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"every {seconds / size:g} {unit}"
    return f"every {seconds:g} seconds"
