"""The practice exercises of docs/practice: every solution passes its checks, and every stub, and
every wrong answer the exercise lists, fails them — so a check that passes for anything is caught."""

import runpy
from pathlib import Path

import pytest

EXERCISES = sorted((Path(__file__).parents[1] / "docs" / "practice").glob("*.py"))


@pytest.mark.parametrize("path", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_the_solution_passes_and_the_stub_and_wrong_answers_fail(path, capsys):
    namespace = runpy.run_path(str(path))  # runs the exercise, its checks on the solution included
    assert "correct" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        namespace["check"](*namespace["STUBS"])
    with pytest.raises(AssertionError):
        namespace["check"](*namespace["WRONG"])


def test_there_are_exercises():
    assert len(EXERCISES) >= 3
