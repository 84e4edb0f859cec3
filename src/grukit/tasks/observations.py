"""The user's own irregular observations as a classification task (`grukit train --data FILE`).

A CSV in one of two layouts, with one label per sequence:

  long  one row per measurement: id, time, variable, value, label columns (the layout of
        clinical databases: a stay, the hour, "heart_rate", 88, died)
  wide  one row per time a sequence was observed: id, time, label and a column per variable,
        empty where that variable was not measured at that time

Times are numbers (any unit; δ comes out in it) or dates/datetimes (δ in hours). Rows are read
by `IrregularDataset.from_long` (sorted by time within a sequence; every malformed row named by
its line in the file), then become TaskData exactly as the `clinical` task's do
(`clinical.irregular_task_data`): split 70/15/15 by sequence, standardised with the training
split's observed mean and std, inputs [values; mask; δ] for the GRU-D family or any recurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from grukit.data.csv import read_text_table
from grukit.errors import InputError
from grukit.tasks.base import Split, TaskData
from grukit.tasks.irregular import IrregularClassification, inputs_like, irregular_task_data, sequence_splits

FORMATS = ("long", "wide")


@dataclass(frozen=True)
class ObservationsTask(IrregularClassification):
    path: str = ""  # the CSV file
    format: str = "long"  # "long" or "wide" (module docstring)
    id: str = "id"  # column naming each row's sequence
    time: str = "time"  # column of timestamps
    label: str = "label"  # column of the sequence's class (numbers, one value per sequence)
    variable: str = "variable"  # long: column naming the measured variable
    value: str = "value"  # long: column of the measured value
    dayfirst: bool | None = None  # dates like 01.03.2024: day-first, month-first, or None: from the data
    duplicates: str = "error"  # a variable measured twice at one time: "error", "mean" or "last"
    name: str = "observations"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not self.path:
            raise InputError("the observations task needs a CSV file (--data)")

    def read(self, *, variables: tuple[str, ...] | None = None):
        """The IrregularDataset of the file; with `variables`, exactly these in this order (a long
        file naming another variable, or a wide file without one of them or with another, is refused)."""
        import numpy as np
        import pandas as pd

        from grukit.data.irregular import IrregularDataset

        path = Path(self.path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        frame = read_text_table(path).replace("", np.nan)
        keys = [self.id, self.time, self.label]
        needed = keys + ([self.variable, self.value] if self.format == "long" else [])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InputError(f"{path} has no column {missing[0]!r}; its columns: {', '.join(frame.columns)}")
        labels = pd.to_numeric(frame[self.label], errors="coerce")
        if labels.isna().any():
            k = int(np.flatnonzero(labels.isna().to_numpy())[0])
            raise InputError(f"{path}: column {self.label!r} must hold numeric class ids (e.g. 0/1), got "
                             f"{frame[self.label].iloc[k]!r} at row {k + 2}")
        frame[self.label] = labels
        if self.format == "wide":
            columns = [c for c in frame.columns if c not in keys]
            if not columns:
                raise InputError(f"{path}: a wide file needs a column per variable beside {', '.join(keys)}")
            if variables is not None and set(columns) != set(variables):
                absent, extra = sorted(set(variables) - set(columns)), sorted(set(columns) - set(variables))
                raise InputError(f"{path}: the model reads the variables {', '.join(variables)}"
                                 + (f"; the file has no column {', '.join(absent)}" if absent else "")
                                 + (f"; the file has other columns {', '.join(extra)}" if extra else ""))
            variables = list(variables or columns)
            frame = frame.reset_index(names="row")
            frame = frame.melt(id_vars=["row", *keys], value_vars=variables, var_name="variable",
                               value_name="value").dropna(subset=["value"])
            frame = frame.set_index(frame.pop("row")).sort_index(kind="stable")  # rows keep their file order
            frame.index.name = None
            return IrregularDataset.from_long(frame, id=self.id, time=self.time, variable="variable", value="value",
                                              label=self.label, variables=variables, **self._reading(path))
        return IrregularDataset.from_long(frame, id=self.id, time=self.time, variable=self.variable, value=self.value,
                                          label=self.label, variables=variables, **self._reading(path))

    def _reading(self, path: Path) -> dict:
        return {"dayfirst": self.dayfirst, "duplicates": self.duplicates, "where": str(path)}

    def build(self, *, seed: int) -> TaskData:
        data = self.read()
        return irregular_task_data(data, name=self.name, seed=seed,
                                   description=f"{Path(self.path).name}: {len(data)} sequences, "
                                               f"{len(data.variables)} variables; predict {self.label!r}")

    def read_other(self, path, *, seed: int) -> tuple[Split, str]:
        """Another file in this task's layout, prepared for a model trained on this task with `seed`:
        (Split of all its sequences, targets its labels as read; a description). The run's own file
        is read again for its training split's statistics."""
        if not Path(self.path).is_file():
            raise InputError(f"this run was trained on {self.path}, which is not there: preparing another file "
                             "for its model needs that file's training statistics (mean, std, gap unit)")
        reference = self.read()
        other = replace(self, path=str(path)).read(variables=reference.variables)
        train, _, _ = sequence_splits(len(reference), seed=seed)
        inputs, lengths = inputs_like(other, reference, train)
        measured = inputs[..., len(reference.variables) : 2 * len(reference.variables)].sum((0, 1))  # (V,)
        never = [name for name, count in zip(reference.variables, measured.tolist(), strict=True) if count == 0]
        description = f"{Path(path).name}: {len(other)} sequences read as the run's {Path(self.path).name}"
        if never:
            description += f" (never measured there: {', '.join(never)})"
        return Split(inputs, other.labels, lengths), description
