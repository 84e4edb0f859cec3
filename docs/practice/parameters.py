# %% [markdown]
# # Counting the parameters of a GRU and an LSTM
#
# Per layer and direction, with input size I and hidden size H: the GRU has three gate blocks
# (W_i·: 3H × I, W_h·: 3H × H, and two bias vectors of 3H each in torch's layout), the LSTM four.
# Write the two counts as formulas of I and H; `check` compares them with
# `grukit.count_parameters` for several sizes and prints how long a forward pass of each takes.

# %%
import time

import torch

import grukit


def gru_parameters(input_size: int, hidden_size: int) -> int:
    """Parameters of one GRU layer (reset "after", torch's layout). Your code here."""
    raise NotImplementedError("count the GRU's parameters")


def lstm_parameters(input_size: int, hidden_size: int) -> int:
    """Parameters of one LSTM layer. Your code here."""
    raise NotImplementedError("count the LSTM's parameters")


STUBS = (gru_parameters, lstm_parameters)  # what `check` is called with once you have written them


# %% [markdown]
# ## The checks

# %%
def check(gru_count, lstm_count) -> None:
    for input_size, hidden_size in ((1, 1), (3, 8), (16, 64), (64, 17)):
        gru, lstm = grukit.GRU(input_size, hidden_size), grukit.LSTM(input_size, hidden_size)
        assert gru_count(input_size, hidden_size) == grukit.count_parameters(gru), "the GRU's count is off"
        assert lstm_count(input_size, hidden_size) == grukit.count_parameters(lstm), "the LSTM's count is off"
    x = torch.randn(200, 16, 64)
    gru, lstm = grukit.GRU(64, 64), grukit.LSTM(64, 64)
    seconds = {}
    for name, model in (("GRU", gru), ("LSTM", lstm)):
        with torch.no_grad():
            model(x)
            start = time.perf_counter()
            model(x)
            seconds[name] = time.perf_counter() - start
    print(f"correct: GRU/LSTM parameters {gru_count(64, 64) / lstm_count(64, 64):.3f}; a forward pass of "
          f"T = 200, B = 16, H = 64 took {1e3 * seconds['GRU']:.1f} ms (GRU) and {1e3 * seconds['LSTM']:.1f} ms "
          "(LSTM) here")


# %% [markdown]
# ## A solution

# %%
def solution_gru(input_size: int, hidden_size: int) -> int:
    return 3 * hidden_size * (input_size + hidden_size) + 6 * hidden_size


def solution_lstm(input_size: int, hidden_size: int) -> int:
    return 4 * hidden_size * (input_size + hidden_size) + 8 * hidden_size


check(solution_gru, solution_lstm)

# %% [markdown]
# Answers a check must refuse: one bias vector per gate block instead of torch's two.

# %%
WRONG = (lambda i, h: 3 * h * (i + h) + 3 * h, lambda i, h: 4 * h * (i + h) + 4 * h)
