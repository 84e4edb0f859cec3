"""Imputation: predict observations the model was not shown, scored by MAE on those entries.

The protocol of masked imputation (as in PyPOTS and SAITS): from partially observed sequences a
seeded fraction `held_out` of the *observed* entries is removed from the model's input — its mask
becomes 0 and δ keeps growing past it — and kept as the target. The model reads [values; mask; δ]
(the layout of `clinical`) and outputs at every step a value for every variable, (B, T, V), from
its state after that step: what it has seen up to and including the step, never after it (the
models are causal; so are the baselines). Loss: mean squared error over the held-out entries of the
training sequences ("masked_mse"); metric: MAE over the held-out entries of the test sequences,
in units of each variable's training standard deviation.

Sources (`source`):

  clinical        the `clinical` simulator's stays (6 vitals and labs, informative missingness)
  basicmotions    `masked`'s sets, with `missing` of the entries hidden first by `pattern`
  japanesevowels  (mcar or mnar); the dataset's own test split
  dengue          Medellín's weekly dengue series (`grukit dataset dengue-medellin`): log(1 + cases),
                  rainfall and temperature, `missing` hidden by `pattern`, cut into windows of
                  `window` weeks; training windows from the first 70% of the weeks (stride
                  window/4), validation and test windows from the next 15% and the last 15% (every
                  start: each window draws its own held-out entries, so the few test weeks are
                  scored many times over, in different contexts); the test weeks come after every
                  week trained on

Baselines on the same held-out entries: the empirical mean (0 after standardisation) and the last
observation carried forward (the mean before the first) — GRU-D's two imputations at γ_x = 0
and γ_x = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from grukit.errors import InputError, check_positive
from grukit.tasks.base import Split, Task, TaskData
from grukit.tasks.irregular import IrregularClassification, irregular_inputs, sequence_splits

SOURCES = ("clinical", "basicmotions", "japanesevowels", "dengue")
TRAIN_FRACTION, VALIDATION_FRACTION = 0.7, 0.15  # dengue: the weeks' split in time


@dataclass(frozen=True)
class ImputationTask(Task):
    source: str = "clinical"  # one of SOURCES
    held_out: float = 0.1  # fraction of the observed entries hidden from the model and scored
    missing: float = 0.5  # masked sources (basicmotions, japanesevowels, dengue): entries hidden first
    pattern: str = "mcar"  # and how: "mcar" or "mnar" (see `masked`)
    stays: int = 3_000  # clinical
    hours: int = 48  # clinical
    window: int = 26  # dengue: weeks per sequence
    name: str = "imputation"

    compared_models: ClassVar[dict[str, str]] = IrregularClassification.compared_models

    def __post_init__(self) -> None:
        from grukit.tasks.masked import check_masking

        if self.source not in SOURCES:
            raise InputError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if not 0.0 < self.held_out < 1.0:
            raise InputError(f"held_out must be a fraction in (0, 1), got {self.held_out!r}")
        check_masking(self.missing, self.pattern)
        check_positive(stays=self.stays, hours=self.hours, window=self.window)
        if self.window < 4:
            raise InputError(f"window must be at least 4 weeks, got {self.window}")

    def build(self, *, seed: int) -> TaskData:
        from grukit.data.irregular import IrregularDataset

        rng = np.random.default_rng(seed)
        sequences, times, variables, splits = self._sequences(rng, seed=seed)
        held = [~np.isnan(x) & (rng.random(x.shape) < self.held_out) for x in sequences]
        shown = IrregularDataset.from_arrays([np.where(h, np.nan, x) for x, h in zip(sequences, held)], times,
                                             variables=variables)
        train, validation, test = sequence_splits(len(shown), seed=seed, splits=splits)
        batch, inputs, (mean, std) = irregular_inputs(shown, train)
        targets = torch.full(batch.values.shape, float("nan"), dtype=batch.values.dtype)
        for row, (x, h) in enumerate(zip(sequences, held)):
            truth = torch.as_tensor(np.where(h, x, np.nan), dtype=batch.values.dtype)
            targets[row, : len(x)] = (truth - mean) / std
        for part, index in (("training", train), ("test", test)):
            if torch.isnan(targets[index]).all():
                raise InputError(f"no observation of the {part} sequences was held out: raise held_out")

        def split(index: torch.Tensor) -> Split:
            return Split(inputs[index], targets[index], batch.lengths[index])

        return TaskData(self.name, split(train), split(validation), split(test), input_size=3 * len(variables),
                        output_size=len(variables), loss="masked_mse", readout="sequence", metric="mae",
                        lower_is_better=True,
                        description=f"{self._describe()}: impute {100 * self.held_out:.0f}% held-out observations")

    def _describe(self) -> str:
        if self.source == "clinical":
            return f"simulated ICU stays ({self.hours} h)"
        window = f", {self.window}-week windows" if self.source == "dengue" else ""
        return f"{self.source}, {100 * self.missing:.0f}% {self.pattern.upper()} missing{window}"

    def _sequences(self, rng: np.random.Generator, *, seed: int):
        """(sequences (T_i, V) with NaN where missing, times (T_i,), variable names, splits or None)."""
        if self.source == "clinical":
            from grukit.data.irregular import IrregularDataset
            from grukit.tasks.clinical import VARIABLES, simulate_stays

            frame = simulate_stays(self.stays, hours=self.hours, seed=seed)
            data = IrregularDataset.from_long(frame, id="stay", time="hour", variable="variable", value="value",
                                              variables=tuple(v[0] for v in VARIABLES))
            return [x.numpy() for x in data.values], [t.numpy() for t in data.times], data.variables, None
        if self.source == "dengue":
            return self._dengue(rng)
        from grukit.tasks.masked import masked_sequences

        sequences, _, splits = masked_sequences(self.source, missing=self.missing, pattern=self.pattern, rng=rng)
        width = sequences[0].shape[1]
        return sequences, [np.arange(len(x), dtype=float) for x in sequences], \
            tuple(f"channel{k}" for k in range(width)), splits

    def _dengue(self, rng: np.random.Generator):
        from grukit.data.real import dengue_medellin
        from grukit.tasks.masked import hide

        frame = dengue_medellin()
        series = np.column_stack([np.log1p(frame["cases"].to_numpy()), frame["rain"].to_numpy(),
                                  frame["temperature"].to_numpy()])
        series = hide([series], missing=self.missing, pattern=self.pattern, rng=rng)[0]
        weeks = len(series)
        ends = (round(TRAIN_FRACTION * weeks), round((TRAIN_FRACTION + VALIDATION_FRACTION) * weeks), weeks)
        starts, parts = [], []
        for part, (begin, end) in enumerate(zip((0, *ends[:2]), ends)):
            stride = max(1, self.window // 4) if part == 0 else 1
            chosen = list(range(begin, end - self.window + 1, stride))
            if not chosen:
                raise InputError(f"window {self.window} is longer than the {end - begin} weeks of a split; "
                                 "choose a shorter window")
            parts.append(np.arange(len(starts), len(starts) + len(chosen)))
            starts += chosen
        sequences = [series[s : s + self.window] for s in starts]
        times = [np.arange(s, s + self.window, dtype=float) for s in starts]
        return sequences, times, ("log1p_cases", "rain", "temperature"), tuple(parts)

    def baselines(self, data: TaskData) -> dict[str, float]:
        """MAE on the test split's held-out entries of the empirical mean and of the last
        observation carried forward."""
        from grukit.nn.time_gaps import last_observed

        test, variables = data.test, data.output_size
        values, mask = test.inputs[..., :variables], test.inputs[..., variables : 2 * variables]
        scored = ~torch.isnan(test.targets)
        carried = last_observed(values, mask, torch.zeros(variables))
        return {"empirical mean": float(test.targets[scored].abs().mean()),
                "last observation carried forward": float((carried - test.targets)[scored].abs().mean())}
