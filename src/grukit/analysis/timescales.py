"""Memory timescales: how many steps a unit remembers, from its update gate and measured directly.

A unit whose update gate sits at u keeps (1 − u) of its state each step, so a perturbation decays
as (1 − u)^k and falls by a factor e after

    τ = −1 / ln(1 − u)      steps (convention "log"; = −1/ln z with torch's keep gate z = 1 − u)

and by half after ln 2 · τ. Tallec & Ollivier (2018, "Can recurrent neural networks warp time?")
use τ = 1/u instead (convention "inverse"), the first-order form of the same quantity for small
u (−ln(1 − u) = u + u²/2 + …): the two agree to within about u/2 (1 % at u = 0.02) and differ
by a factor 1.39 at u = 0.5.

`impulse_response` measures the decay itself: it perturbs one unit of the state at a step, runs
both copies on, and fits the slope of log |Δh| against the steps since. With the state out of the
gates' and the candidate's inputs (zero recurrent weights) Δh_k = (1 − u)^k Δh_0 exactly, so the
measured τ equals the formula's; with recurrent weights it is the unit's effective timescale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from grukit.analysis.step_map import run_states, step_map, time_major, valid_steps
from grukit.errors import InputError, check_choice

Convention = Literal["log", "inverse"]


@dataclass(frozen=True)
class Timescales:
    """Per layer·direction and unit (L·D, H), from the update gate averaged over batch and steps."""

    mean_update: torch.Tensor  # ū
    tau: torch.Tensor  # steps, by `convention`
    half_life: torch.Tensor  # ln 2 / −ln(1 − ū): steps to forget half, whatever the convention
    convention: Convention


def memory_timescales(trace, *, convention: Convention = "log") -> Timescales:
    """τ per unit from a gate trace with an `update` field (GRUTrace, GRUDTrace): (L·D, B, T, H)."""
    check_choice("convention", convention, ("log", "inverse"))
    if not hasattr(trace, "update"):
        raise InputError(f"memory_timescales reads an update gate; a {type(trace).__name__} has none")
    update = trace.update.nanmean(dim=(1, 2))  # (L·D, H), padded steps (NaN) left out
    decay = -torch.log1p(-update)  # −ln(1 − ū)
    tau = 1 / decay if convention == "log" else 1 / update
    return Timescales(update, tau, math.log(2) / decay, convention)


@dataclass(frozen=True)
class ImpulseResponse:
    """The decay of a perturbation of each unit, per layer and unit (L, H), medians over the batch."""

    step: int  # t0, where the state was perturbed
    response: torch.Tensor  # (L, H, K+1): |Δh_{t0+k}| / ε of the perturbed unit, k = 0 … K, batch median
    tau: torch.Tensor  # (L, H): −1 / slope of log response against k (least squares over the steps
    #                    where the gap is above rounding; NaN when fewer than two are)


def impulse_response(model, inputs: torch.Tensor, *, step: int | None = None, epsilon: float = 1e-6,
                     horizon: int | None = None) -> ImpulseResponse:
    """Perturb each unit of each layer's h by ε at step t0 (default T/2) and follow the gap
    between the perturbed and the unperturbed run for `horizon` steps (default: to the end).

    inputs: the module's layout, full-length sequences. Use float64 for small ε."""
    one_step = step_map(model)
    x = one_step.drive(time_major(model, inputs))
    steps, batch = x.shape[0], x.shape[1]
    t0 = steps // 2 if step is None else step
    if not 0 <= t0 < steps - 1:
        raise InputError(f"step must be in 0…{steps - 2} (a perturbation needs steps after it), got {t0}")
    last = steps if horizon is None else min(steps, t0 + 1 + horizon)
    valid = valid_steps(None, steps, batch)
    with torch.no_grad():
        base = run_states(one_step, x[:last], valid=valid[:last])  # s_0 … s_last
        start = base[t0 + 1]  # the state after step t0 (1-based s index)
        layers, hidden = one_step.layers, one_step.hidden
        response = torch.empty(layers, hidden, last - t0, dtype=x.dtype)
        for layer in range(layers):
            for unit in range(hidden):
                index = layer * hidden + unit
                kicked = start.clone()
                kicked[:, index] += epsilon
                followed = run_states(one_step, x[t0 + 1 : last], valid=valid[t0 + 1 : last], start=kicked)
                gaps = torch.stack([(f[:, index] - b[:, index]).abs()
                                    for f, b in zip(followed, base[t0 + 1 :], strict=True)])  # (K+1, B)
                response[layer, unit] = (gaps / epsilon).median(dim=1).values
    # fit only where the gap is well above rounding (1e5 ulps of a state of size 1): below that it is noise
    k = torch.arange(response.shape[-1], dtype=x.dtype).expand_as(response)
    usable = response * epsilon > 1e5 * torch.finfo(x.dtype).eps
    logs = torch.where(usable, torch.log(response.clamp_min(torch.finfo(x.dtype).tiny)), 0.0)
    count = usable.sum(-1)
    k_mean = torch.where(usable, k, 0.0).sum(-1) / count.clamp_min(1)
    log_mean = logs.sum(-1) / count.clamp_min(1)
    centred = torch.where(usable, k - k_mean[..., None], 0.0)
    slope = (centred * (logs - log_mean[..., None])).sum(-1) / (centred**2).sum(-1)
    slope = torch.where(count >= 2, slope, torch.nan)  # too few usable steps: no estimate
    return ImpulseResponse(t0, response, -1 / slope)


def plot_timescales(timescales: Timescales, *, ax=None, bins: int = 30):
    """Histogram of τ over units (log-spaced bins), one layer·direction per colour."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    tau = timescales.tau.detach()
    finite = tau[torch.isfinite(tau)]
    if finite.numel() == 0:
        raise InputError("no finite timescale to plot")
    edges = torch.logspace(math.log10(float(finite.min())), math.log10(float(finite.max()) * 1.0001), bins + 1)
    for row in range(tau.shape[0]):
        ax.hist(tau[row][torch.isfinite(tau[row])].numpy(), bins=edges.numpy(), alpha=0.6, label=f"layer·dir {row}")
    ax.set_xscale("log")
    ax.set_xlabel(f"memory timescale τ (steps, {timescales.convention} convention)")
    ax.set_ylabel("units")
    if tau.shape[0] > 1:
        ax.legend()
    return ax
