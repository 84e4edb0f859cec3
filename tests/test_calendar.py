"""Reading a user's CSV without misreading it: delimiters, dates, the calendar, gaps."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from grukit.data.series import read_series
from grukit.errors import InputError


def write(path, times, *, column="date", sep=","):
    frame = pd.DataFrame({column: times, "y": np.arange(len(times), dtype=float) + 0.5})
    frame.to_csv(path, index=False, sep=sep)
    return path


def dates(values) -> list[str]:
    return [str(pd.Timestamp(v).date()) if pd.Timestamp(v) == pd.Timestamp(v).normalize() else str(pd.Timestamp(v))
            for v in values]


@pytest.mark.parametrize(("times", "name", "future"), [
    (["2024-01-29", "2024-01-30", "2024-01-31"], "daily", ["2024-02-01", "2024-02-02"]),
    (["2024-01-01", "2024-01-08", "2024-01-15"], "weekly", ["2024-01-22", "2024-01-29"]),
    (["1960-11-01", "1960-12-01", "1961-01-01"], "monthly", ["1961-02-01", "1961-03-01"]),  # no 31-day drift
    (["2023-12-31", "2024-01-31", "2024-02-29"], "monthly", ["2024-03-31", "2024-04-30"]),  # month ends stay ends
    (["2024-01-15", "2024-02-15", "2024-03-15"], "monthly", ["2024-04-15", "2024-05-15"]),
    (["2023-07-01", "2023-10-01", "2024-01-01"], "quarterly", ["2024-04-01", "2024-07-01"]),
    (["2021-01-01", "2022-01-01", "2023-01-01"], "yearly", ["2024-01-01", "2025-01-01"]),
    (["2024-03-01 22:00", "2024-03-01 23:00", "2024-03-02 00:00"], "hourly",
     ["2024-03-02 01:00:00", "2024-03-02 02:00:00"]),
])
def test_future_times_follow_the_calendar(tmp_path, times, name, future):
    series = read_series(write(tmp_path / "s.csv", times), target="y")
    assert series.frequency.name == name
    assert dates(series.future_times(2)) == future


def test_integer_steps_continue_and_a_gap_is_named(tmp_path):
    series = read_series(write(tmp_path / "s.csv", [1990, 1991, 1992], column="year"), target="y")
    assert series.frequency.name == "steps of 1" and series.future_times(2).tolist() == [1993.0, 1994.0]
    gappy = write(tmp_path / "g.csv", ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"])
    with pytest.raises(InputError, match=r"the daily series has no row for 2024-01-03 \(between row 3, 2024-01-02, "
                                         r"and row 4, 2024-01-05\); 2 times are missing"):
        read_series(gappy, target="y")
    filled = read_series(gappy, target="y", fill="linear")
    assert dates(filled.time) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"]
    assert filled.values[:, 0].tolist() == [0.5, 1.5, 1.5 + 1 / 3, 1.5 + 2 / 3, 2.5, 3.5]
    assert read_series(gappy, target="y", fill="previous").values[:, 0].tolist() == [0.5, 1.5, 1.5, 1.5, 2.5, 3.5]
    with pytest.raises(InputError, match="fill must be one of"):
        read_series(gappy, target="y", fill="zero")


def test_a_time_off_the_grid_is_named(tmp_path):
    with pytest.raises(InputError, match=r"not on a regular daily grid: row 4 has 2024-01-03 12:00"):
        read_series(write(tmp_path / "s.csv", ["2024-01-01", "2024-01-02", "2024-01-03 12:00"]), target="y")
    with pytest.raises(InputError, match=r"look monthly but do not fall on one day of the month: row 3"):
        read_series(write(tmp_path / "m.csv", ["2024-01-01", "2024-02-03", "2024-03-01"]), target="y")


def test_day_first_dates_are_never_guessed(tmp_path):
    ambiguous = write(tmp_path / "a.csv", ["01.03.2024", "02.03.2024", "03.03.2024"])
    with pytest.raises(InputError, match=r"dates like '01\.03\.2024' that read as day/month and as month/day alike; "
                                         r"pass --dayfirst \(31\.12\.2024\) or --monthfirst"):
        read_series(ambiguous, target="y")
    assert dates(read_series(ambiguous, target="y", dayfirst=True).time) == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert read_series(ambiguous, target="y", dayfirst=False).frequency.name == "monthly"  # 3 Jan, 3 Feb, 3 Mar
    # a day above 12 tells the order for the whole column
    told = write(tmp_path / "t.csv", ["12.03.2024", "13.03.2024", "14.03.2024"])
    assert dates(read_series(told, target="y").time) == ["2024-03-12", "2024-03-13", "2024-03-14"]
    mixed = write(tmp_path / "m.csv", ["13/03/2024", "03/14/2024", "15/03/2024"])
    with pytest.raises(InputError, match=r"mixes day-first \('13/03/2024', row 2\) and month-first \('03/14/2024', "
                                         r"row 3\)"):
        read_series(mixed, target="y")


def test_numbers_mixed_with_text_name_the_odd_cell(tmp_path):
    with pytest.raises(InputError, match=r"column 'year' mixes numbers and dates: row 4 has text '1992-x'"):
        read_series(write(tmp_path / "s.csv", ["1990", "1991", "1992-x", "1993"], column="year"), target="y")


def test_a_semicolon_file_with_decimal_commas_is_read(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("date;y\n2024-01-01;1,5\n2024-01-02;2,25\n2024-01-03;-3\n")
    series = read_series(path, target="y")
    assert series.values[:, 0].tolist() == [1.5, 2.25, -3.0] and series.frequency.name == "daily"


def test_forecast_reports_a_bad_file_before_importing_torch(tmp_path):
    path = write(tmp_path / "g.csv", ["2024-01-01", "2024-01-02", "2024-01-05"])
    # what makes a bad file's report slow (the heavy imports) must not have happened when it is reported
    code = ("import sys\nfrom grukit.app.cli import main\ntry:\n    main()\nfinally:\n"
            "    print(sorted(m for m in ('torch', 'lightning', 'numba', 'statsmodels') if m in sys.modules), "
            "file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "forecast", str(path), "--target", "y"], capture_output=True,
                          text=True)
    assert done.returncode == 2
    first, second = done.stderr.strip().splitlines()
    assert first.startswith("grukit: error: ") and "no row for 2024-01-03" in first
    assert second == "[]"
