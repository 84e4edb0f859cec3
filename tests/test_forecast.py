"""grukit forecast: a malformed CSV ends in one line and writes nothing; a good one gives the files."""

import os
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grukit.app.forecast import run_forecast
from grukit.data.series import make_windows, read_series
from grukit.forecasting.baselines import seasonal_naive
from grukit.forecasting.windows import ForecastConfig, minimum_rows, split_origins
from grukit.nn.validation import InputError


def write_series(path, n=120, *, dates=True):
    t = np.arange(n)
    frame = pd.DataFrame({"cases": (50 + 10 * np.sin(2 * np.pi * t / 12)).round(3), "rain": (t % 7).astype(float)})
    if dates:
        frame.insert(0, "date", pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"))
    frame.to_csv(path, index=False)
    return frame


def corrupt(path, row, column, value):
    frame = pd.read_csv(path, dtype=str)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


MALFORMED = {
    "missing column": (lambda p: None, ["--target", "deaths"],
                       "has no column 'deaths'; its columns: date, cases, rain"),
    "non-numeric": (lambda p: corrupt(p, 9, "cases", "n/a?"), [], "column 'cases' has a non-numeric value 'n/a?' "
                    "at row 11"),
    "empty value": (lambda p: corrupt(p, 4, "rain", ""), ["--covariates", "rain"], "column 'rain' has an empty "
                    "value at row 6"),
    "too short": (lambda p: write_series(p, n=40), [], "has 40 rows; lookback 20 and horizon 7 need at least 50"),
    "unsorted dates": (lambda p: corrupt(p, 30, "date", "2019-12-01"), [], "are not sorted: row 32 (2019-12-01)"),
    "duplicate date": (lambda p: corrupt(p, 30, "date", "2020-01-30"), [], "repeats the time '2020-01-30' at row 32"),
    "bad date": (lambda p: corrupt(p, 3, "date", "yesterday"), [], "unreadable time 'yesterday' at row 5"),
    "no file": (lambda p: p.unlink(), [], "no such file"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv_is_one_line_and_writes_nothing(tmp_path, case):
    path = tmp_path / "data.csv"
    write_series(path)
    damage, extra, message = MALFORMED[case]
    damage(path)
    out = tmp_path / "out"
    args = [str(path), "--horizon", "7", "--lookback", "20", "--out", str(out), "--run-dir", str(tmp_path / "run"),
            *(extra if "--target" in extra else ["--target", "cases", *extra])]
    result = subprocess.run([sys.executable, "-c", "from grukit.app.cli import main; main()", "forecast", *args],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not out.exists() and not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_windows_and_time_split_do_not_leak():
    config = ForecastConfig(target="y", horizon=5, lookback=10)
    train, validation, test = split_origins(100, config)
    assert train[0] == 9 and test[-1] == 100 - 5 - 1
    assert train[-1] + config.horizon < validation[0] and validation[-1] + config.horizon < test[0]
    values = np.arange(30.0)[:, None]
    inputs, targets = make_windows(values, lookback=4, horizon=2, origins=np.array([3, 10]))
    np.testing.assert_array_equal(inputs[1, :, 0], [7, 8, 9, 10])
    np.testing.assert_array_equal(targets[1], [11, 12])
    assert minimum_rows(10, 5) == 34


def test_seasonal_naive_repeats_the_last_season():
    y = np.arange(20.0)
    np.testing.assert_array_equal(seasonal_naive(y, [9], horizon=5, season=3), [[7, 8, 9, 7, 8]])
    np.testing.assert_array_equal(seasonal_naive(y, [9], horizon=2, season=1), [[9, 9]])


def test_numeric_time_and_no_time_column(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"year": [1990, 1991, 1993], "v": [1, 2, 3]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"no row for 1992 \(between row 3, 1991, and row 4, 1993\); 1 time is "
                                         r"missing in all: add the rows, or pass --fill previous or --fill linear"):
        read_series(path, target="v")
    series = read_series(path, target="v", fill="linear")
    assert series.time_name == "year" and list(series.future_times(2)) == [1994.0, 1995.0]
    assert series.values[:, 0].tolist() == [1.0, 2.0, 2.5, 3.0] and series.filled == 1
    assert read_series(path, target="v", fill="previous").values[:, 0].tolist() == [1.0, 2.0, 2.0, 3.0]
    pd.DataFrame({"v": [1, 2, 3]}).to_csv(path, index=False)
    assert read_series(path, target="v").time_name is None
    with pytest.raises(InputError, match="the column .v. is named twice"):
        read_series(path, target="v", covariates=("v",))


def test_forecast_end_to_end_writes_both_files_and_never_overwrites(tmp_path):
    path = tmp_path / "data.csv"
    write_series(path, n=150)
    config = ForecastConfig(target="cases", covariates=("rain",), horizon=6, lookback=24, season=12,
                            hidden_size=8, epochs=3)
    previous_umask = os.umask(0o027)
    try:
        result = run_forecast(path, config, out_dir=tmp_path / "out", run_dir=tmp_path / "run", progress=False)
    finally:
        os.umask(previous_umask)
    # the user's permissions (0o666 less the umask), not the staging files' private 0o600
    for written in ("out/forecast.csv", "out/forecast.png", "run/forecast_metrics.json"):
        assert stat.S_IMODE((tmp_path / written).stat().st_mode) == 0o640, written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["forecast.csv", "forecast.png"]
    table = pd.read_csv(tmp_path / "out" / "forecast.csv")
    assert list(table.columns) == ["date", "cases_median", "cases_lower_10", "cases_upper_90"]
    assert len(table) == 6 and table["date"].iloc[0] == "2020-05-30"  # the day after the last row
    assert (table["cases_lower_10"] <= table["cases_median"]).all()
    assert (table["cases_median"] <= table["cases_upper_90"]).all()
    assert (tmp_path / "out" / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result.test) == {"GRU (median)", "seasonal naive (m=12)", "ETS", "Theta"}
    # the seasonal-naive error on a noiseless period-12 series is zero: the baseline is computed right
    assert result.test["seasonal naive (m=12)"]["mae"] == pytest.approx(0, abs=1e-9)
    before = (tmp_path / "out" / "forecast.csv").read_bytes()
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        run_forecast(path, config, out_dir=tmp_path / "out", run_dir=tmp_path / "run2", progress=False)
    assert (tmp_path / "out" / "forecast.csv").read_bytes() == before


def write_panel(path, n=60, groups=("north", "south")):
    """A long file: each group a noiseless period-12 series of its own level, rows grouped."""
    t = np.arange(n)
    frames = [pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                            "region": name, "cases": (10 * (k + 1) + 5 * np.sin(2 * np.pi * t / 12)).round(3)})
              for k, name in enumerate(groups)]
    pd.concat(frames).to_csv(path, index=False)


def test_panel_reader_checks_each_group_with_the_files_row_numbers(tmp_path):
    from grukit.data.series import read_panel

    path = tmp_path / "panel.csv"
    write_panel(path)
    panel = read_panel(path, target="cases", group="region")
    assert list(panel) == ["north", "south"] and all(len(s) == 60 for s in panel.values())
    assert panel["south"].values[0, 0] == pytest.approx(20.0)
    corrupt(path, 70, "date", "2020-01-02")  # south's 11th row (file row 72) goes back in time
    with pytest.raises(InputError, match=r"not sorted: row 72 \(2020-01-02\) comes before row 71"):
        read_panel(path, target="cases", group="region")
    write_panel(path)
    corrupt(path, 65, "cases", "x")
    with pytest.raises(InputError, match="non-numeric value 'x' at row 67"):
        read_panel(path, target="cases", group="region")
    write_panel(path)
    corrupt(path, 3, "region", "")
    with pytest.raises(InputError, match="column 'region' has an empty value at row 5"):
        read_panel(path, target="cases", group="region")
    with pytest.raises(InputError, match="has no column 'state'"):
        read_panel(path, target="cases", group="state")


def test_panel_forecast_trains_one_model_and_scores_every_group(tmp_path):
    path = tmp_path / "panel.csv"
    write_panel(path)
    config = ForecastConfig(target="cases", group="region", horizon=3, lookback=12, season=12, hidden_size=8,
                            epochs=2, log=True)
    result = run_forecast(path, config, out_dir=tmp_path / "out", run_dir=tmp_path / "run", progress=False)
    table = pd.read_csv(tmp_path / "out" / "forecast.csv")
    assert list(table.columns) == ["region", "date", "cases_median", "cases_lower_10", "cases_upper_90"]
    assert table.groupby("region").size().to_dict() == {"north": 3, "south": 3}
    _, _, test = split_origins(60, config)
    assert result.test_origins == 2 * len(test)
    for group in ("north", "south"):  # per group, in its own units: the series repeats with period 12
        assert result.per_series[group]["seasonal naive (m=12)"]["mae"] == pytest.approx(0, abs=1e-9)
    # the panel's aggregate is scale-free only: MASE and sMAPE averaged over the groups, no pooled MAE
    assert set(result.test["ETS"]) == {"mase", "smape"}
    assert result.test["ETS"]["smape"] == pytest.approx(
        np.mean([result.per_series[g]["ETS"]["smape"] for g in ("north", "south")]))
    assert np.isnan(result.test["ETS"]["mase"])  # a history that repeats exactly: MASE's scale is 0
    assert 0 <= result.test["GRU (median)"]["coverage_80"] <= 1
    assert (table["cases_lower_10"] <= table["cases_median"]).all() and (table["cases_lower_10"] > -1).all()
    short = tmp_path / "short.csv"
    write_panel(short)
    frame = pd.read_csv(short)
    frame[(frame.region == "north") | (frame.index % 60 < 20)].to_csv(short, index=False)
    with pytest.raises(InputError, match=r"\(group 'south'\) has 20 rows"):
        run_forecast(short, config, out_dir=tmp_path / "out2", run_dir=tmp_path / "run2", progress=False)
    negative = tmp_path / "negative.csv"
    write_panel(negative)
    corrupt(negative, 7, "cases", "-1")
    with pytest.raises(InputError, match="--log needs a target ≥ 0"):
        run_forecast(negative, config, out_dir=tmp_path / "out3", run_dir=tmp_path / "run3", progress=False)
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


@pytest.mark.parametrize("scaling", ["series", "window"])
def test_windows_map_back_to_the_data_exactly(scaling):
    """offset + scale × target is the true future, and the target inputs are on the same map."""
    from grukit.forecasting.windows import standardised_windows

    rng = np.random.default_rng(0)
    values = np.column_stack([rng.gamma(2.0, 50.0, 80), rng.normal(size=80)])
    config = ForecastConfig(target="y", horizon=3, lookback=7, scaling=scaling)
    windows, scaler = standardised_windows(values, config)
    assert scaler.features == 2 + (scaling == "window")
    for part in windows:
        truth = np.stack([values[o + 1 : o + 4, 0] for o in part.origins])
        np.testing.assert_allclose(part.offset[:, None] + part.scale[:, None] * part.targets, truth, rtol=1e-12)
        recent = np.stack([values[o - 6 : o + 1, 0] for o in part.origins])
        np.testing.assert_allclose(part.offset[:, None] + part.scale[:, None] * part.inputs[:, :, 0], recent,
                                   rtol=1e-12)
        if scaling == "window":  # ν is the window's mean |y|, and its log level (vs the training std) an input
            np.testing.assert_allclose(part.scale, recent.mean(1), rtol=1e-12)
            np.testing.assert_allclose(part.inputs[:, 0, 2], np.log(part.scale / scaler.std[0]), rtol=1e-12)


def test_window_scaling_sees_the_same_windows_at_any_level():
    """Multiplying the target by c (a level 100× lower, as after a vaccine) leaves every model input
    and target unchanged under window scaling; only ν scales."""
    from grukit.forecasting.windows import standardised_windows

    rng = np.random.default_rng(1)
    values = np.column_stack([rng.gamma(2.0, 50.0, 60), rng.normal(size=60)])
    config = ForecastConfig(target="y", horizon=2, lookback=5, scaling="window")
    shrunk = values * np.array([0.01, 1.0])
    for a, b in zip(standardised_windows(values, config)[0], standardised_windows(shrunk, config)[0]):
        np.testing.assert_allclose(a.inputs, b.inputs, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.targets, b.targets, rtol=1e-9)
        np.testing.assert_allclose(b.scale, 0.01 * a.scale, rtol=1e-12)
    zeros = values.copy()
    zeros[10:20, 0] = 0.0  # an all-zero window divides by the floor, not by zero
    windows, scaler = standardised_windows(zeros, config)
    assert np.isfinite(windows[0].targets).all() and windows[0].scale.min() > 0
    with pytest.raises(InputError, match="scaling must be one of series, window"):
        ForecastConfig(target="y", scaling="global")


def test_window_scaled_panel_forecast_end_to_end(tmp_path):
    path = tmp_path / "panel.csv"
    write_panel(path)
    config = ForecastConfig(target="cases", group="region", horizon=3, lookback=12, season=12, hidden_size=8,
                            epochs=2, scaling="window")
    result = run_forecast(path, config, out_dir=tmp_path / "out", run_dir=tmp_path / "run", progress=False)
    table = pd.read_csv(tmp_path / "out" / "forecast.csv")
    assert table.groupby("region").size().to_dict() == {"north": 3, "south": 3}
    assert (table["cases_lower_10"] <= table["cases_median"]).all()
    assert (table["cases_median"] <= table["cases_upper_90"]).all()
    assert np.isfinite(result.test["GRU (median)"]["smape"])


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-1e4, 1e4), season=st.sampled_from([1, 4, 12]), seed=st.integers(0, 1000))
def test_level_scaling_reads_changes_from_the_window_s_level(shift, season, seed):
    from grukit.forecasting.windows import standardised_windows

    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(0.5, 1.0, 120))[:, None]  # a random walk with drift: it leaves its training range
    config = ForecastConfig(target="y", horizon=5, lookback=16, season=season, scaling="level")
    (train, _, test), _ = standardised_windows(y, config)
    (moved_train, _, moved_test), _ = standardised_windows(y + shift, config)
    for ours, moved in ((train, moved_train), (test, moved_test)):
        # the target column and the targets do not depend on where the level is; only the level input does
        np.testing.assert_allclose(ours.inputs[..., 0], moved.inputs[..., 0], atol=1e-6)
        np.testing.assert_allclose(ours.targets, moved.targets, atol=1e-6)
        future = np.stack([y[o + 1 : o + 6, 0] for o in ours.origins])
        np.testing.assert_allclose(ours.offset[:, None] + ours.scale[:, None] * ours.targets, future, atol=1e-9)
        level = np.stack([y[o - min(season, 16) + 1 : o + 1, 0].mean() for o in ours.origins])
        np.testing.assert_allclose(ours.offset, level, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-1e4, 1e4), season=st.sampled_from([1, 3, 12]), seed=st.integers(0, 1000))
def test_seasonal_scaling_predicts_beyond_the_seasonal_naive_forecast(shift, season, seed):
    from grukit.forecasting.windows import standardised_windows

    rng = np.random.default_rng(seed)
    y = (np.cumsum(rng.normal(0.5, 1.0, 120)) + 5 * np.sin(2 * np.pi * np.arange(120) / 12))[:, None]
    config = ForecastConfig(target="y", horizon=5, lookback=16, season=season, scaling="seasonal")
    (train, _, test), _ = standardised_windows(y, config)
    (_, _, moved), _ = standardised_windows(y + shift, config)
    np.testing.assert_allclose(test.targets, moved.targets, atol=1e-6)  # no dependence on the level
    for part in (train, test):
        naive = seasonal_naive(y[:, 0], part.origins, horizon=5, season=season)
        np.testing.assert_allclose(part.target_offset, naive, atol=1e-12)  # the baseline: seasonal naive
        future = np.stack([y[o + 1 : o + 6, 0] for o in part.origins])
        np.testing.assert_allclose(part.target_offset + part.scale[:, None] * part.targets, future, atol=1e-9)


def test_theta_forecasts_read_nothing_after_their_origin():
    from grukit.forecasting.baselines import theta_forecasts

    rng = np.random.default_rng(0)
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(80) / 12) + 0.2 * np.arange(80) + rng.normal(0, 1, 80)
    changed = y.copy()
    changed[61:] += 100.0  # the future after origin 60
    ours, theirs = (theta_forecasts(v, [40, 60], horizon=6, season=12) for v in (y, changed))
    np.testing.assert_array_equal(ours, theirs)
    assert ours.shape == (2, 6) and np.isfinite(ours).all()
    assert np.abs(ours[1] - y[61:67]).mean() < 5  # it follows the season and the trend


def test_the_scaler_refuses_auto_which_only_the_pipeline_resolves():
    from grukit.forecasting.windows import SeriesScaler

    with pytest.raises(InputError, match="auto is a choice the forecasting pipeline makes"):
        SeriesScaler(np.zeros((30, 1)), fitted_rows=20, config=ForecastConfig(target="y", scaling="auto"))


def test_a_season_longer_than_the_lookback_never_reads_rows_after_the_origin():
    """The seasonal naive forecast from origin o reads row o + 1 − m: the first origin is m − 1."""
    from grukit.forecasting.windows import SeriesScaler

    config = ForecastConfig(target="y", horizon=2, lookback=4, season=12, scaling="seasonal")
    train, _, _ = split_origins(100, config)
    assert train[0] == 11
    values = np.arange(100, dtype=float)[:, None]
    windows = SeriesScaler(values, fitted_rows=60, config=config).windows(train)
    assert (windows.baseline <= windows.origins[:, None]).all()
    assert windows.baseline[0].tolist() == [0.0, 1.0]  # y_{o+1−12}, y_{o+2−12} from o = 11


def test_a_file_without_target_values_is_one_input_error(tmp_path):
    pd.DataFrame({"date": ["2024-01-01"], "v": [""], "k": [1]}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(InputError, match="has no rows with a 'v' value"):
        read_series(tmp_path / "empty.csv", target="v", known=("k",))
    (tmp_path / "header.csv").write_text("date,v\n")
    with pytest.raises(InputError, match="has no rows with a 'v' value"):
        read_series(tmp_path / "header.csv", target="v")
