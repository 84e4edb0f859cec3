# %% [markdown]
# # The update gate learns the Kalman gain
#
# Local-level data: a level that walks, μ_t = μ_{t−1} + η_t, seen through noise, y_t = μ_t + ε_t,
# Var η = q, Var ε = 1 (`grukit.tasks.kalman.make_local_level`). The best one-step forecast is the
# Kalman filter's, which settles to exponential smoothing ŷ_{t+1} = ŷ_t + K (y_t − ŷ_t) with the
# steady-state gain K = P / (P + 1), P = (q + √(q² + 4q)) / 2 (`steady_state_gain`).
#
# A one-unit GRU whose candidate is the observation (ñ = y_t) and whose update gate u does not read
# anything but its bias is exactly that smoother with α = u. Train it: write `learn_gate(series)`,
# which fits u by gradient descent on the one-step squared error over the series (N, T) and returns
# it; `check` asks for |u − K| < 0.03 at q = 0.1 (K = 0.270) and q = 1 (K = 0.618).

# %%
import torch

import grukit
from grukit.tasks.kalman import make_local_level, steady_state_gain


def learn_gate(series: torch.Tensor) -> float:
    """The update gate u of a one-unit GRU smoother fitted to one-step forecasts. Your code here."""
    raise NotImplementedError("train the gate")


STUBS = (learn_gate,)  # what `check` is called with once you have written it


# %% [markdown]
# ## The checks

# %%
def check(learn) -> None:
    for q in (0.1, 1.0):
        series = make_local_level(128, 150, noise_ratio=q, seed=0)
        gain, learned = steady_state_gain(q), learn(series)
        assert abs(learned - gain) < 0.03, f"at q = {q} the gate is {learned:.3f}, the Kalman gain {gain:.3f}"
        print(f"q = {q}: learned u = {learned:.3f}, Kalman gain K = {gain:.3f}")
    print("correct: the update gate the GRU learns is the Kalman gain")


# %% [markdown]
# ## A solution
#
# The GRU's interpolation h' = (1 − u) h + u ñ is `grukit.state_update(h, candidate, keep)` with
# keep z = 1 − u; here the candidate is the observation itself and z = σ(b), b the one parameter.

# %%
def solution(series: torch.Tensor) -> float:
    torch.manual_seed(0)
    logit = torch.zeros((), requires_grad=True)  # z = σ(logit): u = 1 − z starts at ½
    optimiser = torch.optim.Adam([logit], lr=0.05)
    y = series.double()
    for _ in range(80):
        keep = torch.sigmoid(logit).double()
        level, errors = y[:, 0], []
        for t in range(1, y.shape[1]):
            errors.append(y[:, t] - level)  # the forecast of y_t is the state after y_{t−1}
            level = grukit.state_update(level, y[:, t], keep)  # h' = (1 − u) h + u y_t
        loss = torch.stack(errors[20:]).pow(2).mean()  # past the start, where the filter has settled
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return float(1 - torch.sigmoid(logit.detach()))


check(solution)

# %% [markdown]
# An answer a check must refuse: the gate as it starts, before any training (u = ½).

# %%
WRONG = (lambda series: 0.5,)
