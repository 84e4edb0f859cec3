"""`grukit train --data FILE`: the user's irregular observations, long or wide, to a trained GRU-D."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from grukit.app.cli import app
from grukit.nn.validation import InputError
from grukit.tasks import make_task
from grukit.tasks.clinical import simulate_stays

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("observations")
    long = simulate_stays(60, hours=12, seed=1)
    long.to_csv(directory / "long.csv", index=False)
    wide = long.pivot_table(index=["stay", "hour", "died"], columns="variable", values="value").reset_index()
    wide.columns.name = None
    wide.sample(frac=1.0, random_state=0).to_csv(directory / "wide.csv", index=False)  # rows in any order
    return directory


def test_long_and_wide_files_give_the_same_task_data(files):
    common = dict(id="stay", time="hour", label="died")
    long = make_task("observations", path=str(files / "long.csv"), **common).build(seed=0)
    wide = make_task("observations", path=str(files / "wide.csv"), format="wide", **common).build(seed=0)
    assert long.input_size == 18 and long.output_size == 2 and long.metric == "auroc"
    for a, b in zip((long.train, long.validation, long.test), (wide.train, wide.validation, wide.test)):
        torch.testing.assert_close(a.inputs, b.inputs, rtol=0, atol=0)
        assert torch.equal(a.targets, b.targets) and torch.equal(a.lengths, b.lengths)
    # standardised with the training split: observed values of each variable have mean 0 there
    values, mask = long.train.inputs[..., :6], long.train.inputs[..., 6:12].bool()
    for v in range(6):
        assert abs(float(values[..., v][mask[..., v]].mean())) < 1e-5


def test_train_on_a_file_then_evaluate_the_run(files, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(files / "long.csv"), "--format", "long", "--id", "stay",
                                 "--time", "hour", "--label", "died", "--model", "grud", "--epochs", "2",
                                 "--hidden-size", "8", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and "number of measurements" in result.output
    settings = json.loads((run / "config.json").read_text())
    assert settings["task"]["name"] == "observations" and settings["model"]["cell"] == "grud"
    assert (run / "checkpoints" / "best.ckpt").exists()
    again = runner.invoke(app, ["evaluate", str(run)])
    assert again.exit_code == 0, again.output
    auroc = [line for line in result.output.splitlines() if line.startswith("│ model")][0]
    assert auroc in again.output  # the same checkpoint scored the same


def _set(frame, row, column, value):
    frame.loc[row, column] = value


def _repeat_measurement(frame):
    frame.loc[9, ["stay", "hour", "variable"]] = frame.loc[8, ["stay", "hour", "variable"]].to_numpy()


def _second_label(frame):
    frame.loc[0, "died"] = "1" if frame.loc[1, "died"] == "0" else "0"


MALFORMED = {  # file rows: data row k is line k + 2
    "missing column": (lambda f: f.pop("died"), "has no column 'died'"),
    "label not a number": (lambda f: _set(f, 4, "died", "yes"),
                           "must hold numeric class ids (e.g. 0/1), got 'yes' at row 6"),
    "value not a number": (lambda f: _set(f, 7, "value", "high"), "non-numeric or empty value 'high' at row 9"),
    "repeated measurement": (_repeat_measurement, "again (first at row 10)"),
    "two labels in a stay": (_second_label, "different labels"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_one_line_and_writes_nothing(files, tmp_path, case):
    change, message = MALFORMED[case]
    frame = pd.read_csv(files / "long.csv", dtype=str)
    change(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", "from grukit.app.cli import main; main()", "train", "--data",
                             str(path), "--id", "stay", "--time", "hour", "--label", "died", "--run-dir", str(run)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not run.exists() and not (tmp_path / "runs").exists()


def test_task_or_file_not_both_and_a_single_class_is_named(files, tmp_path):
    both = runner.invoke(app, ["train", "adding", "--data", str(files / "long.csv")])
    assert both.exit_code != 0
    frame = pd.read_csv(files / "long.csv")
    frame["died"] = 0
    frame.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(InputError, match="one value .0. in every sequence"):
        make_task("observations", path=str(tmp_path / "one.csv"), id="stay", time="hour", label="died").build(seed=0)
    with pytest.raises(InputError, match="no such file"):
        make_task("observations", path=str(tmp_path / "none.csv")).build(seed=0)
    with pytest.raises(InputError, match="--format must be one of long, wide"):
        make_task("observations", path="x.csv", format="tall")


def test_repeated_measurements_follow_the_duplicates_rule(tmp_path):
    path = tmp_path / "stays.csv"
    path.write_text("stay;hour;variable;value;died\n"  # ;-separated, decimal commas
                    "a;01.03.2024;hr;80;0\na;01.03.2024;hr;90,5;0\na;02.03.2024;hr;70;0\n"
                    "b;01.03.2024;hr;60;1\n")
    common = dict(path=str(path), id="stay", time="hour", label="died")
    with pytest.raises(InputError, match="read as day/month and as month/day alike; pass --dayfirst"):
        make_task("observations", **common).read()
    with pytest.raises(InputError, match="again .first at row 2.; keep one, or pass --duplicates mean"):
        make_task("observations", dayfirst=True, **common).read()
    for rule, kept in (("mean", 85.25), ("last", 90.5)):
        data = make_task("observations", dayfirst=True, duplicates=rule, **common).read()
        values, times = data.values[data.ids.index("a")], data.times[data.ids.index("a")]
        assert values[:, 0].tolist() == [kept, 70.0] and times.tolist() == [0.0, 24.0]  # hours: day-first dates
    with pytest.raises(InputError, match="duplicates must be one of"):
        make_task("observations", dayfirst=True, duplicates="first", **common).read()
