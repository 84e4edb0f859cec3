"""`grukit inspect`: the pictures of a trained run, and report.html as a browser renders it."""

import re
import shutil
import subprocess

import pytest
import torch

from grukit.app.inspect import inspect_run
from grukit.tasks import make_task
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig, fit

PNG = b"\x89PNG\r\n\x1a\n"


def small_run(tmp_path, cell, task="adding", **options):
    built = make_task(task, **options)
    run_dir = tmp_path / f"{task}-{cell}"
    fit(built, built.build(seed=0), ModelConfig(cell=cell, hidden_size=8),
        TrainConfig(max_epochs=1, batch_size=32, progress=False, tensorboard=False), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def gru_report(tmp_path_factory):
    run_dir = small_run(tmp_path_factory.mktemp("inspect"), "gru", steps=12, train_size=64, validation_size=32,
                        test_size=32)
    return run_dir, inspect_run(run_dir)


def test_a_gru_run_gets_every_picture_and_one_report(gru_report):
    run_dir, written = gru_report
    assert sorted(p.name for p in written) == ["gates.png", "gradient.png", "report.html", "saturation.png",
                                               "timescales.png"]
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5_000
    page = (run_dir / "inspect" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4  # self-contained: every image embedded
    assert "http://" not in page and "https://" not in page


def test_an_existing_report_is_kept_without_overwrite(gru_report):
    run_dir, _ = gru_report
    with pytest.raises(Exception, match="exists; pass --overwrite"):
        inspect_run(run_dir)


@pytest.mark.parametrize(("cell", "task", "options", "pictures"), [
    ("lstm", "adding", {"steps": 10, "train_size": 64, "validation_size": 32, "test_size": 32},
     {"gates.png", "saturation.png", "gradient.png", "report.html"}),
    ("rnn", "adding", {"steps": 10, "train_size": 64, "validation_size": 32, "test_size": 32},
     {"gradient.png", "report.html"}),
    ("mingru", "adding", {"steps": 10, "train_size": 64, "validation_size": 32, "test_size": 32},
     {"gates.png", "saturation.png", "timescales.png", "gradient.png", "report.html"}),
    ("grud", "clinical", {"stays": 120, "hours": 12},
     {"gates.png", "saturation.png", "timescales.png", "gradient.png", "decays.png", "report.html"}),
])
def test_every_model_kind_gets_its_pictures(tmp_path, cell, task, options, pictures):
    written = inspect_run(small_run(tmp_path, cell, task, **options))
    assert {p.name for p in written} == pictures


def test_report_opens_in_headless_chromium_with_every_image_loaded(gru_report):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is not installed: `make test` installs Debian's chromium package when it is missing"
    run_dir, _ = gru_report
    page = run_dir / "inspect" / "report.html"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert loaded is not None, dom[:500]
    assert int(loaded.group(1)) == 4


@pytest.fixture(scope="module")
def file_run(tmp_path_factory):
    """A GRU-D trained on a long CSV of simulated stays, and another file of stays in the same layout."""
    from grukit.tasks.clinical import simulate_stays

    directory = tmp_path_factory.mktemp("file-run")
    simulate_stays(60, hours=12, seed=1).to_csv(directory / "stays.csv", index=False)
    other = simulate_stays(30, hours=12, seed=2)
    other.to_csv(directory / "new.csv", index=False)
    task = make_task("observations", path=str(directory / "stays.csv"), id="stay", time="hour", label="died")
    fit(task, task.build(seed=0), ModelConfig(cell="grud", hidden_size=8),
        TrainConfig(max_epochs=1, batch_size=32, progress=False, tensorboard=False), directory / "run")
    return directory, task, other


def test_inspect_reads_another_file_with_the_run_s_statistics(file_run):
    directory, task, _ = file_run
    sequences, description = task.read_other(directory / "new.csv", seed=0)
    assert len(sequences) == 30 and "new.csv: 30 sequences" in description
    # prepared as the run's own file would be: the same file gives the run's own inputs
    same, _ = task.read_other(directory / "stays.csv", seed=0)
    from grukit.tasks.irregular import sequence_splits

    built, (train, _, test) = task.build(seed=0), sequence_splits(60, seed=0)
    assert torch.equal(same.inputs[train], built.train.inputs) and torch.equal(same.inputs[test], built.test.inputs)
    assert torch.equal(same.lengths[test], built.test.lengths)
    written = inspect_run(directory / "run", data=directory / "new.csv", out_dir=directory / "new-report")
    assert {p.name for p in written} == {"gates.png", "saturation.png", "timescales.png", "gradient.png",
                                         "decays.png", "report.html"}
    assert "new.csv: 30 sequences" in (directory / "new-report" / "report.html").read_text()


def test_inspect_data_refuses_what_it_cannot_read_as_the_run_did(file_run, gru_report, tmp_path):
    directory, _, other = file_run
    renamed = other.replace({"variable": {"heart_rate": "pulse"}})
    renamed.to_csv(tmp_path / "renamed.csv", index=False)
    with pytest.raises(Exception, match="names the variable 'pulse'"):
        inspect_run(directory / "run", data=tmp_path / "renamed.csv", out_dir=tmp_path / "a")
    with pytest.raises(Exception, match="generates its data"):
        inspect_run(gru_report[0], data=tmp_path / "renamed.csv", out_dir=tmp_path / "b")
