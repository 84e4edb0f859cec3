"""`grukit forecast --backtest`: rolling origins, the files' columns, refit, errors."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from grukit.app.backtest import BacktestConfig, backtest_origins, run_backtest
from grukit.data.series import read_series
from grukit.errors import InputError
from grukit.forecasting.metrics import mase, smape
from grukit.forecasting.windows import ForecastConfig, split_origins

CONFIG = ForecastConfig(target="cases", horizon=4, lookback=12, season=12, hidden_size=8, epochs=2)


def write_series(path, n=100):
    t = np.arange(n)
    pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
                  "cases": (50 + 10 * np.sin(2 * np.pi * t / 12) + 0.3 * t).round(3)}).to_csv(path, index=False)
    return path


def test_origins_end_a_horizon_before_the_data_and_training_precedes_them(tmp_path):
    series = read_series(write_series(tmp_path / "s.csv"), target="cases")
    origins = backtest_origins(series, CONFIG, BacktestConfig(windows=3, step=2), where="s.csv")
    assert origins.tolist() == [91, 93, 95]  # T − h − 1 = 95, two rows apart
    assert backtest_origins(series, CONFIG, BacktestConfig(windows=2), where="s.csv").tolist() == [91, 95]  # step h
    train, validation, test = split_origins(100, CONFIG, origins)
    assert test.tolist() == [91, 93, 95]
    assert validation[-1] + CONFIG.horizon <= 91 and train[-1] + CONFIG.horizon < validation[0]
    with pytest.raises(InputError, match=r"has 100 rows; 30 backtest windows 4 rows apart need at least 149 \(28 to "
                                         r"train on before the first origin\)"):
        backtest_origins(series, CONFIG, BacktestConfig(windows=30), where="s.csv")


@pytest.mark.parametrize("refit", [False, True])
def test_backtest_writes_every_origin_and_method_and_scores_them(tmp_path, refit):
    path = write_series(tmp_path / "s.csv")
    result = run_backtest(path, CONFIG, BacktestConfig(windows=2, refit=refit), out_dir=tmp_path / "out",
                          run_dir=tmp_path / "run", progress=False)
    table = pd.read_csv(tmp_path / "out" / "backtest.csv")
    assert list(table.columns) == ["series", "method", "origin", "step", "time", "actual", "median", "q0.1", "q0.5",
                                   "q0.9"]
    assert set(table.method) == {"GRU (median)", "seasonal naive (m=12)", "ETS", "Theta"}
    assert table.groupby("method").size().tolist() == [8, 8, 8, 8]  # 2 origins × 4 steps each
    gru = table[table.method == "GRU (median)"]
    assert sorted(set(gru.origin)) == ["2027-08-01", "2027-12-01"]  # rows 91 and 95: the time of the last row read
    assert gru[gru.step == 1].time.tolist() == ["2027-09-01", "2028-01-01"]
    assert (gru["q0.1"] <= gru["median"]).all() and (gru["median"] == gru["q0.5"]).all()
    assert table[table.method == "ETS"]["q0.1"].isna().all()
    naive = table[table.method == "seasonal naive (m=12)"]
    y = pd.read_csv(path).cases.to_numpy()
    assert naive["median"].tolist() == [y[o + k - 12] for o in (91, 95) for k in range(1, 5)]
    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv").set_index("method")
    train, _, _ = split_origins(100, CONFIG, np.array([91, 95]))
    history = y[: train[-1] + CONFIG.horizon + 1]  # the rows the first training's windows touch
    actual, forecast = naive["actual"].to_numpy(), naive["median"].to_numpy()
    assert metrics.loc["seasonal naive (m=12)", "smape"] == pytest.approx(smape(actual, forecast))
    assert metrics.loc["seasonal naive (m=12)", "mase"] == pytest.approx(mase(actual, forecast, history=history,
                                                                              season=12))
    assert 0 <= metrics.loc["GRU (median)", "coverage_80"] <= 1
    runs = sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir())
    assert runs == (["origin-1", "origin-2"] if refit else ["level", "seasonal"])  # scaling="auto": two models
    assert set(result.metrics) == {"cases"}


def test_an_existing_backtest_is_kept_without_overwrite(tmp_path):
    path = write_series(tmp_path / "s.csv")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.csv").write_text("mine")
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        run_backtest(path, CONFIG, BacktestConfig(windows=2), out_dir=tmp_path / "out", run_dir=tmp_path / "run",
                     progress=False)
    assert (tmp_path / "out" / "metrics.csv").read_text() == "mine"


def test_the_same_seed_and_data_give_byte_identical_files(tmp_path):
    from grukit.app.forecast import run_forecast

    path = write_series(tmp_path / "s.csv")
    outputs = []
    for attempt in ("a", "b"):
        run_forecast(path, CONFIG, out_dir=tmp_path / attempt, run_dir=tmp_path / f"run-{attempt}", progress=False)
        run_backtest(path, CONFIG, BacktestConfig(windows=2), out_dir=tmp_path / attempt,
                     run_dir=tmp_path / f"backtest-{attempt}", progress=False)
        outputs.append({name: (tmp_path / attempt / name).read_bytes()
                        for name in ("forecast.csv", "forecast.png", "backtest.csv", "metrics.csv", "backtest.png")})
    for name in outputs[0]:
        assert outputs[0][name] == outputs[1][name], name


def test_a_forecast_run_forecasts_new_data_and_is_evaluated_again_without_training(tmp_path):
    from grukit.app.forecast import evaluate_forecast_run, forecast_from, run_forecast

    path = write_series(tmp_path / "s.csv")
    first = run_forecast(path, CONFIG, out_dir=tmp_path / "a", run_dir=tmp_path / "run", progress=False)
    forecast_from(tmp_path / "run", path, out_dir=tmp_path / "b")
    assert (tmp_path / "a" / "forecast.csv").read_bytes() == (tmp_path / "b" / "forecast.csv").read_bytes()
    evaluated = evaluate_forecast_run(tmp_path / "run")
    assert evaluated.test == first.test
    # new data: the series moved on 12 rows; the model reads its last lookback rows with the run's scaling
    frame = pd.read_csv(path)
    later = pd.DataFrame({"date": pd.date_range("2028-05-01", periods=12, freq="MS").strftime("%Y-%m-%d"),
                          "cases": frame.cases.iloc[-12:].to_numpy() + 3.6})
    pd.concat([frame, later]).to_csv(tmp_path / "new.csv", index=False)
    moved = forecast_from(tmp_path / "run", tmp_path / "new.csv", out_dir=tmp_path / "c")
    assert str(moved.future["time"][0])[:10] == "2029-05-01"
    with pytest.raises(InputError, match="has no column 'cases'"):
        frame.rename(columns={"cases": "y"}).to_csv(tmp_path / "renamed.csv", index=False)
        forecast_from(tmp_path / "run", tmp_path / "renamed.csv", out_dir=tmp_path / "d")
    frame.iloc[:50].to_csv(path, index=False)
    with pytest.raises(InputError, match="has changed since"):
        evaluate_forecast_run(tmp_path / "run")
    with pytest.raises(InputError, match="not a finished `grukit forecast` run"):
        forecast_from(tmp_path, path, out_dir=tmp_path / "e")


def test_conformal_stretch_makes_the_interval_cover_the_validation_targets():
    import torch

    from grukit.app.forecast import conformal_stretch
    from grukit.forecasting.windows import Windows

    class Fixed(torch.nn.Module):  # quantiles −1, 0, 1 at each of 2 steps, whatever the input: width 2
        def forward(self, inputs):
            return torch.tensor([-1.0, 0.0, 1.0] * 2).expand(len(inputs), 6)

    targets = np.stack([np.linspace(0, 4, 9), np.linspace(0, 0.8, 9)], axis=1)  # (9, 2), y ≥ 0
    windows = Windows(np.zeros((9, 4, 1)), targets, np.zeros(9), np.ones(9), np.arange(9))
    config = ForecastConfig(target="y", horizon=2, lookback=4)
    stretch = conformal_stretch(Fixed(), [windows], config)
    # E = max(−1 − y, y − 1) / 2 = (y − 1) / 2 over all 18 targets; the ⌈0.8·(18 + 1)⌉ = 16th smallest
    # is step 1's 7th, (3 − 1) / 2
    assert stretch == pytest.approx(1.0)
    covered = (targets <= 1 + stretch * 2)
    assert covered.mean() == 16 / 18 and covered[:, 1].all()


def test_auto_scaling_chooses_per_series_on_the_validation_windows(tmp_path):
    import json

    from grukit.app.forecast import fit_and_score, forecast_from

    path = write_series(tmp_path / "s.csv")
    panel = {"": read_series(path, target="cases")}
    scored = fit_and_score(panel, CONFIG, tmp_path / "run", progress=False, data_path=path)
    saved = json.loads((tmp_path / "run" / "forecast_model.json").read_text())
    errors = saved["validation_mae"]
    best = min(("seasonal", "level"), key=lambda scaling: errors[scaling][""])
    assert saved["choice"] == {"": best} and scored[""].scaling == best
    own = fit_and_score(panel, replace(CONFIG, scaling=best), tmp_path / "alone", progress=False)
    np.testing.assert_array_equal(scored[""].quantiles, own[""].quantiles)  # the chosen model's own forecasts
    forecast_from(tmp_path / "run", path, out_dir=tmp_path / "again")  # reads the chosen sub-run
    assert (tmp_path / "again" / "forecast.csv").is_file()
