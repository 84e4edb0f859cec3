"""Forecast windows as a task: the quantile loss, one read-out of h × Q values per window."""

from __future__ import annotations

import torch

from grukit.forecasting.windows import Windows
from grukit.tasks.base import QUANTILES, Split, Task, TaskData


def window_split(windows: Windows) -> Split:
    """The windows as a Split (float32 inputs and targets, each window's origin as its group)."""
    return Split(torch.tensor(windows.inputs, dtype=torch.float32), torch.tensor(windows.targets, dtype=torch.float32),
                 groups=torch.tensor(windows.origins))


class ForecastTask(Task):
    """Standardised windows of one series as a TaskData (quantile loss, one read-out per window)."""

    name = "forecast"

    def __init__(self, splits: tuple[Split, Split, Split], *, features: int, horizon: int, description: str):
        self.splits, self.features, self.horizon, self.description = splits, features, horizon, description

    def build(self, *, seed: int) -> TaskData:
        return TaskData("forecast", *self.splits, input_size=self.features,
                        output_size=self.horizon * len(QUANTILES), loss="quantile", readout="last",
                        metric="pinball", lower_is_better=True, description=self.description)
