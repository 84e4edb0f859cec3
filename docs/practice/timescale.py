# %% [markdown]
# # The memory timescale of a constant update gate
#
# With a constant update gate u and no input, h_t = (1 − u) h_{t−1}: an impulse decays as
# (1 − u)^t = e^{−t/τ}, so τ = −1/ln(1 − u) steps (the steps over which the memory falls by a
# factor e). Write `timescale(u)` and `measured_timescale(u)`: the second runs a one-unit
# `grukit.GRUCell` whose update gate is pinned at u (saturate nothing else: set the gate's bias to
# logit(1 − u) for z, weights zero) on an impulse h_0 = 1 with zero input, and finds the first step
# t at which h_t ≤ e^{−1}, interpolating log h linearly between steps. `check` compares both for
# several u.

# %%
import math

import torch

import grukit


def timescale(u: float) -> float:
    """τ = −1/ln(1 − u). Your code here."""
    raise NotImplementedError("derive the timescale")


def measured_timescale(u: float) -> float:
    """The impulse response's e-folding time, measured on a GRUCell. Your code here."""
    raise NotImplementedError("measure it")


STUBS = (timescale, measured_timescale)  # what `check` is called with once you have written them


# %% [markdown]
# ## The checks

# %%
def check(derived, measured) -> None:
    for u in (0.01, 0.05, 0.2, 0.5):
        expected = 1 / -math.log(1 - u)
        assert abs(derived(u) - expected) < 1e-12 * expected, f"τ({u}) is {expected:.4f}"
        assert abs(measured(u) - expected) < 1e-6 * expected, f"the measured τ({u}) should be {expected:.4f}"
    print("correct: the impulse decays with τ = −1/ln(1 − u)")


# %% [markdown]
# ## A solution

# %%
def solution_timescale(u: float) -> float:
    return -1 / math.log(1 - u)


def solution_measured(u: float) -> float:
    cell = grukit.GRUCell(1, 1, dtype=torch.float64)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_ih[1] = math.log((1 - u) / u)  # z = σ(logit(1 − u)) = 1 − u; n = tanh(0) = 0
        h, x, log_h = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64), [0.0]
        while log_h[-1] > -1:
            h = cell(x, h)
            log_h.append(math.log(h.item()))
    t = len(log_h) - 1  # log h crosses −1 between steps t − 1 and t
    return (t - 1) + (-1 - log_h[t - 1]) / (log_h[t] - log_h[t - 1])


check(solution_timescale, solution_measured)

# %% [markdown]
# Answers a check must refuse: the timescale of the keep gate z instead of u, and a measurement
# that counts whole steps only.

# %%
WRONG = (lambda u: -1 / math.log(u), lambda u: math.ceil(solution_measured(u)))
