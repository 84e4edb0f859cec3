# %% [markdown]
# # What the gates reduce the GRU to
#
# Three settings of the gates turn the GRU into something familiar (grukit's `GRUCell`, reset
# "after"; u = 1 − z is the update gate):
#
# 1. **a vanilla tanh RNN**, h' = tanh(W_in x + b_in + W_hn h + b_hn): the reset gate always open
#    (r ≡ 1) and the update gate always writing (u ≡ 1, so z ≡ 0);
# 2. **exponential smoothing**, h' = (1 − α) h + α x: a constant update gate u ≡ α and a candidate
#    equal to the input (use `grukit.state_update(h, candidate, keep)`, keep = z = 1 − u);
# 3. **a residual step**, h' = h + u ⊙ (n − h): the same interpolation, rewritten.
#
# Saturate the gates with large biases: σ(±30) is 1 or 0 to float64's precision. Write
# `gates_for_vanilla_rnn(cell)`, which sets `cell`'s biases in place so that the cell is the RNN of
# its W_in, W_hn, and `smoothing(h, x, alpha)`; `check(gates_for_vanilla_rnn, smoothing)` measures
# both against their closed forms.

# %%
import torch

import grukit


def gates_for_vanilla_rnn(cell: grukit.GRUCell) -> None:
    """Set the biases of `cell` so that r ≡ 1 and z ≡ 0. Your code here."""
    raise NotImplementedError("saturate the gates")


def smoothing(h, x, alpha):
    """One step of exponential smoothing through the GRU's interpolation. Your code here."""
    raise NotImplementedError("write the smoothing step")


STUBS = (gates_for_vanilla_rnn, smoothing)  # what `check` is called with once you have written them


# %% [markdown]
# ## The checks

# %%
def check(saturate, smooth) -> None:
    torch.manual_seed(0)
    cell = grukit.GRUCell(3, 4, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih[: 8].mul_(0.1)  # keep the gates' pre-activations small against the biases
        cell.weight_hh[: 8].mul_(0.1)
        saturate(cell)
        x, h = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
        w_in, w_hn = cell.weight_ih[8:], cell.weight_hh[8:]
        b_in, b_hn = cell.bias_ih[8:], cell.bias_hh[8:]
        rnn = torch.tanh(x @ w_in.T + b_in + h @ w_hn.T + b_hn)
        assert (cell(x, h) - rnn).abs().max() < 1e-10, "the saturated GRU is not the vanilla RNN"
    h, x = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    for alpha in (0.1, 0.5, 0.9):
        assert (smooth(h, x, alpha) - ((1 - alpha) * h + alpha * x)).abs().max() < 1e-14, "not smoothing"
        step = smooth(h, x, alpha)
        assert (step - (h + alpha * (x - h))).abs().max() < 1e-14, "not the residual step"
    print("correct: the GRU is the vanilla RNN, exponential smoothing and a residual step")


# %% [markdown]
# ## A solution

# %%
def solution_saturate(cell: grukit.GRUCell) -> None:
    hidden = cell.hidden_size
    with torch.no_grad():
        cell.bias_ih[:hidden] = 30.0  # r = σ(≈ 30) = 1
        cell.bias_hh[:hidden] = 0.0
        cell.bias_ih[hidden : 2 * hidden] = -30.0  # z = σ(≈ −30) = 0: u = 1
        cell.bias_hh[hidden : 2 * hidden] = 0.0


def solution_smoothing(h, x, alpha):
    return grukit.state_update(h, x, torch.tensor(1 - alpha, dtype=h.dtype))


check(solution_saturate, solution_smoothing)

# %% [markdown]
# Answers a check must refuse: the update gate closed instead of open (z ≡ 1), and smoothing with
# keep = α where it should be 1 − α.

# %%
def wrong_saturate(cell: grukit.GRUCell) -> None:
    solution_saturate(cell)
    with torch.no_grad():
        cell.bias_ih[cell.hidden_size : 2 * cell.hidden_size] = 30.0


WRONG = (wrong_saturate, lambda h, x, alpha: grukit.state_update(h, x, torch.tensor(alpha, dtype=h.dtype)))
