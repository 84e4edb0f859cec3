"""Tensor operations GRU-D needs besides the values: the mask, the per-variable time gaps δ, the last observations.

For one sequence of T steps at timestamps s_1 < … < s_T with V variables, mask m (1 = observed):

    δ_1 = 0
    δ_t = s_t − s_{t−1} + δ_{t−1}   if m_{t−1} = 0     (the variable was missing at the step before)
    δ_t = s_t − s_{t−1}             if m_{t−1} = 1

so δ_t[v] is the time since variable v was last observed before step t (counting from s_1 when it
never was) — each variable has its own gap (Che et al. 2018, eq. 2). x_last_t[v] is the last value
of v observed before or at step t, and the empirical mean x̄[v] before its first observation (the
paper leaves that case open; the mean is what its imputation tends to at long gaps anyway).
All functions take batches: values, mask (B, T, V), times (B, T).
"""

from __future__ import annotations

import torch

from grukit.errors import InputError


def check_times(times: torch.Tensor, *, lengths: torch.Tensor | None = None) -> None:
    """Timestamps (B, T) must be finite and strictly increasing within each sequence's valid steps."""
    if not isinstance(times, torch.Tensor) or not times.is_floating_point() or times.dim() != 2:
        raise InputError(f"times must be a floating-point (B, T) tensor, got "
                         f"{getattr(times, 'shape', type(times).__name__)}")
    steps = times.shape[1]
    valid = torch.ones_like(times, dtype=torch.bool) if lengths is None else (
        torch.arange(steps)[None, :] < lengths[:, None].cpu())
    bad = ~torch.isfinite(times) & valid
    if bad.any():
        b, t = (int(i) for i in bad.nonzero()[0])
        raise InputError(f"times has a non-finite value at (b={b}, t={t})")
    later = valid[:, 1:]
    not_increasing = (times[:, 1:] <= times[:, :-1]) & later
    if not_increasing.any():
        b, t = (int(i) for i in not_increasing.nonzero()[0])
        what = "repeats" if times[b, t + 1] == times[b, t] else "goes back from"
        raise InputError(f"times are not strictly increasing in sequence b={b}: step t={t + 1} ({times[b, t + 1]:g}) "
                         f"{what} step t={t} ({times[b, t]:g}); sort each sequence by time")


def time_gaps(mask: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """δ (B, T, V) from mask (B, T, V) and times (B, T), by the recursion above."""
    gaps = [torch.zeros(mask.shape[0], mask.shape[2], dtype=times.dtype, device=times.device)]  # δ_1 = 0
    for t in range(1, mask.shape[1]):
        elapsed = (times[:, t] - times[:, t - 1])[:, None]  # (B, 1): the same for every variable
        gaps.append(elapsed + (1 - mask[:, t - 1].to(times.dtype)) * gaps[-1])
    return torch.stack(gaps, dim=1)  # built step by step, not in place: the mask and times may need gradients


def last_observed(values: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """x_last (B, T, V): the latest observed value of each variable up to and including step t,
    the empirical mean (V,) before its first observation. Missing entries of `values` may hold
    anything (NaN included): only observed ones are read."""
    observed = mask.bool()
    last = mean.to(values.dtype).expand(values.shape[0], values.shape[2]).clone()
    out = torch.empty_like(values)
    for t in range(values.shape[1]):
        last = torch.where(observed[:, t], values[:, t], last)
        out[:, t] = last
    return out
