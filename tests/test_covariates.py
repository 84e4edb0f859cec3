"""Known-future and static covariates: read from the file or a second file, checked, laid out in the
windows, and used: a GRU told the promotion days ahead forecasts them."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from grukit.app.forecast import forecast_from, run_forecast
from grukit.data.series import read_panel, read_series
from grukit.errors import InputError
from grukit.forecasting.covariates import encode_static, static_encoding
from grukit.forecasting.inputs import read_forecast_input
from grukit.forecasting.windows import ForecastConfig, SeriesScaler

HORIZON = 7


def promotions(n=200, ahead=HORIZON, seed=0):
    """Daily sales lifted by 5 on promotion days; `ahead` rows after the last sale with the target empty."""
    rng = np.random.default_rng(seed)
    promo = (rng.random(n + ahead) < 0.25).astype(int)
    sales = 10 + 5 * promo[:n] + rng.normal(0, 0.3, n)
    return pd.DataFrame({"date": pd.date_range("2021-03-01", periods=n + ahead, freq="D").strftime("%Y-%m-%d"),
                         "sales": [f"{v:.3f}" for v in sales] + [""] * ahead, "promo": promo})


def test_future_rows_are_read_from_the_end_of_the_file_or_a_second_file(tmp_path):
    frame = promotions(40, ahead=3)
    frame.to_csv(tmp_path / "all.csv", index=False)
    series = read_series(tmp_path / "all.csv", target="sales", known=("promo",))
    assert len(series) == 40 and series.values.shape == (40, 2) and series.known == ("promo",)
    assert series.future_known[:, 0].tolist() == frame["promo"].iloc[40:].astype(float).tolist()
    frame.iloc[:40].to_csv(tmp_path / "past.csv", index=False)
    frame.iloc[40:][["date", "promo"]].to_csv(tmp_path / "future.csv", index=False)
    second = read_series(tmp_path / "past.csv", target="sales", known=("promo",), future=tmp_path / "future.csv")
    assert np.array_equal(second.future_known, series.future_known) and np.array_equal(second.values, series.values)
    with pytest.raises(InputError, match="give them in one place"):
        read_series(tmp_path / "all.csv", target="sales", known=("promo",), future=tmp_path / "future.csv")
    with pytest.raises(InputError, match="but none is named"):
        read_series(tmp_path / "past.csv", target="sales", future=tmp_path / "future.csv")


def test_future_rows_must_continue_the_calendar_and_hold_numbers(tmp_path):
    frame = promotions(40, ahead=3)
    frame.loc[42, "date"] = "2021-04-15"
    frame.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(InputError, match=r"row 44 \(2021-04-15\) should be 2021-04-12, 3 steps \(daily\) after the "
                                         r"last target row \(2021-04-09\)"):
        read_series(tmp_path / "gap.csv", target="sales", known=("promo",))
    frame = promotions(40, ahead=3)
    frame["promo"] = frame["promo"].astype(str)
    frame.loc[41, "promo"] = ""
    frame.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(InputError, match=r"column 'promo' has an empty value at row 43 \(the rows after the last "
                                         "target value hold the known covariates' future\\)"):
        read_series(tmp_path / "empty.csv", target="sales", known=("promo",))
    promotions(40, ahead=0).to_csv(tmp_path / "none.csv", index=False)
    config = ForecastConfig(target="sales", known=("promo",), horizon=3, lookback=5)
    with pytest.raises(InputError, match="needs the known covariates 'promo' for the 3 rows after the last 'sales' "
                                         "value; 0 such rows are given: add them .* or pass them in a second file "
                                         "with --future"):
        read_forecast_input(tmp_path / "none.csv", config)
    assert len(read_forecast_input(tmp_path / "none.csv", config, ahead=False)[""]) == 40  # a backtest needs none


def test_windows_carry_the_known_values_ahead_and_the_static_inputs():
    rng = np.random.default_rng(1)
    values = np.column_stack([rng.normal(size=30), rng.normal(size=30), rng.integers(0, 2, 30)])  # y, past, known
    future = rng.integers(0, 2, (4, 1)).astype(float)
    config = ForecastConfig(target="y", covariates=("x",), known=("k",), horizon=4, lookback=6, scaling="level")
    scaler = SeriesScaler(values, fitted_rows=20, config=config, future=future, static=np.array([0.5, 1.0]))
    windows = scaler.windows(np.array([5, 25]))
    assert windows.inputs.shape == (2, 10, 3 + 1 + 1 + 2)  # L + h steps; y, x, k, level, ahead flag, 2 static
    known = (np.concatenate([values[:, 2], future[:, 0]]) - scaler.mean[2]) / scaler.std[2]
    assert np.allclose(windows.inputs[0, :, 2], known[0:10]) and np.allclose(windows.inputs[1, :, 2], known[20:30])
    assert np.all(windows.inputs[:, 6:, :2] == 0)  # neither the target nor the past covariate is seen ahead
    assert np.all(windows.inputs[:, :6, 4] == 0) and np.all(windows.inputs[:, 6:, 4] == 1)
    assert np.all(windows.inputs[:, 6:, 3] == windows.inputs[:, 5:6, 3])  # the level input, unchanged ahead
    assert np.all(windows.inputs[..., 5:] == [0.5, 1.0])
    last = scaler.windows(np.array([29]), with_targets=False)
    assert np.allclose(last.inputs[0, 6:, 2], known[30:34])
    with pytest.raises(InputError, match="give their next 1 values after the last target row"):
        SeriesScaler(values, fitted_rows=20, config=config, future=future[:3]).windows(np.array([29]),
                                                                                       with_targets=False)


def panel_with_attributes(tmp_path, *, change=False):
    rows = []
    for store, (size, region) in {"a": (100, "north"), "b": (300, "south"), "c": (200, "north")}.items():
        for t in range(60):
            rows.append({"date": str(2000 + t), "store": store, "sales": size / 10 + np.sin(t), "size": size,
                         "region": "east" if change and store == "c" and t == 30 else region})
    pd.DataFrame(rows).to_csv(tmp_path / "stores.csv", index=False)
    return tmp_path / "stores.csv"


def test_static_attributes_are_one_value_per_group_encoded_over_the_panel(tmp_path):
    panel = read_panel(panel_with_attributes(tmp_path), target="sales", group="store", static=("size", "region"))
    assert panel["b"].static == {"size": "300", "region": "south"}
    encoding = static_encoding({name: s.static for name, s in panel.items()}, ("size", "region"))
    assert encoding["size"] == {"mean": 200.0, "std": pytest.approx(np.std([100, 300, 200]))}
    assert encoding["region"] == {"categories": ["north", "south"]}
    assert encode_static(panel["b"].static, encoding, where="b") == pytest.approx([1.0 / np.std([1, 3, 2]), 0, 1])
    with pytest.raises(InputError, match="static column 'region' has the value 'west', which the model never saw"):
        encode_static({"size": "1", "region": "west"}, encoding, where="d")
    with pytest.raises(InputError, match=r"group 'c'\): static column 'region' changes from 'north' \(row 122\) to "
                                         r"'east' \(row 152\)"):
        read_panel(panel_with_attributes(tmp_path, change=True), target="sales", group="store", static=("region",))
    with pytest.raises(InputError, match="--static needs --group"):
        ForecastConfig(target="sales", static=("size",))


def test_a_gru_told_the_promotions_ahead_forecasts_them(tmp_path):
    promotions().to_csv(tmp_path / "sales.csv", index=False)
    promotions().iloc[:-HORIZON].to_csv(tmp_path / "past.csv", index=False)
    common = dict(target="sales", horizon=HORIZON, lookback=14, scaling="level", hidden_size=32, epochs=60)
    told = run_forecast(tmp_path / "sales.csv", ForecastConfig(known=("promo",), **common), out_dir=tmp_path / "k",
                        run_dir=tmp_path / "run-k", progress=False)
    with pytest.raises(InputError, match="'sales' is empty from row 202 to the end: .* name them with --known"):
        read_series(tmp_path / "sales.csv", target="sales", covariates=("promo",))
    blind = run_forecast(tmp_path / "past.csv", ForecastConfig(covariates=("promo",), **common),
                         out_dir=tmp_path / "p", run_dir=tmp_path / "run-p", progress=False)
    told_mase, blind_mase = told.test["GRU (median)"]["mase"], blind.test["GRU (median)"]["mase"]
    assert told_mase < 0.5 * blind_mase, (told_mase, blind_mase)  # the lift is 5, the noise 0.3
    promo_ahead = promotions()["promo"].iloc[-HORIZON:].to_numpy() == 1
    median = told.future["median"]
    assert median[promo_ahead].min() > median[~promo_ahead].max()
    again = forecast_from(tmp_path / "run-k", tmp_path / "sales.csv", out_dir=tmp_path / "again")
    assert np.array_equal(again.future["median"], median)


def test_static_panel_forecasts_again_only_with_the_same_attributes(tmp_path):
    path = panel_with_attributes(tmp_path)
    config = ForecastConfig(target="sales", group="store", static=("size", "region"), horizon=3, lookback=8,
                            scaling="level", hidden_size=8, epochs=2)
    first = run_forecast(path, config, out_dir=tmp_path / "out", run_dir=tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "level" / "forecast_model.json").read_text()) if (
        tmp_path / "run" / "level").is_dir() else json.loads((tmp_path / "run" / "forecast_model.json").read_text())
    assert len(saved["series"]["a"]["static"]) == 3
    again = forecast_from(tmp_path / "run", path, out_dir=tmp_path / "again")
    assert np.array_equal(again.future["median"], first.future["median"])
    frame = pd.read_csv(path)
    frame.loc[frame.store == "b", "region"] = "north"
    frame.to_csv(tmp_path / "moved.csv", index=False)
    with pytest.raises(InputError, match="group 'b' has region 'north'; the model of .* was trained with 'south'"):
        forecast_from(tmp_path / "run", tmp_path / "moved.csv", out_dir=tmp_path / "moved")


def test_cli_names_a_missing_future_in_one_line(tmp_path):
    promotions(60, ahead=2).to_csv(tmp_path / "short.csv", index=False)
    command = [sys.executable, "-c", "from grukit.app.cli import main; main()", "forecast", str(tmp_path / "short.csv"),
               "--target", "sales", "--known", "promo", "--horizon", "7", "--lookback", "7"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "for the 7 rows after the last 'sales' value; 2 such rows are given" in done.stderr
    assert not (tmp_path / "forecast.csv").exists()
