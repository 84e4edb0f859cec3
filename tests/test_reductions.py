"""The reductions the articles state, checked numerically in float64.

1. Gates saturated to u ≡ 1 (z ≡ 0) and r ≡ 1: the GRU is the vanilla tanh RNN.
2. Constant u with the input as the candidate: the GRU's update is exponential smoothing, α = u.
"""

import numpy as np
import pytest
import torch
from statsmodels.tsa.holtwinters import SimpleExpSmoothing

import grukit

SATURATE = 100.0  # σ(100) = 1 exactly in float64; σ(−100) ≈ 4e−44


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_saturated_gates_give_the_vanilla_rnn(reset, layers, bidirectional):
    hidden = 6
    gru = grukit.GRU(3, hidden, layers, bidirectional=bidirectional, reset=reset, dtype=torch.float64)
    rnn = torch.nn.RNN(3, hidden, layers, bidirectional=bidirectional, dtype=torch.float64)
    rows = {"r": slice(0, hidden), "z": slice(hidden, 2 * hidden), "n": slice(2 * hidden, 3 * hidden)}
    with torch.no_grad():
        for name, param in gru.named_parameters():
            param[rows["r"]] = 0.0  # reset gate: no weights …
            param[rows["z"]] = 0.0  # update gate: no weights …
            if name.startswith("bias_ih"):
                param[rows["r"]] = SATURATE  # … r = σ(+100) = 1
                param[rows["z"]] = -SATURATE  # … z = σ(−100) ≈ 0, u = 1 − z ≈ 1
            getattr(rnn, name).copy_(param[rows["n"]])  # candidate weights become the RNN's
    x = torch.randn(8, 2, 3, dtype=torch.float64)
    hx = torch.randn(layers * gru.num_directions, 2, hidden, dtype=torch.float64)
    out, h_n, trace = gru(x, hx, return_gates=True)
    ref_out, ref_h = rnn(x, hx)
    assert torch.all(trace.reset == 1) and torch.all(trace.keep < 1e-40)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-14)
    torch.testing.assert_close(h_n, ref_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("update", [0.05, 0.3, 0.9])
def test_constant_update_with_input_candidate_is_exponential_smoothing(update):
    rng = np.random.default_rng(7)
    series = 10 + np.cumsum(rng.standard_normal(200))
    initial = float(series[0]) - 1.0
    fit = SimpleExpSmoothing(series, initialization_method="known", initial_level=initial).fit(
        smoothing_level=update, optimized=False
    )
    h = torch.tensor(initial, dtype=torch.float64)
    keep = torch.tensor(1 - update, dtype=torch.float64)  # z = 1 − u
    levels = []
    for x_t in torch.from_numpy(series):
        h = grukit.state_update(h, x_t, keep)  # candidate ñ = x_t
        levels.append(float(h))
    np.testing.assert_allclose(levels, fit.level, rtol=0, atol=1e-10)


def test_state_update_is_the_convex_combination():
    h, n = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 5.0])
    keep = torch.tensor([0.25, 1.0])
    torch.testing.assert_close(grukit.state_update(h, n, keep), (1 - keep) * n + keep * h)
