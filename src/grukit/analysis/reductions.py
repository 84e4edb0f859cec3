"""The GRU's special cases, as functions that build them and measure how exact they are.

    vanilla RNN            u ≡ 1, r ≡ 1:  h' = tanh(W_in x + b_in + W_hn h + b_hn)
    exponential smoothing  u ≡ α constant, ñ = x:  h' = (1 − α) h + α x   (statsmodels' SES level)
    residual step          h' = h + u ⊙ (ñ − h), the interpolation rewritten: an Euler step of
                           dh/dt = u ⊙ (ñ − h) (a learned-step-size residual update)

Gates are pinned by zeroing their weights and setting their biases to ±SATURATE: σ(100) is 1 in
float64 and σ(−100) ≈ 4e−44, so the reductions hold to rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grukit.errors import InputError
from grukit.nn.cells import state_update
from grukit.nn.gru import GRU

SATURATE = 100.0


def gru_as_rnn(gru: GRU) -> nn.RNN:
    """Pin the GRU's gates to u ≡ 1 and r ≡ 1 (in place) and return the torch.nn.RNN (tanh) with its
    candidate weights: the two then compute the same thing."""
    if not isinstance(gru, GRU):
        raise InputError(f"gru_as_rnn takes a grukit.GRU, got {type(gru).__name__}")
    hidden = gru.hidden_size
    rnn = nn.RNN(gru.input_size, hidden, gru.num_layers, bias=gru.bias, batch_first=gru.batch_first,
                 bidirectional=gru.bidirectional, dtype=gru.weight_ih_l0.dtype)
    reset, keep, candidate = slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden)
    with torch.no_grad():
        for name, param in gru.named_parameters():
            param[reset] = 0.0
            param[keep] = 0.0
            if name.startswith("bias_ih"):
                param[reset] = SATURATE  # r = σ(100) = 1
                param[keep] = -SATURATE  # z = σ(−100) ≈ 0: u = 1
            getattr(rnn, name).copy_(param[candidate])
    return rnn


def exponential_smoothing(series: np.ndarray, *, alpha: float, initial: float) -> np.ndarray:
    """The GRU interpolation with constant update gate α and the input as candidate, run over a
    series: the levels h_1 … h_T (h_0 = initial). Equal to simple exponential smoothing's level."""
    if not 0 < alpha <= 1:
        raise InputError(f"alpha must be in (0, 1], got {alpha!r}")
    h = torch.tensor(initial, dtype=torch.float64)
    keep = torch.tensor(1 - alpha, dtype=torch.float64)  # z = 1 − u
    levels = []
    for x_t in torch.as_tensor(np.asarray(series, dtype=float)):
        h = state_update(h, x_t, keep)  # candidate ñ = x_t
        levels.append(float(h))
    return np.array(levels)


def residual_form_error(gru: GRU, inputs: torch.Tensor) -> float:
    """max |h_t − (h_{t−1} + u_t ⊙ (ñ_t − h_{t−1}))| over every step, unit and sequence of one layer's
    run: how far the GRU's states are from the residual form (rounding only)."""
    if gru.num_layers != 1 or gru.bidirectional:
        raise InputError("residual_form_error reads one layer, one direction")
    with torch.no_grad():
        output, _, trace = gru(inputs, return_gates=True)
    states = output if not gru.batch_first else output.transpose(0, 1)  # (T, B, H)
    previous = torch.cat([torch.zeros_like(states[:1]), states[:-1]])
    update = trace.update[0].transpose(0, 1)  # (T, B, H)
    candidate = trace.candidate[0].transpose(0, 1)
    return float((states - (previous + update * (candidate - previous))).abs().max())
