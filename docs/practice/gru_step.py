# %% [markdown]
# # One GRU step by hand
#
# The GRU of torch.nn.GRU (reset "after", cuDNN's form) and of Cho et al. 2014 (reset "before"):
#
#     r  = σ(W_ir x + b_ir + W_hr h + b_hr)
#     z  = σ(W_iz x + b_iz + W_hz h + b_hz)
#     n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      reset="after"
#     n  = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)      reset="before"
#     h' = (1 − z) ⊙ n + z ⊙ h
#
# The weights come in torch's layout: `weight_ih` (3H, I) with rows [r; z; n], `weight_hh` (3H, H).
# Write `my_gru_step`, then run `check(my_gru_step)`: it compares your step with `grukit.GRUCell`
# and `torch.nn.GRUCell` for both variants, and runs `torch.autograd.gradcheck` on it in float64.

# %%
import torch

import grukit


def my_gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh, *, reset):
    """h' (B, H) from x (B, I) and h (B, H). Your code here."""
    raise NotImplementedError("write the GRU step")


STUBS = (my_gru_step,)  # what `check` is called with once you have written it


# %% [markdown]
# ## The checks

# %%
def check(step) -> None:
    torch.manual_seed(0)
    for reset in ("after", "before"):
        cell = grukit.GRUCell(3, 4, reset=reset, dtype=torch.float64)
        x, h = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
        weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        mine = step(x, h, *weights, reset=reset)
        torch.testing.assert_close(mine, cell(x, h), rtol=1e-12, atol=1e-12)
        if reset == "after":
            peer = torch.nn.GRUCell(3, 4, dtype=torch.float64)
            peer.load_state_dict(cell.state_dict())
            torch.testing.assert_close(mine, peer(x, h), rtol=1e-12, atol=1e-12)
        inputs = tuple(t.detach().clone().requires_grad_() for t in (x, h, *weights))
        assert torch.autograd.gradcheck(lambda *a, reset=reset: step(*a, reset=reset), inputs)
    print("correct: your GRU step is torch's and grukit's, gradients included")


# %% [markdown]
# ## A solution

# %%
def solution(x, h, weight_ih, weight_hh, bias_ih, bias_hh, *, reset):
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)
    w_hr, w_hz, w_hn = weight_hh.chunk(3, dim=0)
    b_hr, b_hz, b_hn = bias_hh.chunk(3)
    r = torch.sigmoid(i_r + h @ w_hr.T + b_hr)
    z = torch.sigmoid(i_z + h @ w_hz.T + b_hz)
    if reset == "after":
        n = torch.tanh(i_n + r * (h @ w_hn.T + b_hn))
    else:
        n = torch.tanh(i_n + (r * h) @ w_hn.T + b_hn)
    return (1 - z) * n + z * h


check(solution)

# %% [markdown]
# An answer a check must refuse: the reset gate applied after the product in both variants.

# %%
WRONG = (lambda *args, reset: solution(*args, reset="after"),)
