"""One time step of each recurrence, written as the equations read.

These functions are the specification every kernel is tested against. Each takes the
input projection already computed for the step, ``gi = W_ih x_t + b_ih`` (B, G·H), because
that product does not depend on the state and all kernels compute it for the whole
sequence in one matmul. Row blocks follow torch.nn: GRU ``r, z, n``; LSTM ``i, f, g, o``.

Shapes: gi (B, G·H), h and c (B, H), w_hh (G·H, H), b_hh (G·H,) or None.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from grukit.errors import check_choice

Reset = Literal["after", "before"]
RESET_VARIANTS = ("after", "before")


def check_reset(reset) -> None:
    check_choice("reset", reset, RESET_VARIANTS)


class GRUGates(NamedTuple):
    """Gate values of one GRU step, each (B, H)."""

    reset: torch.Tensor  # r
    keep: torch.Tensor  # z = 1 − u, the share of the old state kept
    candidate: torch.Tensor  # n (the articles' h̃)


class LSTMGates(NamedTuple):
    """Gate values of one LSTM step, each (B, H)."""

    input: torch.Tensor  # i
    forget: torch.Tensor  # f
    cell: torch.Tensor  # g, the cell candidate
    output: torch.Tensor  # o


def state_update(h: torch.Tensor, candidate: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The GRU's interpolation: h' = (1 − z) ⊙ n + z ⊙ h.

    With the update gate u = 1 − z this is the articles' h' = (1 − u) ⊙ h + u ⊙ h̃: an
    exponential moving average of the candidates with smoothing weight u. Any shapes that
    broadcast; `keep` may be a constant.
    """
    return torch.lerp(candidate, h, keep)


def _blocks(tensor: torch.Tensor | None, count: int) -> tuple:
    return (None,) * count if tensor is None else tensor.chunk(count, 0)


def gru_step(
    gi: torch.Tensor,
    h: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    *,
    reset: Reset = "after",
) -> tuple[torch.Tensor, GRUGates]:
    """One GRU step (Cho et al. 2014), in torch.nn.GRU's parametrisation.

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))     reset="after"  (cuDNN, torch, Keras default)
    n  = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)     reset="before" (Cho et al. 2014, Keras reset_after=False)
    h' = (1 − z) ⊙ n + z ⊙ h

    gi (B, 3H), h (B, H) → h' (B, H) and the gates (r, z, n).
    """
    gi_r, gi_z, gi_n = gi.chunk(3, -1)
    w_hr, w_hz, w_hn = w_hh.chunk(3, 0)
    b_hr, b_hz, b_hn = _blocks(b_hh, 3)
    r = torch.sigmoid(gi_r + F.linear(h, w_hr, b_hr))
    z = torch.sigmoid(gi_z + F.linear(h, w_hz, b_hz))
    if reset == "after":
        n = torch.tanh(gi_n + r * F.linear(h, w_hn, b_hn))
    else:
        n = torch.tanh(gi_n + F.linear(r * h, w_hn, b_hn))
    return state_update(h, n, z), GRUGates(r, z, n)


def rnn_step(
    gi: torch.Tensor,
    h: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    *,
    nonlinearity: Literal["tanh", "relu"] = "tanh",
) -> torch.Tensor:
    """Elman RNN: h' = φ(W_ih x + b_ih + W_hh h + b_hh), φ = tanh or relu.  (B, H) → (B, H)."""
    pre = gi + F.linear(h, w_hh, b_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(
    gi: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, LSTMGates]:
    """LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    i = σ(·), f = σ(·), g = tanh(·), o = σ(·)  of  W_ih x + b_ih + W_hh h + b_hh
    c' = f ⊙ c + i ⊙ g;   h' = o ⊙ tanh(c')

    gi (B, 4H), h and c (B, H) → h', c' (B, H) and the gates (i, f, g, o).
    """
    pre_i, pre_f, pre_g, pre_o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, -1)
    i, f, g, o = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.tanh(pre_g), torch.sigmoid(pre_o)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    return h_new, c_new, LSTMGates(i, f, g, o)
