# %% [markdown]
# # The vanishing gradient, and the update gate as a highway
#
# In a tanh RNN the gradient of a loss at the last step with respect to an early state is a product
# of step Jacobians diag(1 − h²) W_hh: with ‖W_hh‖ < 1 it shrinks geometrically. In a GRU the step
# Jacobian holds the term diag(z) (z = 1 − u, the share of the old state kept), so a unit whose update
# gate stays near 0 passes the gradient on almost unchanged: the highway.
#
# On adding-problem inputs of T = 100 steps (`grukit.tasks.adding`'s layout: a value and a marker
# per step), measure with `grukit.analysis.gradient_flow` the median over the batch of ‖∂L/∂h_t‖ at
# the first step relative to the last one, for (a) a `grukit.RNN` at its default initialisation and
# (b) a `grukit.GRU` whose update gates are biased shut (b_z = +4 in torch's keep gate z, so
# u ≈ 0.018). Write `gradient_ratio(model, x)` returning that ratio; `check` asks for the RNN's to be
# below 1e-6 and the GRU's above 0.1.

# %%
import torch

import grukit
from grukit.analysis import gradient_flow


def gradient_ratio(model, x) -> float:
    """median ‖∂L/∂h_1‖ / median ‖∂L/∂h_T‖ over the batch. Your code here."""
    raise NotImplementedError("measure the gradient flow")


STUBS = (gradient_ratio,)  # what `check` is called with once you have written it


# %% [markdown]
# ## The checks

# %%
def adding_inputs(batch: int = 8, steps: int = 100) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(batch, steps, generator=generator)
    markers = torch.zeros(batch, steps)
    markers[:, 3] = markers[:, steps // 2] = 1.0
    return torch.stack([values, markers], dim=-1).transpose(0, 1).double()  # (T, B, 2)


def check(ratio) -> None:
    torch.manual_seed(0)
    x = adding_inputs()
    rnn = grukit.RNN(2, 32, dtype=torch.float64)
    gru = grukit.GRU(2, 32, dtype=torch.float64)
    with torch.no_grad():
        gru.bias_ih_l0[32:64] = 4.0  # z = σ(≈ 4): keep 98% of the state each step
    rnn_ratio, gru_ratio = ratio(rnn, x), ratio(gru, x)
    assert rnn_ratio < 1e-6, f"the RNN keeps {rnn_ratio:.2e} of its gradient over 100 steps: it should vanish"
    assert gru_ratio > 0.1, f"the GRU keeps {gru_ratio:.2e}: with its update gate shut it should keep most"
    print(f"correct: over 100 steps the RNN keeps {rnn_ratio:.1e} of the gradient, the GRU {gru_ratio:.2f}")


# %% [markdown]
# ## A solution

# %%
def solution(model, x) -> float:
    flow = gradient_flow(model, x, state_jacobian=False)
    norms = flow.loss_gradient[-1]  # (B, T) by distance from the last step, top layer
    return float(norms[:, -1].median() / norms[:, 0].median())


check(solution)

# %% [markdown]
# An answer a check must refuse: the ratio upside down (the last step's against the first's).

# %%
WRONG = (lambda model, x: 1 / solution(model, x),)
