"""Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?", sec. 4).

A gated unit that keeps a share z of its state each step remembers for about 1/(1 − z) steps. To
spread the units' memories over 1 … T_max steps from the start, draw for each unit

    b_z = log U(1, T_max − 1)           GRU keep gate (torch's z = 1 − u):  1 − z ≈ 1/U at init
    b_f = log U(1, T_max − 1), b_i = −b_f     LSTM forget and input gates

torch's layout has two bias vectors (bias_ih and bias_hh) that add up, so the draw goes on bias_ih
alone and the same block of bias_hh is set to 0; writing the draw into both, as common ports do,
doubles the bias (memories of about U² steps instead of U).
"""

from __future__ import annotations

import torch

from grukit.errors import InputError
from grukit.nn.baselines import LSTM, RNN


def _bias_pairs(module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(bias_ih, bias_hh) of every layer and direction of a grukit GRU, LSTM, GRUCell or GRUD."""
    names = [name for name, _ in module.named_parameters() if name.startswith("bias_ih")]
    if not names:
        raise InputError(f"chrono initialisation sets biases; this {type(module).__name__} has none (bias=False)")
    return [(getattr(module, name), getattr(module, name.replace("bias_ih", "bias_hh"))) for name in names]


def chrono_init_(module, t_max: float, *, generator: torch.Generator | None = None):
    """Chrono-initialise the gate biases of `module` in place (see the module docstring); returns it.

    GRU, GRUCell and GRUD: keep-gate block (rows H…2H) of bias_ih ← log U(1, T_max − 1), of bias_hh ← 0.
    LSTM: forget block (rows H…2H) of bias_ih ← log U(1, T_max − 1), input block (rows 0…H) ← −that;
    both blocks of bias_hh ← 0."""
    if isinstance(module, RNN):
        raise InputError("the vanilla RNN has no gates to chrono-initialise")
    if not t_max > 2:
        raise InputError(f"t_max must be greater than 2 (U(1, t_max − 1) must be an interval), got {t_max!r}")
    hidden = module.hidden_size
    with torch.no_grad():
        for bias_ih, bias_hh in _bias_pairs(module):
            draw = torch.empty(hidden, dtype=torch.float64).uniform_(1.0, float(t_max) - 1.0, generator=generator)
            chrono = torch.log(draw).to(bias_ih.dtype)
            bias_ih[hidden : 2 * hidden] = chrono
            bias_hh[hidden : 2 * hidden] = 0.0
            if isinstance(module, LSTM):
                bias_ih[:hidden] = -chrono
                bias_hh[:hidden] = 0.0
    return module
