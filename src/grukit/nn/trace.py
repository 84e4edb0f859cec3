"""Gate traces: what each gate did at every step, for every layer, direction and unit.

Every field is (L·D, B, T, H) — layer-major, forward before reverse, as h_n — holding NaN at
steps beyond a sequence's length. Unbatched input gives (L·D, T, H).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch


class _Trace:
    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        """The same trace with `fn` applied to every recorded gate tensor."""
        return type(self)(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Every recorded gate by its name (a trace with derived gates adds them)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class GRUTrace(_Trace):
    """r, z and n of every GRU step.  The update gate u = 1 − z is derived."""

    reset: torch.Tensor  # r: how much of h enters the candidate
    keep: torch.Tensor  # z (torch's name): share of the old state kept
    candidate: torch.Tensor  # n, the articles' h̃

    @property
    def update(self) -> torch.Tensor:
        """u = 1 − z, the articles' update gate: share of the candidate written into the state."""
        return 1 - self.keep

    def timescale(self) -> torch.Tensor:
        """Memory timescale τ = −1/ln(1 − u) = −1/ln z in steps, per entry.

        The number of steps over which a unit held at this gate value forgets a factor e.
        """
        return -1 / torch.log(self.keep)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"reset": self.reset, "keep": self.keep, "update": self.update, "candidate": self.candidate}


@dataclass(frozen=True)
class LSTMTrace(_Trace):
    """i, f, g, o of every LSTM step."""

    input: torch.Tensor
    forget: torch.Tensor
    cell: torch.Tensor  # g, the cell candidate
    output: torch.Tensor


@dataclass(frozen=True)
class MinGRUTrace(_Trace):
    """u and h̃ of every minGRU step (neither reads h: Feng et al. 2024)."""

    update: torch.Tensor  # u = σ(W_u x + b_u): share of the candidate written into the state
    candidate: torch.Tensor  # h̃ = g(W_h x + b_h)

    def timescale(self) -> torch.Tensor:
        """Memory timescale τ = −1/ln(1 − u) in steps, per entry, as the GRU's."""
        return -1 / torch.log1p(-self.update)
