"""Irregularly sampled, partially observed sequences: from users' arrays or long-format tables
(id, time, variable, value) to the padded values, mask and times GRU-D reads.

The gaps δ and last observations themselves are computed by `grukit.nn.time_gaps`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grukit.data.csv import parse_times
from grukit.errors import InputError, check_choice
from grukit.nn.time_gaps import check_times, time_gaps

DUPLICATES = ("error", "mean", "last")  # a variable measured twice at one time (IrregularDataset.from_long)


@dataclass(frozen=True)
class IrregularBatch:
    """Padded to the longest sequence: values (B, T, V) with NaN where missing (and in padding),
    mask (B, T, V), times (B, T) (padding continues the last time by 1 per step), gaps δ (B, T, V),
    lengths (B,), labels (B,) or None. `GRUD(..., batch_first=True)(values, mask=, gaps=, lengths=)`."""

    values: torch.Tensor
    mask: torch.Tensor
    times: torch.Tensor
    gaps: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor | None


@dataclass(frozen=True)
class IrregularDataset:
    """Sequences of irregularly timed, partially observed steps.

    values[i] (T_i, V) float64 with NaN where a variable was not measured; times[i] (T_i,) strictly
    increasing; labels (N,) or None; variables: V names; ids: N sequence ids.
    Rules: from_long sorts each sequence's rows by time (each row carries its timestamp) and merges
    the variables measured at one timestamp into one step; a step with nothing observed is never
    created. Datetime timestamps become hours since the sequence's first row.
    """

    values: tuple[torch.Tensor, ...]
    times: tuple[torch.Tensor, ...]
    labels: torch.Tensor | None
    variables: tuple[str, ...]
    ids: tuple

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def from_arrays(cls, values, times, *, labels=None, variables=None) -> IrregularDataset:
        """values: a list of (T_i, V) arrays (NaN = missing) or one (N, T, V) array; times likewise
        (T_i,) or (N, T). Each sequence's times must be finite and strictly increasing."""
        seqs = [torch.as_tensor(v, dtype=torch.float64) for v in values]
        stamps = [torch.as_tensor(t, dtype=torch.float64) for t in times]
        if len(seqs) != len(stamps) or not seqs:
            raise InputError(f"values and times must list the same number (≥ 1) of sequences, got {len(seqs)} "
                             f"and {len(stamps)}")
        width = seqs[0].shape[-1] if seqs[0].dim() == 2 else None
        for i, (v, t) in enumerate(zip(seqs, stamps)):
            if v.dim() != 2 or v.shape[1] != width or t.shape != (v.shape[0],) or v.shape[0] == 0:
                raise InputError(f"sequence {i}: values must be (T, {width}) and times (T,), got "
                                 f"{tuple(v.shape)} and {tuple(t.shape)}")
            if torch.isinf(v).any():
                raise InputError(f"sequence {i}: values hold an infinite entry (use NaN for missing)")
            check_times(t[None])
        names = tuple(variables) if variables is not None else tuple(f"x{k}" for k in range(width))
        if len(names) != width:
            raise InputError(f"{len(names)} variable names for {width} variables")
        label_tensor = None if labels is None else torch.as_tensor(labels, dtype=torch.float64)
        if label_tensor is not None and label_tensor.shape != (len(seqs),):
            raise InputError(f"labels must be one per sequence ({len(seqs)}), got shape {tuple(label_tensor.shape)}")
        return cls(tuple(seqs), tuple(stamps), label_tensor, names, tuple(range(len(seqs))))

    @classmethod
    def from_long(cls, frame, *, id: str, time: str, variable: str, value: str, label: str | None = None,
                  variables=None, dayfirst: bool | None = None, duplicates: str = "error",
                  where: str = "the observations") -> IrregularDataset:
        """One row per measurement: (id, time, variable, value[, label]) columns of a DataFrame.
        variables: the variables to keep, in this order (default: all, sorted); a row naming another
        one is an error. Times are numbers or dates (`data.csv.parse_times`; dayfirst for dates that
        do not tell day from month), dates becoming hours since each sequence's first row.
        duplicates: one variable measured twice at one time of a sequence is an "error" (the rows
        named), or kept as the "mean" of the measurements, or as the "last" in file order."""
        import numpy as np
        import pandas as pd

        needed = [id, time, variable, value, *([label] if label else [])]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InputError(f"the observations have no column {missing[0]!r}; columns: {', '.join(frame.columns)}")
        rows = frame.index.to_numpy() + 2  # as in a CSV file with a header
        numbers = pd.to_numeric(frame[value], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise InputError(f"column {value!r} has a non-numeric or empty value {frame[value].iloc[bad[0]]!r} "
                             f"at row {rows[bad[0]]}")
        check_choice("duplicates", duplicates, DUPLICATES)
        parsed = parse_times(frame[time], where=where, column=time, rows=rows, dayfirst=dayfirst)
        if parsed.dtype.kind == "M":
            stamps = pd.Series(parsed.astype(np.int64) / 3.6e12, index=frame.index)  # hours
            stamps = stamps - stamps.groupby(frame[id]).transform("min")
        else:
            stamps = pd.Series(parsed, index=frame.index)
        names = tuple(variables) if variables is not None else tuple(sorted(frame[variable].astype(str).unique()))
        column = {name: k for k, name in enumerate(names)}
        unknown = ~frame[variable].astype(str).isin(column)
        if unknown.any():
            k = int(np.flatnonzero(unknown.to_numpy())[0])
            raise InputError(f"row {rows[k]} names the variable {frame[variable].iloc[k]!r}, not one of "
                             f"{', '.join(names)}")
        table = pd.DataFrame({"id": frame[id].to_numpy(), "time": stamps.to_numpy(dtype=float),
                              "variable": frame[variable].astype(str).map(column).to_numpy(), "value": numbers,
                              "row": rows})
        duplicated = table.duplicated(["id", "time", "variable"], keep="first")
        if duplicated.any() and duplicates != "error":
            keys = ["id", "time", "variable"]
            merged = (table.groupby(keys, sort=False).agg(value=("value", duplicates), row=("row", "first"))
                      .reset_index())
            table, duplicated = merged, np.zeros(len(merged), dtype=bool)
        if duplicated.any():
            k = int(np.flatnonzero(duplicated.to_numpy())[0])
            first = table[(table.id == table.id.iloc[k]) & (table.time == table.time.iloc[k])
                          & (table.variable == table.variable.iloc[k])].row.iloc[0]
            raise InputError(f"row {rows[k]} measures {names[table.variable.iloc[k]]!r} of {table.id.iloc[k]!r} at "
                             f"time {table.time.iloc[k]:g} again (first at row {first}); keep one, or pass "
                             "--duplicates mean or --duplicates last")
        if label:  # one per sequence, looked up once
            per_sequence = frame.groupby(id)[label]
            distinct = per_sequence.nunique(dropna=False)
            if (distinct != 1).any():
                key = distinct.index[int(np.flatnonzero((distinct != 1).to_numpy())[0])]
                raise InputError(f"sequence {key!r} has {distinct[key]} different labels in {label!r}; it needs one")
            label_of = per_sequence.first()
        values, times, ids, labels = [], [], [], []
        for key, group in table.sort_values(["id", "time"], kind="stable").groupby("id", sort=False):
            steps = np.unique(group.time.to_numpy())
            grid = np.full((len(steps), len(names)), np.nan)
            grid[np.searchsorted(steps, group.time.to_numpy()), group.variable.to_numpy()] = group.value.to_numpy()
            values.append(torch.from_numpy(grid))
            times.append(torch.from_numpy(steps.astype(float)))
            ids.append(key)
            if label:
                labels.append(float(label_of[key]))
        return cls(tuple(values), tuple(times), torch.tensor(labels, dtype=torch.float64) if label else None,
                   names, tuple(ids))

    def empirical_mean(self, indices=None) -> torch.Tensor:
        """x̄ (V,): each variable's mean over the observed values of the chosen sequences (the
        training split: never the test data). A variable never observed there is an error."""
        chosen = range(len(self)) if indices is None else [int(i) for i in indices]
        stacked = torch.cat([self.values[i] for i in chosen])
        observed = ~torch.isnan(stacked)
        counts = observed.sum(0)
        if (counts == 0).any():
            name = self.variables[int((counts == 0).nonzero()[0])]
            raise InputError(f"variable {name!r} is never observed in the chosen sequences: it has no mean; "
                             "drop it or add data")
        return torch.nan_to_num(stacked).sum(0) / counts

    def collate(self, indices, *, dtype: torch.dtype = torch.float32) -> IrregularBatch:
        """The chosen sequences as one padded IrregularBatch of `dtype` (that of the model; times and
        gaps δ are computed in float64 from the real timestamps first)."""
        chosen = [int(i) for i in indices]
        lengths = torch.tensor([self.values[i].shape[0] for i in chosen])
        steps, width = int(lengths.max()), len(self.variables)
        values = torch.full((len(chosen), steps, width), float("nan"), dtype=torch.float64)
        times = torch.zeros(len(chosen), steps, dtype=torch.float64)
        for row, i in enumerate(chosen):
            n = self.values[i].shape[0]
            values[row, :n] = self.values[i]
            times[row, :n] = self.times[i]
            times[row, n:] = self.times[i][-1] + torch.arange(1, steps - n + 1, dtype=torch.float64)
        mask = (~torch.isnan(values)).to(torch.float64)
        gaps = time_gaps(mask, times)
        return IrregularBatch(values.to(dtype), mask.to(dtype), times.to(dtype), gaps.to(dtype), lengths,
                              None if self.labels is None else self.labels[chosen].to(dtype))
