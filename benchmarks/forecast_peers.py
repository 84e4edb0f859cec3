"""Forecasters of other libraries on the origins of `forecast_accuracy.py`, with the same MASE.

    python benchmarks/forecast_accuracy.py --origins origins.json      # grukit's environment
    .venv-peers/bin/python benchmarks/forecast_peers.py origins.json    # the `peers` environment

statsforecast (the `peers` extra: it needs pandas < 3, so it lives in an environment of its own,
`make peers`) fits AutoETS, AutoTheta and SeasonalNaive at every test origin on the values up to it,
one thread each, and forecasts h steps; MASE divides their MAE by the in-sample seasonal-naive
error of the series' training rows, exactly as grukit's table does. Prints one line per series and
the mean over them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origins", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for name, spec in json.loads(args.origins.read_text()).items():
        y, h, m = np.asarray(spec["values"], dtype=float), spec["horizon"], spec["season"]
        history = y[: spec["history"]]
        scale = np.mean(np.abs(history[m:] - history[:-m]))
        models = {"AutoETS": AutoETS, "AutoTheta": AutoTheta, "SeasonalNaive": SeasonalNaive}
        row = {}
        for label, kind in models.items():
            start, errors = time.perf_counter(), []
            for origin in spec["origins"]:
                frame = pd.DataFrame({"unique_id": "s", "ds": np.arange(origin + 1), "y": y[: origin + 1]})
                forecast = StatsForecast(models=[kind(season_length=m)], freq=1, n_jobs=1).forecast(df=frame, h=h)
                errors.append(np.abs(forecast.iloc[:, -1].to_numpy() - y[origin + 1 : origin + 1 + h]))
            row[label] = {"mase": float(np.mean(errors) / scale), "seconds": time.perf_counter() - start}
        results[name] = row
        print(f"{name:14} " + ", ".join(f"{k} {v['mase']:.2f}" for k, v in row.items()), flush=True)
    for label in ("AutoETS", "AutoTheta", "SeasonalNaive"):
        print(f"mean MASE {label}: {np.mean([r[label]['mase'] for r in results.values()]):.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
