"""Forecasters of other libraries on the origins of `forecast_accuracy.py`, with the same MASE.

    python benchmarks/forecast_accuracy.py --origins origins.json      # grukit's environment
    .venv-peers/bin/python benchmarks/forecast_peers.py origins.json [--json peers.json] [--seeds 3]
        [--methods AutoETS,DartsBlockGRU,...] [--series lynx,ili] [--nf-max-steps 200]

The peers live in an environment of their own (the `peers` extra, `make peers`: statsforecast needs
pandas < 3, grukit's environment has pandas 3; torch is the CPU wheel 2.13.0, pinned first).

Every series of origins.json gives its values y, the test origins (each the index of the last
observed row), the horizon h, the season m and `history`: the rows grukit trained on. MASE is the
MAE over all test origins and steps divided by the in-sample seasonal-naive error of y[:history],
exactly as grukit's table; coverage is the share of those targets inside the 80% interval.

statsforecast: AutoETS, AutoTheta and SeasonalNaive(m) are local models, fitted at every test
origin on the values up to it (y[:origin + 1]) and forecasting h steps with their 80% interval.

Neural peers, each trained ONCE per series and seed on y[:history] only (no test row, nor
grukit's validation rows, is seen in training), then forecasting from every test origin on the
values up to it, without refitting:

    DartsBlockGRU  Darts BlockRNNModel(model="GRU"): input_chunk_length = grukit's lookback,
                   output_chunk_length = h, likelihood QuantileRegression([0.1, 0.5, 0.9]),
                   n_epochs = 100; predict(n=h, series=y[:origin + 1]) with
                   predict_likelihood_parameters=True (the three quantiles, exactly)
    DartsRNNGRU    Darts RNNModel(model="GRU") (autoregressive, one step at a time):
                   input_chunk_length = grukit's lookback, training_length = lookback + h (at most
                   len(history) - 1: the shifted training window needs one row more), the same
                   likelihood and epochs; the quantiles are taken from 500 sampled paths
    NeuralForecastGRU  neuralforecast.models.GRU: h, input_size = grukit's lookback,
                   loss = MQLoss(level=[80]) (median and 80% interval), max_steps = 200
                   (--nf-max-steps; the default is 1000: at about 0.3 s a step on one thread, its
                   two 200-wide layers are by far the slowest peer); predict(df=the values up to
                   every origin, one id per origin)

Otherwise the libraries' defaults: Darts hidden_dim 25, one layer, batch 32, Adam at 1e-3, no
validation or early stopping, with the series min-max scaled on the training rows as Darts'
`Scaler()` does (its documented practice: Darts' torch models do not scale by themselves);
NeuralForecast's own per-window robust scaling, a two-layer 200-wide encoder and an MLP decoder
(recurrent=False), batch of 128 windows, Adam at 1e-3, no validation. grukit's lookback is 56
(its default) and 24 for USAccDeaths (from forecast_accuracy.py's SERIES), capped where a
series' training rows are fewer than lookback + h. The point forecast is the median. Seeds 0, 1,
2 (--seeds); reported: the median MASE over the seeds and its range, the median coverage, and the
median wall seconds of one seed's fit and predictions (statsforecast: the fits of its three
models at every origin, together, in one call). One thread everywhere (OMP/MKL/OpenBLAS threads
1, torch.set_num_threads(1), n_jobs=1); Lightning's and the libraries' progress bars, summaries,
loggers and checkpoints off; nothing is downloaded.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("PYTORCH_LIGHTNING_DISABLE_TIPS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forecast_accuracy import SERIES  # noqa: E402

DEFAULT_LOOKBACK = 56  # grukit's ForecastConfig.lookback (grukit is not installed in the peers environment)
DARTS_EPOCHS = 100
RNN_SAMPLES = 500
NF_MAX_STEPS = 200  # neuralforecast's default: 1000
STATS = ("AutoETS", "AutoTheta", "SeasonalNaive")
NEURAL = ("DartsBlockGRU", "DartsRNNGRU", "NeuralForecastGRU")
PEERS = {"statsforecast": "statsforecast==2.1.1", "darts": "darts[torch]==0.48.1",  # as the `peers` extra
         "neuralforecast": "neuralforecast==3.3.0", "pandas": "pandas<3", "torch": "torch==2.13.0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origins", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … N-1 of each neural method")
    parser.add_argument("--methods", default=",".join(STATS + NEURAL))
    parser.add_argument("--series", help="comma-separated names (default: every series of the file)")
    parser.add_argument("--nf-max-steps", type=int, default=NF_MAX_STEPS, help="NeuralForecast GRU's max_steps")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if unknown := [m for m in methods if m not in STATS + NEURAL]:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(STATS + NEURAL)}")
    _require_peers()
    _quiet()
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set once torch has run parallel work
        torch.set_num_interop_threads(1)

    specs = json.loads(args.origins.read_text())
    if args.series:
        specs = {name: specs[name] for name in args.series.split(",")}
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, spec in specs.items():
            results[name] = _run_series(name, spec, methods, args.seeds, Path(scratch), args.nf_max_steps)
            print(_line(name, results[name]), flush=True)
            if args.json:  # after every series, so that a long run leaves what it has
                args.json.write_text(json.dumps(_report(results, args.seeds, args.nf_max_steps), indent=2))
    for method in methods:
        rows = [row[method] for row in results.values()]
        mase, coverage, seconds = (np.mean([r[key] for r in rows]) for key in ("mase", "coverage_80", "seconds"))
        print(f"mean over {len(rows)} series, {method:18}: MASE {mase:.3f}, 80% coverage {100 * coverage:.0f}%, "
              f"{seconds:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(_report(results, args.seeds, args.nf_max_steps), indent=2))


def _require_peers() -> None:
    import importlib

    for module, requirement in PEERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            sys.exit(f"forecast_peers.py: {module} is not installed ({requirement}); "
                     "run `make peers` and use .venv-peers/bin/python")


def _quiet() -> None:
    """Lightning's and the libraries' info lines and warnings off; errors still show."""
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "darts",
                 "neuralforecast", "statsforecast", "torch", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _run_series(name: str, spec: dict, methods: list[str], seeds: int, scratch: Path, nf_max_steps: int) -> dict:
    y = np.asarray(spec["values"], dtype=float)
    h, m, history, origins = spec["horizon"], spec["season"], spec["history"], np.asarray(spec["origins"])
    if history > origins[0] + 1:
        raise SystemExit(f"{name}: the training rows ({history}) reach past the first test origin {origins[0]}")
    lookback = spec.get("lookback", SERIES.get(name, (0, 0, {}))[2].get("lookback", DEFAULT_LOOKBACK))
    train = y[:history]
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    targets = np.stack([y[o + 1 : o + 1 + h] for o in origins])
    task = {"y": y, "h": h, "m": m, "train": train, "origins": origins, "lookback": lookback, "scratch": scratch,
            "nf_max_steps": nf_max_steps}
    row = {}
    stats = [m_ for m_ in methods if m_ in STATS]
    if stats:
        start = time.perf_counter()
        forecasts = _statsforecast(task, stats)
        seconds = time.perf_counter() - start
        for label in stats:
            row[label] = _summary([_score(forecasts[label], targets, scale, seconds)])
    for label in (m_ for m_ in methods if m_ in NEURAL):
        runs = []
        for seed in range(seeds):
            start = time.perf_counter()
            with _silenced():
                forecast = {"DartsBlockGRU": _darts_block, "DartsRNNGRU": _darts_rnn,
                            "NeuralForecastGRU": _neuralforecast}[label](task, seed)
            runs.append(_score(forecast, targets, scale, time.perf_counter() - start))
        row[label] = _summary(runs)
    row["_setup"] = {"horizon": h, "season": m, "history": history, "test_origins": len(origins),
                     "lookback": lookback}
    return row


def _score(forecast: dict, targets: np.ndarray, scale: float, seconds: float) -> dict:
    """forecast: median, lo, hi, each (origins, h) in data units."""
    inside = (forecast["lo"] <= targets) & (targets <= forecast["hi"])
    return {"mase": float(np.mean(np.abs(forecast["median"] - targets)) / scale),
            "coverage_80": float(np.mean(inside)), "seconds": seconds}


def _summary(runs: list[dict]) -> dict:
    mase = [r["mase"] for r in runs]
    return {"mase": statistics.median(mase), "mase_range": [min(mase), max(mase)],
            "coverage_80": statistics.median(r["coverage_80"] for r in runs),
            "seconds": statistics.median(r["seconds"] for r in runs), "runs": runs}


def _statsforecast(task: dict, labels: list[str]) -> dict:
    """Each model fitted at every origin on the values up to it: one id per origin, one thread."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast import models as sf_models

    y, h, origins = task["y"], task["h"], task["origins"]
    frame = pd.concat([pd.DataFrame({"unique_id": o, "ds": np.arange(o + 1), "y": y[: o + 1]}) for o in origins])
    models = [getattr(sf_models, label)(season_length=task["m"]) for label in labels]
    forecast = StatsForecast(models=models, freq=1, n_jobs=1).forecast(df=frame, h=h, level=[80])
    return {label: _by_origin(forecast, origins, h, label, f"{label}-lo-80", f"{label}-hi-80") for label in labels}


def _by_origin(forecast, origins: np.ndarray, h: int, median: str, lo: str, hi: str) -> dict:
    """A long forecast table (unique_id = origin, ds = the step's row) as (origins, h) arrays."""
    forecast = forecast.reset_index() if "unique_id" not in forecast.columns else forecast
    forecast = forecast.sort_values(["unique_id", "ds"])
    out = {}
    for key, column in (("median", median), ("lo", lo), ("hi", hi)):
        table = forecast.pivot(index="unique_id", columns="ds", values=column)
        out[key] = np.stack([table.loc[o, o + 1 : o + h].to_numpy(dtype=float) for o in origins])
    return out


def _darts_common(task: dict, seed: int) -> dict:
    return {"input_chunk_length": min(task["lookback"], len(task["train"]) - task["h"]),
            "n_epochs": DARTS_EPOCHS, "random_state": seed, "work_dir": str(task["scratch"]),
            "save_checkpoints": False, "log_tensorboard": False, "force_reset": True,
            "pl_trainer_kwargs": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                                  "enable_model_summary": False, "logger": False}}


def _darts_fit_predict(model, task: dict, seed: int, **predict) -> np.ndarray:
    """Fitted on the min-max scaled training rows; forecasts from every origin, back in data units:
    (origins, h, 3 quantiles) or (origins, h, samples)."""
    from darts import TimeSeries

    train, y, origins = task["train"], task["y"], task["origins"]
    low, span = train.min(), train.max() - train.min()  # Darts' Scaler(): MinMaxScaler fitted on the training rows

    def series(values: np.ndarray):
        return TimeSeries.from_values(((values - low) / span).astype(np.float32))

    model.fit(series(train), verbose=False)
    forecasts = model.predict(n=task["h"], series=[series(y[: o + 1]) for o in origins], verbose=False,
                              show_warnings=False, random_state=seed, **predict)
    return np.stack([f.all_values(copy=False).reshape(task["h"], -1) for f in forecasts]) * span + low


def _darts_block(task: dict, seed: int) -> dict:
    from darts.models import BlockRNNModel
    from darts.utils.likelihood_models import QuantileRegression

    model = BlockRNNModel(model="GRU", output_chunk_length=task["h"],
                          likelihood=QuantileRegression([0.1, 0.5, 0.9]), **_darts_common(task, seed))
    quantiles = _darts_fit_predict(model, task, seed, predict_likelihood_parameters=True)  # (N, h, 3)
    return {"lo": quantiles[..., 0], "median": quantiles[..., 1], "hi": quantiles[..., 2]}


def _darts_rnn(task: dict, seed: int) -> dict:
    from darts.models import RNNModel
    from darts.utils.likelihood_models import QuantileRegression

    common = _darts_common(task, seed)
    common["input_chunk_length"] = min(task["lookback"], len(task["train"]) - 1)
    training_length = min(common["input_chunk_length"] + task["h"], len(task["train"]) - 1)
    model = RNNModel(model="GRU", training_length=training_length,
                     likelihood=QuantileRegression([0.1, 0.5, 0.9]), **common)
    samples = _darts_fit_predict(model, task, seed, num_samples=RNN_SAMPLES)  # (N, h, samples)
    lo, median, hi = np.quantile(samples, [0.1, 0.5, 0.9], axis=-1)
    return {"lo": lo, "median": median, "hi": hi}


def _neuralforecast(task: dict, seed: int) -> dict:
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import GRU

    train, y, h, origins = task["train"], task["y"], task["h"], task["origins"]
    model = GRU(h=h, input_size=min(task["lookback"], len(train) - h), loss=MQLoss(level=[80]),
                max_steps=task["nf_max_steps"], random_seed=seed, accelerator="cpu", devices=1,
                enable_progress_bar=False, enable_model_summary=False, logger=False, enable_checkpointing=False,
                default_root_dir=str(task["scratch"]))
    forecaster = NeuralForecast(models=[model], freq=1)
    forecaster.fit(df=pd.DataFrame({"unique_id": "train", "ds": np.arange(len(train)), "y": train}))
    frame = pd.concat([pd.DataFrame({"unique_id": o, "ds": np.arange(o + 1), "y": y[: o + 1]}) for o in origins])
    forecast = forecaster.predict(df=frame)
    return _by_origin(forecast, origins, h, "GRU-median", "GRU-lo-80", "GRU-hi-80")


@contextlib.contextmanager
def _silenced():
    """Lightning's 'GPU available', 'Seed set to …' and similar lines, logged at INFO while a fit starts."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _line(name: str, row: dict) -> str:
    cells = []
    for method, r in row.items():
        if method.startswith("_"):
            continue
        low, high = r["mase_range"]
        spread = f" ({low:.2f}–{high:.2f})" if len(r["runs"]) > 1 else ""
        cells.append(f"{method} {r['mase']:.2f}{spread} cov {100 * r['coverage_80']:.0f}% {r['seconds']:.0f}s")
    return f"{name:14} " + ", ".join(cells)


def _report(results: dict, seeds: int, nf_max_steps: int) -> dict:
    return {"settings": {"seeds": list(range(seeds)), "darts_epochs": DARTS_EPOCHS, "rnn_samples": RNN_SAMPLES,
                         "neuralforecast_max_steps": nf_max_steps, "versions": _versions()},
            "series": results}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("statsforecast", "darts", "neuralforecast", "torch", "pytorch-lightning", "pandas", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out


if __name__ == "__main__":
    main()
