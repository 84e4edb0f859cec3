"""The GRU's relatives for comparison: the vanilla (Elman) RNN and the LSTM.

Both follow the same forward contract as :class:`grukit.GRU` and hold torch.nn's parameters,
so a comparison swaps one class name. The native backend is torch's own op; the reference
backend runs `cells.rnn_step` / `cells.lstm_step` in the shared time loop (and, for the LSTM,
records the gates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import _VF, nn

from grukit.errors import InputError
from grukit.nn.base import Backend, RecurrentBase, RecurrentConfig
from grukit.nn.cells import lstm_step, rnn_step
from grukit.nn.trace import LSTMTrace

Nonlinearity = Literal["tanh", "relu"]


@dataclass(frozen=True)
class RNNConfig(RecurrentConfig):
    nonlinearity: Nonlinearity = "tanh"  # φ in h' = φ(W_ih x + b_ih + W_hh h + b_hh)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nonlinearity not in ("tanh", "relu"):
            raise InputError(f"nonlinearity must be 'tanh' or 'relu', got {self.nonlinearity!r}")


@dataclass(frozen=True)
class LSTMConfig(RecurrentConfig):
    pass


class RNN(RecurrentBase):
    r"""Elman RNN, a drop-in for :class:`torch.nn.RNN`:  h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh).

    Weights weight_ih_l{k} (H, I), weight_hh_l{k} (H, H), biases (H); shapes and contract as
    :class:`grukit.GRU`. It has no gates, so ``return_gates=True`` is an error.
    """

    gate_count = 1
    torch_class = nn.RNN
    config_class = RNNConfig

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Nonlinearity = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: Backend = "auto",
    ) -> None:
        config = RNNConfig(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                           bidirectional, backend, nonlinearity)
        super().__init__(config, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    @classmethod
    def _config_from_torch(cls, module: nn.RNN) -> dict:
        return super()._config_from_torch(module) | {"nonlinearity": module.nonlinearity}

    def _torch_kwargs(self) -> dict:
        return super()._torch_kwargs() | {"nonlinearity": self.nonlinearity}

    def _native_op(self):
        return _VF.rnn_tanh if self.nonlinearity == "tanh" else _VF.rnn_relu

    def _step(self, layer: int, direction: int):
        _, w_hh, _, b_hh = self.layer_weights(layer, direction)

        def step(gi, state):
            return (rnn_step(gi, state[0], w_hh, b_hh, nonlinearity=self.nonlinearity),), None

        return step


class LSTM(RecurrentBase):
    r"""Long short-term memory, a drop-in for :class:`torch.nn.LSTM` (without ``proj_size``).

    .. math::
        i, f, g, o = \sigma, \sigma, \tanh, \sigma \;(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}) \\
        c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)

    Weights weight_ih_l{k} (4H, I), weight_hh_l{k} (4H, H), biases (4H), rows i, f, g, o.
    hx and h_n are pairs (h, c), each (L·D, B, H). ``return_gates=True`` gives an
    :class:`~grukit.nn.trace.LSTMTrace` (reference backend).
    """

    gate_count = 4
    state_names = ("h0", "c0")
    torch_class = nn.LSTM
    config_class = LSTMConfig
    trace_class = LSTMTrace

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: Backend = "auto",
    ) -> None:
        config = LSTMConfig(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                            bidirectional, backend)
        super().__init__(config, device=device, dtype=dtype)

    def _native_op(self):
        return _VF.lstm

    def _step(self, layer: int, direction: int):
        _, w_hh, _, b_hh = self.layer_weights(layer, direction)

        def step(gi, state):
            h, c, gates = lstm_step(gi, state[0], state[1], w_hh, b_hh)
            return (h, c), gates

        return step
