"""`grukit experiment`: every report states the claim, the figure, the criterion and a verdict, and
writes its PNG and JSON. The cheap experiments run here; `all --quick` runs in `make test-all`."""

import json
import subprocess
import sys

import pytest

from grukit.experiments import EXPERIMENTS, run_experiment

PNG = b"\x89PNG\r\n\x1a\n"


def check_files(out, name):
    report = json.loads((out / f"{name}.json").read_text())
    assert report["name"] == name and report["verdict"] in ("PASS", "FAIL")
    for key in ("claim", "criterion", "measured"):
        assert len(report[key]) > 20, key
    assert (out / f"{name}.png").read_bytes().startswith(PNG)
    return report


@pytest.mark.parametrize("name", ["reductions", "highway", "timescale", "parameters"])
def test_the_analytic_experiments_pass_and_write_their_report(tmp_path, name):
    report = run_experiment(name, quick=True, out_dir=tmp_path)
    assert report.verdict == "PASS", report.measured
    assert check_files(tmp_path, name)["numbers"]


def test_the_command_prints_claim_measure_criterion_and_verdict(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grukit.app.cli", "experiment", "reductions", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "reductions: PASS"
    assert [line.split()[0] for line in lines[1:4]] == ["claim", "measured", "criterion"]
    assert result.stderr == ""


def test_an_unknown_experiment_is_one_readable_line():
    result = subprocess.run([sys.executable, "-m", "grukit.app.cli", "experiment", "warp"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("grukit: error: unknown experiment 'warp'; choose one of vanishing")


@pytest.mark.slow
def test_all_quick_experiments_run_and_report(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grukit.app.cli", "experiment", "all", "--quick", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in EXPERIMENTS:
        check_files(tmp_path, name)
    assert f"of {len(EXPERIMENTS)} passed" in result.stdout.splitlines()[-1]
