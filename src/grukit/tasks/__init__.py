"""The literature's tasks and the articles' applications: dataset builder + metric + baselines.

`TASKS` maps a CLI name to its task class; `make_task(name, **overrides)` builds one with the
overrides applied to its frozen config.
"""

from __future__ import annotations

import dataclasses

from grukit.errors import InputError
from grukit.tasks.adding import AddingTask
from grukit.tasks.agreement import AgreementTask
from grukit.tasks.base import Split, Task, TaskData
from grukit.tasks.clinical import ClinicalTask
from grukit.tasks.copy import CopyTask
from grukit.tasks.digits import DigitsTask
from grukit.tasks.epidemic import EpidemicTask
from grukit.tasks.flipflop import FlipFlopTask
from grukit.tasks.guidance import GuidanceTask
from grukit.tasks.imputation import ImputationTask
from grukit.tasks.kalman import KalmanTask
from grukit.tasks.masked import MaskedTask
from grukit.tasks.observations import ObservationsTask
from grukit.tasks.text import TextTask

TASKS: dict[str, type[Task]] = {
    "adding": AddingTask, "agreement": AgreementTask, "clinical": ClinicalTask, "copy": CopyTask, "digits": DigitsTask,
    "epidemic": EpidemicTask, "flipflop": FlipFlopTask, "guidance": GuidanceTask, "imputation": ImputationTask,
    "kalman": KalmanTask, "masked": MaskedTask, "observations": ObservationsTask, "text": TextTask,
}

__all__ = ["TASKS", "AddingTask", "AgreementTask", "ClinicalTask", "CopyTask", "DigitsTask", "EpidemicTask",
           "FlipFlopTask", "GuidanceTask", "ImputationTask", "KalmanTask", "MaskedTask", "ObservationsTask", "Split",
           "Task", "TaskData", "TextTask", "make_task"]


def make_task(name: str, **overrides) -> Task:
    """A task by name with some of its fields changed, e.g. make_task("adding", steps=200). Raises
    InputError for an unknown name or a field the task does not have (naming the ones it has)."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    task_class = TASKS[name]
    fields = {f.name for f in dataclasses.fields(task_class)} - {"name"}
    unknown = set(overrides) - fields
    if unknown:
        raise InputError(f"task {name!r} has no option {', '.join(sorted(unknown))}; its options: "
                         f"{', '.join(sorted(fields))}")
    return task_class(**overrides)
