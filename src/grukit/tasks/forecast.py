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
    """Standardised windows of one series as a TaskData (quantile loss). The h × Q outputs are read
    from the window's last state, or, when the windows end with h steps of known-future inputs
    (`ahead`), step k's from the state at step k of them (readout="ahead", `training.model`)."""

    name = "forecast"

    def __init__(self, splits: tuple[Split, Split, Split], *, features: int, horizon: int, description: str,
                 ahead: bool = False):
        self.splits, self.features, self.horizon, self.description = splits, features, horizon, description
        self.ahead = ahead

    def build(self, *, seed: int) -> TaskData:
        return TaskData("forecast", *self.splits, input_size=self.features,
                        output_size=self.horizon * len(QUANTILES), loss="quantile",
                        readout="ahead" if self.ahead else "last", metric="pinball", lower_is_better=True,
                        description=self.description, ahead=self.horizon if self.ahead else 0)
