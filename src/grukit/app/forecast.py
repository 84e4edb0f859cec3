"""`grukit forecast`: a GRU forecaster for the user's own CSV, end to end.

Pipeline: read and check the series (`data.series`) → forecast origins split by time into train /
validation / test (a gap of h origins between the parts, so no target is shared across them) →
scale each window (by default two ways, `seasonal` and `level`, with a GRU for each, keeping per
series the one whose validation forecasts were better: `_fit_and_choose`, `forecasting.windows`) →
train a GRU that reads the last L steps of [target, covariates] and outputs the next h values at
the quantiles 0.1, 0.5, 0.9 (pinball loss; early stopping on the validation loss) → stretch (or shrink) its 80% interval
so that it covers 80% of the validation windows (conformalized quantile regression,
`conformal_stretch`) → score the median on the test origins, in
the data's own units (MASE with the --season's in-sample seasonal-naive scale, sMAPE, MAE, RMSE;
the GRU's 80% interval coverage and pinball loss: `forecasting.metrics`), beside three baselines on the
same origins:

  * seasonal naive: ŷ_{o+k} = y_{o+k−m⌈k/m⌉} (m = --season; m = 1 is the last value);
  * ETS: statsmodels' ETSModel (additive error, damped additive trend, additive season when
    m > 1) fitted on the training rows, then run with those parameters up to each origin;
  * Theta: statsmodels' ThetaModel (θ = 2; deseasonalised with period m), fitted at each origin on
    the rows up to it;

→ forecast the h steps after the last row and write forecast.csv (time, median, lower, upper)
and forecast.png (history, test-period fit, forecast and its 80% interval). Both files are
written at the end, each to a staging file beside it, and renamed into place together once both
are written (`io.atomic.staged_file`); an existing one is never replaced without overwrite.
"""

from __future__ import annotations

import json
import time as clock
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from grukit.data.series import Series
from grukit.errors import InputError
from grukit.forecasting.baselines import ets_forecasts, seasonal_naive, theta_forecasts
from grukit.forecasting.covariates import encode_static, static_encoding
from grukit.forecasting.inputs import read_forecast_input
from grukit.forecasting.metrics import coverage, pinball, point_metrics, scale_free_means
from grukit.forecasting.windows import MODEL_FILE, ForecastConfig, SeriesScaler, Windows, standardised_windows
from grukit.io.atomic import staged_file, write_text_atomic
from grukit.tasks.base import QUANTILES, Split
from grukit.tasks.forecast import ForecastTask, window_split


@dataclass(frozen=True)
class ForecastResult:
    test: dict[str, dict[str, float]]  # predictor → {mase, smape, mae, rmse[, coverage_80, pinball]} (module doc)
    future: dict[str, np.ndarray]  # time, median, lower, upper for the h steps after the data
    files: tuple[Path, ...]
    run_dir: Path
    test_origins: int
    per_series: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # panels: group → test
    test_origins_by_series: dict[str, np.ndarray] = field(default_factory=dict)
    scalings: dict[str, str] = field(default_factory=dict)  # series → the scaling of the model that forecast it


@dataclass(frozen=True)
class Scored:
    """One series' forecasts at its test origins: what the GRU and the baselines said, and the truth."""

    origins: np.ndarray  # (N,) row index of each origin's last observed row
    truth: np.ndarray  # (N, h)
    quantiles: np.ndarray  # (N, h, Q) the GRU's, at QUANTILES
    baselines: dict[str, np.ndarray]  # name → (N, h)
    history: np.ndarray  # the target's rows the training windows touch: MASE's in-sample scale
    future: np.ndarray  # (h, Q) the GRU's forecast after the last row
    validation_mae: float = float("nan")  # the GRU median's MAE on the validation windows (data units)
    scaling: str = ""  # the scaling of the model that made these forecasts

    def metrics(self, season: int) -> dict[str, dict[str, float]]:
        """Each method's errors (`forecasting.metrics`); the GRU's also its coverage and pinball loss."""
        forecasts = {"GRU (median)": self.quantiles[..., 1], **self.baselines}
        scores = {method: point_metrics(self.truth, forecast, history=self.history, season=season)
                  for method, forecast in forecasts.items()}
        scores["GRU (median)"] |= {"coverage_80": coverage(self.truth, self.quantiles[..., 0], self.quantiles[..., 2]),
                                   "pinball": pinball(self.truth, self.quantiles, QUANTILES)}
        return scores


def fit_and_score(panel: dict[str, Series], config: ForecastConfig, run_dir, *, progress: bool = True,
                  tests: dict[str, np.ndarray] | None = None, data_path=None) -> dict[str, Scored]:
    """Train one GRU on every series' training windows (run_dir), then forecast each series' test
    origins (the latest test_fraction, or `tests[name]`), with the baselines on the same origins.
    With `data_path` (the file the panel was read from), run_dir/forecast_model.json records what
    forecasting again needs: the configuration, each series' scaling statistics, the file's digest."""
    from grukit.training.model import ModelConfig
    from grukit.training.trainer import TrainConfig, fit

    if config.scaling == "auto":
        return _fit_and_choose(panel, config, run_dir, progress=progress, tests=tests, data_path=data_path)
    windows = _windows(panel, config, tests)
    parts = [[window_split(part) for part in w[0]] for w in windows.values()]  # per series: train, validation, test
    splits = tuple(Split(torch.cat([p[k].inputs for p in parts]), torch.cat([p[k].targets for p in parts]),
                         groups=torch.cat([p[k].groups for p in parts])) for k in range(3))
    first = next(iter(windows.values()))[1]
    task = ForecastTask(splits, features=first.features, horizon=config.horizon, ahead=bool(config.known),
                        description=f"forecast {config.target!r}, {config.horizon} steps")
    data = task.build(seed=config.seed)
    train_config = TrainConfig(max_epochs=config.epochs, batch_size=config.batch_size,
                               learning_rate=config.learning_rate, early_stopping=config.patience, seed=config.seed,
                               progress=progress, tensorboard=False)
    result = fit(task, data, ModelConfig(hidden_size=config.hidden_size), train_config, run_dir)
    model = _load_best(result.best_checkpoint)
    stretch = conformal_stretch(model, [w[0][1] for w in windows.values()], config)
    if data_path is not None:
        write_text_atomic(Path(run_dir) / MODEL_FILE, json.dumps(
            {"kind": "grukit forecast", "config": asdict(config), "data": _fingerprint(data_path),
             "series": {name: w[1].stats() for name, w in windows.items()}, "interval_stretch": stretch,
             "static": {name: series.static for name, series in panel.items()} if config.static else None},
            indent=2))
    return _score(panel, config, _predictor(model, config, stretch), windows)


INTERVAL = 0.8  # the interval between the quantiles 0.1 and 0.9


def conformal_stretch(model, validation: list[Windows], config: ForecastConfig) -> float:
    """c: the 80% interval [q₀.₁, q₀.₉] of the model becomes [q₀.₁ − c·w, q₀.₉ + c·w], w = q₀.₉ − q₀.₁
    (c < 0 narrows it), so that it covers 80% of the validation windows' targets: conformalized
    quantile regression in its scaled form (Romano, Patterson & Candès 2019; CQR-r of Sesia & Candès
    2020), with scores E = max(q₀.₁ − y, y − q₀.₉) / w pooled over the n windows and h steps and c
    their ⌈(nh + 1)·0.8⌉-th smallest. Pooling the steps, each scaled by the model's own width there,
    gives nh scores where a separate widening per step would have n, often a handful: with n = 8 a
    per-step rank of ⌈9·0.8⌉ = 8 is the largest score, and the interval over-covers. The validation
    windows precede the test ones in time, so nothing is fitted on test origins."""
    inputs = np.concatenate([w.inputs for w in validation])
    targets = np.concatenate([w.targets for w in validation])  # (n, h), model units
    with torch.no_grad():
        out = model(torch.tensor(inputs, dtype=torch.float32)).numpy()
    out = np.sort(out.reshape(len(out), config.horizon, len(QUANTILES)), axis=-1)
    width = np.maximum(out[..., 2] - out[..., 0], WIDTH_FLOOR)
    scores = np.sort((np.maximum(out[..., 0] - targets, targets - out[..., 2]) / width).ravel())  # (n·h,)
    rank = min(len(scores), int(np.ceil((len(scores) + 1) * INTERVAL)))  # the rank-th smallest, 1-based
    return float(scores[rank - 1])


WIDTH_FLOOR = 1e-6  # model units: the least interval width a conformal score is divided by




def _fit_and_choose(panel, config: ForecastConfig, run_dir, *, progress, tests, data_path) -> dict[str, Scored]:
    """scaling="auto": one GRU per scaling of AUTO_SCALINGS (run_dir/<scaling>), and for each series
    the one whose median has the lower MAE on that series' validation windows (which precede the
    test ones: nothing is chosen on test origins)."""
    candidates = {scaling: fit_and_score(panel, replace(config, scaling=scaling), Path(run_dir) / scaling,
                                         progress=progress, tests=tests, data_path=data_path)
                  for scaling in AUTO_SCALINGS}
    choice = {name: min(AUTO_SCALINGS, key=lambda c: candidates[c][name].validation_mae) for name in panel}
    if data_path is not None:
        write_text_atomic(Path(run_dir) / MODEL_FILE, json.dumps(
            {"kind": "grukit forecast", "config": asdict(config), "data": _fingerprint(data_path), "choice": choice,
             "static": {name: series.static for name, series in panel.items()} if config.static else None,
             "validation_mae": {c: {n: candidates[c][n].validation_mae for n in panel} for c in AUTO_SCALINGS}},
            indent=2))
    return {name: candidates[choice[name]][name] for name in panel}


AUTO_SCALINGS = ("seasonal", "level")  # what scaling="auto" chooses between, per series


def _score(panel: dict[str, Series], config: ForecastConfig, predict, windows: dict) -> dict[str, Scored]:
    """Each series' test origins forecast by `predict` and by the baselines, beside the truth."""
    scored = {}
    for name, series in panel.items():
        (train, _, test), scaler = windows[name]
        y = series.values[:, 0]
        baselines = {
            f"seasonal naive (m={config.season})": seasonal_naive(y, test.origins, horizon=config.horizon,
                                                                  season=config.season),
            "ETS": ets_forecasts(y, test.origins, fit_until=int(train.origins[-1]), horizon=config.horizon,
                                 season=config.season),
            "Theta": theta_forecasts(y, test.origins, horizon=config.horizon, season=config.season)}
        validation = windows[name][0][1]
        validation_truth = np.stack([y[o + 1 : o + 1 + config.horizon] for o in validation.origins])
        scored[name] = Scored(
            origins=test.origins, truth=np.stack([y[o + 1 : o + 1 + config.horizon] for o in test.origins]),
            quantiles=predict(test), baselines=baselines, history=y[: int(train.origins[-1]) + config.horizon + 1],
            future=_ahead(predict, scaler, series, config),
            validation_mae=float(np.abs(predict(validation)[..., 1] - validation_truth).mean()),
            scaling=config.scaling)
    return scored


def _ahead(predict, scaler: SeriesScaler, series: Series, config: ForecastConfig) -> np.ndarray:
    """(h, Q) the forecast after the last row; NaN where known covariates have no values there (a
    backtest's series, which is never forecast past its end)."""
    if config.known and (series.future_known is None or len(series.future_known) < config.horizon):
        return np.full((config.horizon, len(QUANTILES)), np.nan)
    return predict(scaler.windows(np.array([len(series) - 1]), with_targets=False))[0]


def run_forecast(path, config: ForecastConfig, *, out_dir=".", run_dir=None, overwrite: bool = False,
                 progress: bool = True, panel: dict[str, Series] | None = None, future=None) -> ForecastResult:
    """The pipeline of the module docstring. With config.group, every group's series is split by
    time and standardised on its own (its training rows' mean and std), one GRU learns from all
    their windows, and each series is scored in its own units (the table: scale-free means).
    `panel`: the series already read by `read_forecast_input(path, config)`; `future`: the file of
    the known covariates' future values, when they are not in the file itself."""
    if panel is None:
        panel = read_forecast_input(path, config, future=future)
    files = check_outputs(Path(out_dir), ("forecast.csv", "forecast.png"), overwrite=overwrite)
    run_dir = fresh_run_dir(run_dir, f"forecast-{config.target}", overwrite=overwrite)
    scored = fit_and_score(panel, config, run_dir, progress=progress, data_path=path)
    futures = {name: _future_table(panel[name], one.future, config) for name, one in scored.items()}
    result = _result(scored, futures, config, files, run_dir)
    _write_outputs(files, panel, config, futures, result.test_origins_by_series,
                   {name: one.quantiles for name, one in scored.items()})
    summary = {"test": result.test, "per_series": result.per_series or None, "test_origins": result.test_origins,
               "groups": len(panel) if config.group else None, "horizon": config.horizon, "lookback": config.lookback,
               "season": config.season, "frequency": next(iter(panel.values())).frequency.name}
    write_text_atomic(run_dir / "forecast_metrics.json", json.dumps(summary, indent=2))
    return result


def forecast_from(run_dir, path, *, out_dir=".", overwrite: bool = False, future=None) -> ForecastResult:
    """Forecast the h steps after the end of the CSV file `path` with the trained model of a
    `grukit forecast` run, without training: the file is read with the run's options and each
    series scaled with the statistics the run learned (a panel's series by their group names; with
    scaling="auto", each by the model chosen for it; known covariates' future values from the file's
    last rows or `future`; a panel's static attributes as the run was trained with, which the file
    must repeat)."""
    config, models = load_forecast_model(run_dir)
    panel = read_forecast_input(path, config, rows_needed=config.lookback, future=future)
    unknown = [name for name in panel if name not in models]
    if unknown:
        raise InputError(f"{path}: the model of {run_dir} was trained on the groups {', '.join(models)}; it has no "
                         f"scaling for {unknown[0]!r}")
    trained = json.loads((Path(run_dir) / MODEL_FILE).read_text()).get("static") or {}
    for name, series in panel.items():
        for column, value in (series.static or {}).items():
            if trained[name][column] != value:
                raise InputError(f"{path}: group {name!r} has {column} {value!r}; the model of {run_dir} was trained "
                                 f"with {trained[name][column]!r} (static attributes are the series' own)")
    files = check_outputs(Path(out_dir), ("forecast.csv", "forecast.png"), overwrite=overwrite)
    futures = {}
    for name, series in panel.items():
        chosen, model, stats, stretch = models[name]
        scaler = SeriesScaler(_model_scale(series.values, chosen), fitted_rows=0, config=chosen, stats=stats,
                              future=series.future_known)
        future = _predictor(model, chosen, stretch)(scaler.windows(np.array([len(series) - 1]), with_targets=False))[0]
        futures[name] = _future_table(series, future, config)
    _write_outputs(files, panel, config, futures, None, None)
    return ForecastResult({}, _joined_futures(futures, config), files, Path(run_dir), 0)


def evaluate_forecast_run(run_dir) -> ForecastResult:
    """Score a `grukit forecast` run's model on the test origins of the file it was trained on again
    (no training; the file must be unchanged: its digest is checked)."""
    config, models = load_forecast_model(run_dir)
    recorded = json.loads((Path(run_dir) / MODEL_FILE).read_text())["data"]
    path = Path(recorded["path"])
    if not path.is_file():
        raise InputError(f"{run_dir} was trained on {path}, which is not there")
    if _fingerprint(path)["sha256"] != recorded["sha256"]:
        raise InputError(f"{path} has changed since {run_dir} was trained on it: its test origins would not be the "
                         "same; forecast new data with --from instead")
    panel = read_forecast_input(path, config, ahead=False)
    encoding = (static_encoding({name: series.static for name, series in panel.items()}, config.static)
                if config.static else None)  # the panel's, as in training: the file is the same
    scored = {}
    for name in panel:
        chosen, model, _, stretch = models[name]
        one = {name: panel[name]}
        scored |= _score(one, chosen, _predictor(model, chosen, stretch), _windows(one, chosen, None, encoding))
    futures = {name: _future_table(panel[name], one.future, config) for name, one in scored.items()}
    return _result(scored, futures, config, (), Path(run_dir))


def load_forecast_model(run_dir):
    """(ForecastConfig, {series: (its model's ForecastConfig, the trained model in eval mode, its scaling
    statistics, the interval's conformal stretch c)}) of a forecast run (scaling="auto": each
    series with the model chosen for it); weights read with `torch.load(weights_only=True)`."""
    directory = Path(run_dir)
    description = directory / MODEL_FILE
    if not description.is_file():
        raise InputError(f"{directory} is not a finished `grukit forecast` run: {MODEL_FILE} is missing")
    try:
        saved = json.loads(description.read_text())
        config = _config(saved["config"])
        if "choice" in saved:  # scaling="auto": the chosen sub-run of each series
            subs = {scaling: load_forecast_model(directory / scaling)[1] for scaling in set(saved["choice"].values())}
            return config, {name: subs[scaling][name] for name, scaling in saved["choice"].items()}
        stretch = float(saved["interval_stretch"])
        series = saved["series"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(f"{description} is not a grukit forecast description ({type(error).__name__}: {error})"
                         ) from None
    checkpoint = directory / "checkpoints" / "best.ckpt"
    if not checkpoint.is_file():
        raise InputError(f"{directory} is not a finished `grukit forecast` run: {checkpoint.name} is missing")
    model = _load_best(checkpoint)
    return config, {name: (config, model, stats, stretch) for name, stats in series.items()}


def _config(settings: dict) -> ForecastConfig:
    settings = dict(settings)
    for key in ("covariates", "known", "static"):
        settings[key] = tuple(settings.get(key, ()))
    return ForecastConfig(**settings)


def check_outputs(out_dir: Path, names: tuple[str, ...], *, overwrite: bool) -> tuple[Path, ...]:
    """The output files out_dir/name; an InputError for one that exists, unless overwrite."""
    files = tuple(out_dir / name for name in names)
    for file in files:
        if file.exists() and not overwrite:
            raise InputError(f"{file} exists; pass --overwrite to replace it, or choose another --out")
    return files


def fresh_run_dir(run_dir, stem: str, *, overwrite: bool) -> Path:
    """run_dir, or runs/STEM-TIME; with overwrite an earlier run there is deleted first (a directory
    grukit did not write is refused)."""
    run_dir = Path(run_dir or f"runs/{stem}-{clock.strftime('%Y%m%d-%H%M%S')}")
    if overwrite:
        from grukit.training.runs import remove_run

        remove_run(run_dir)
    return run_dir


def _windows(panel: dict[str, Series], config: ForecastConfig, tests, encoding: dict | None = None) -> dict:
    """{series: (its train, validation, test Windows, its SeriesScaler)}; a panel's static attributes
    encoded by `encoding` (default: fitted on this panel, `forecasting.covariates`)."""
    statics = _static_inputs(panel, config, encoding)
    return {name: standardised_windows(_model_scale(series.values, config), config,
                                       None if tests is None else tests[name], future=series.future_known,
                                       static=statics.get(name)) for name, series in panel.items()}


def _static_inputs(panel: dict[str, Series], config: ForecastConfig, encoding: dict | None) -> dict[str, np.ndarray]:
    if not config.static:
        return {}
    if encoding is None:
        encoding = static_encoding({name: series.static for name, series in panel.items()}, config.static)
    return {name: encode_static(series.static, encoding, where=f"group {name!r}") for name, series in panel.items()}


def _model_scale(values: np.ndarray, config: ForecastConfig) -> np.ndarray:
    """What the GRU reads: the target log1p'd with --log."""
    return np.column_stack([np.log1p(values[:, 0]), values[:, 1:]]) if config.log else values


def _predictor(model, config: ForecastConfig, stretch: float):
    """(N, h, Q) quantiles in data units from Windows: the model's, sorted, its 80% interval
    stretched by the conformal `stretch` (`conformal_stretch`), never past the median."""
    def predict(chosen: Windows) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.tensor(chosen.inputs, dtype=torch.float32)).numpy()
        out = np.sort(out.reshape(len(out), config.horizon, len(QUANTILES)), axis=-1)  # lower ≤ median ≤ upper
        width = stretch * np.maximum(out[..., 2] - out[..., 0], WIDTH_FLOOR)
        out[..., 0] = np.minimum(out[..., 0] - width, out[..., 1])
        out[..., 2] = np.maximum(out[..., 2] + width, out[..., 1])
        quantiles = chosen.target_offset[:, :, None] + chosen.scale[:, None, None] * out
        return np.expm1(quantiles) if config.log else quantiles

    return predict


def _result(scored: dict[str, Scored], futures: dict, config: ForecastConfig, files, run_dir: Path) -> ForecastResult:
    """The ForecastResult of scored series and their future tables (`_future_table`)."""
    per_series = {name: one.metrics(config.season) for name, one in scored.items()}
    test_origins = {name: one.origins for name, one in scored.items()}
    scores = per_series[""] if not config.group else _panel_scores(per_series, test_origins)
    return ForecastResult(scores, _joined_futures(futures, config), tuple(files), run_dir,
                          sum(len(o) for o in test_origins.values()), per_series if config.group else {},
                          test_origins, {name: one.scaling for name, one in scored.items()})


def _future_table(series: Series, future: np.ndarray, config: ForecastConfig) -> dict[str, np.ndarray]:
    return {"time": series.future_times(config.horizon), "median": future[:, 1], "lower": future[:, 0],
            "upper": future[:, 2]}


def _joined_futures(futures: dict, config: ForecastConfig) -> dict[str, np.ndarray]:
    if not config.group:
        return futures[""]
    return {key: np.concatenate([f[key] for f in futures.values()]) for key in ("time", "median", "lower", "upper")}


def _fingerprint(path) -> dict[str, str]:
    import hashlib

    path = Path(path).resolve()
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


COLUMNS = (("mase", "MASE", ".3f"), ("smape", "sMAPE", ".1f"), ("mae", "MAE", ".4g"), ("rmse", "RMSE", ".4g"),
           ("coverage_80", "80% interval coverage", None))


def error_table(result: ForecastResult, *, title: str | None = None):
    """A rich Table of each predictor's test errors: MASE, sMAPE, and for one series MAE and RMSE in its
    units; for a panel the means of MASE and sMAPE over its series (scale-free, so they average);
    the GRU's 80% interval coverage."""
    from rich.table import Table

    shown = [c for c in COLUMNS if any(c[0] in scores for scores in result.test.values())]
    table = Table(title=title)
    table.add_column("predictor", justify="left")
    for _, heading, _ in shown:
        table.add_column(heading, justify="right")
    for name, scores in result.test.items():
        cells = []
        for key, _, digits in shown:
            value = scores.get(key)
            cells.append("" if value is None else f"{100 * value:.0f}%" if digits is None else format(value, digits))
        table.add_row(name, *cells)
    return table


def _panel_scores(per_series: dict, test_origins: dict) -> dict[str, dict[str, float]]:
    """The mean over series of each scale-free metric (MASE, sMAPE), and the coverage over all origins."""
    scores = scale_free_means(per_series)
    weights = np.array([len(o) for o in test_origins.values()], dtype=float)
    gru = [series["GRU (median)"]["coverage_80"] for series in per_series.values()]
    scores["GRU (median)"]["coverage_80"] = float(np.average(gru, weights=weights))
    return scores


def _load_best(checkpoint: Path):
    from grukit.training.model import ModelConfig, SequenceModel

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = SequenceModel(ModelConfig(**state["hyper_parameters"]["model_config"]))
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    return model.eval()


PLOTTED_GROUPS = 4  # forecast.png shows the first few groups of a panel, one panel each


def _write_outputs(files, panel: dict[str, Series], config: ForecastConfig, futures: dict,
                   test_origins: dict | None, fitted: dict | None):
    """forecast.csv (with a group column for a panel) and forecast.png, each to a staging file
    beside it (`atomic.staged_file`); both are renamed into place only once both are written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    csv_path, png_path = files
    first = next(iter(panel.values()))
    frames = []
    for name, table in futures.items():
        frame = pd.DataFrame({first.time_name or "step": table["time"], f"{config.target}_median": table["median"],
                              f"{config.target}_lower_10": table["lower"], f"{config.target}_upper_90": table["upper"]})
        if config.group:
            frame.insert(0, config.group, name)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    shown_groups = list(panel)[:PLOTTED_GROUPS]
    figure, axes = plt.subplots(len(shown_groups), 2, figsize=(15, 4.5 * len(shown_groups)), squeeze=False,
                                gridspec_kw={"width_ratios": [2, 1]})
    for (history_axis, zoom_axis), name in zip(axes, shown_groups):
        series, table = panel[name], futures[name]
        label = f"{config.target}{f' ({name})' if name else ''}"
        shown = max(0, len(series) - max(6 * config.horizon, 3 * config.lookback))
        recent = max(0, len(series) - max(3 * config.horizon, 2 * config.season, 12))  # the zoom: the last rows
        for axis, first in ((history_axis, shown), (zoom_axis, recent)):
            axis.plot(series.time[first:], series.values[first:, 0], color="black", lw=1, label=f"{config.target}")
            if fitted is not None:  # one-step-ahead ... h-step fits on the test origins: the first step of each
                at = np.asarray(test_origins[name]) + 1
                keep = at >= first
                axis.plot(series.time[at[keep]], fitted[name][keep, 0, 1], color="tab:orange", lw=1,
                          label="GRU on the test period (1 step ahead)")
            axis.plot(table["time"], table["median"], color="tab:blue", lw=2, marker="o", markersize=3,
                      label="forecast (median)")
            if config.horizon == 1:  # one step: the interval as an error bar (a band of one point is invisible)
                axis.errorbar(table["time"], table["median"], yerr=[table["median"] - table["lower"],
                              table["upper"] - table["median"]], color="tab:blue", alpha=0.5, capsize=4,
                              label="80% interval (quantiles 0.1–0.9)")
            else:
                axis.fill_between(table["time"], table["lower"], table["upper"], color="tab:blue", alpha=0.25,
                                  label="80% interval (quantiles 0.1–0.9)")
            axis.set_xlabel(series.time_name or "step")
            axis.set_ylabel(config.target)
            if series.time.dtype.kind == "f" and np.all(series.time == np.round(series.time)):
                axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # years, weeks: whole numbers
                axis.xaxis.set_major_formatter(FormatStrFormatter("%d"))
            elif series.time.dtype.kind == "M":  # dates: as few labels as read well, each said once
                locator = AutoDateLocator()
                axis.xaxis.set_major_locator(locator)
                axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        history_axis.set_title(f"{label}: {config.horizon}-step GRU forecast from the last {config.lookback} steps")
        history_axis.legend(loc="upper left", fontsize=8)
        zoom_axis.set_title(f"the last {len(series) - recent} rows and the forecast", fontsize=10)
    figure.tight_layout()
    try:
        with staged_file(csv_path) as csv_staging, staged_file(png_path) as png_staging:
            frame.to_csv(csv_staging, index=False)
            figure.savefig(png_staging, dpi=110, format="png")
    finally:
        plt.close(figure)
