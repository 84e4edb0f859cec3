"""Initialisations that set a GRU's gates or weights for a purpose: chrono, a pinned-open reset
gate, a rescaled candidate matrix.

Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?", sec. 4).

A gated unit that keeps a share z of its state each step remembers for about 1/(1 − z) steps. To
spread the units' memories over 1 … T_max steps from the start, draw for each unit

    b_z = log U(1, T_max − 1)           GRU keep gate (torch's z = 1 − u):  1 − z ≈ 1/U at init
    b_f = log U(1, T_max − 1), b_i = −b_f     LSTM forget and input gates
    b_u = −log U(1, T_max − 1)          minGRU update gate u = σ(W_u x + b_u):  u ≈ 1/U at init

torch's layout has two bias vectors (bias_ih and bias_hh) that add up, so the draw goes on bias_ih
alone and the same block of bias_hh is set to 0; writing the draw into both, as common ports do,
doubles the bias (memories of about U² steps instead of U).

Pinned-open reset gate (`open_reset_gate_`): r ≡ 1, so the candidate reads the whole state,
ñ = tanh(W_in x + b_in + W_hn h + b_hn) in either reset variant; the gate's rows stay fixed under
training. The control that shows what the reset gate contributes.

Rescaled candidate matrix (`scale_candidate_`): W_hn (the articles' U_h) ← ρ · W_hn / ‖W_hn‖₂,
the large recurrent matrix that can make gradients explode.
"""

from __future__ import annotations

import torch

from grukit.errors import InputError
from grukit.nn.baselines import LSTM, RNN
from grukit.nn.gru import GRU, GRUCell
from grukit.nn.mingru import MinGRU


def _bias_pairs(module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(bias_ih, bias_hh) of every layer and direction of a grukit GRU, LSTM, GRUCell or GRUD."""
    names = [name for name, _ in module.named_parameters() if name.startswith("bias_ih")]
    if not names:
        raise InputError(f"chrono initialisation sets biases; this {type(module).__name__} has none (bias=False)")
    return [(getattr(module, name), getattr(module, name.replace("bias_ih", "bias_hh"))) for name in names]


def _mingru_biases(module: MinGRU) -> list[torch.Tensor]:
    """bias_ih of every layer of a MinGRU, rows [update gate; candidate]."""
    if not module.bias:
        raise InputError("chrono initialisation sets biases; this MinGRU has none (bias=False)")
    return [getattr(module, f"bias_ih_l{layer}") for layer in range(module.num_layers)]


def chrono_init_(module, t_max: float, *, generator: torch.Generator | None = None):
    """Chrono-initialise the gate biases of `module` in place (see the module docstring); returns it.

    GRU, GRUCell and GRUD: keep-gate block (rows H…2H) of bias_ih ← log U(1, T_max − 1), of bias_hh ← 0.
    LSTM: forget block (rows H…2H) of bias_ih ← log U(1, T_max − 1), input block (rows 0…H) ← −that;
    both blocks of bias_hh ← 0.
    MinGRU: update-gate block (rows 0…H) of each layer's bias_ih ← −log U(1, T_max − 1) (it has no
    bias_hh)."""
    if isinstance(module, RNN):
        raise InputError("the vanilla RNN has no gates to chrono-initialise")
    if not t_max > 2:
        raise InputError(f"t_max must be greater than 2 (U(1, t_max − 1) must be an interval), got {t_max!r}")
    hidden = module.hidden_size
    if isinstance(module, MinGRU):
        with torch.no_grad():
            for bias in _mingru_biases(module):
                draw = torch.empty(hidden, dtype=torch.float64).uniform_(1.0, float(t_max) - 1.0, generator=generator)
                bias[:hidden] = -torch.log(draw).to(bias.dtype)
        return module
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


OPEN_RESET_BIAS = 40.0  # σ(40) = 1 − 4·10⁻¹⁸: exactly 1.0 in float32 and in float64


def _gru_layers(module, what: str) -> list[str]:
    """The per-layer, per-direction suffixes ("l0", "l0_reverse", …) of a grukit GRU or GRUCell."""
    if not isinstance(module, GRU | GRUCell):
        raise InputError(f"{what} applies to grukit's GRU and GRUCell, got a {type(module).__name__}")
    return [name.removeprefix("weight_hh") for name, _ in module.named_parameters() if name.startswith("weight_hh")]


def open_reset_gate_(module):
    """Pin the reset gate of a grukit GRU or GRUCell open (r ≡ 1) in place; returns it.

    The reset rows (0…H) of weight_ih and weight_hh are set to 0, of bias_ih to 40 and of bias_hh
    to 0, so r = σ(40) = 1 exactly in float32 and float64; a gradient hook on each of these
    parameters zeroes those rows' gradients, so an optimiser without weight decay leaves them as
    they are (with weight decay the bias shrinks by lr·wd a step: still σ = 1 for ~10⁵ steps)."""
    hidden = module.hidden_size
    keep = torch.ones(3 * hidden, 1)
    keep[:hidden] = 0.0

    def frozen_rows(grad: torch.Tensor) -> torch.Tensor:
        mask = keep.to(grad.device, grad.dtype)
        return grad * (mask if grad.dim() == 2 else mask[:, 0])

    with torch.no_grad():
        for suffix in _gru_layers(module, "open_reset_gate_"):
            for kind, value in (("weight_ih", 0.0), ("weight_hh", 0.0), ("bias_ih", OPEN_RESET_BIAS),
                                ("bias_hh", 0.0)):
                parameter = getattr(module, kind + suffix, None)
                if parameter is None:  # bias=False
                    if kind == "bias_ih":
                        raise InputError("pinning the reset gate open needs the bias (bias=True)")
                    continue
                parameter[:hidden] = value
                parameter.register_hook(frozen_rows)
    return module


def scale_candidate_(module, norm: float):
    """Rescale the candidate's recurrent matrix W_hn (rows 2H…3H of weight_hh) of every layer and
    direction of a grukit GRU or GRUCell to spectral norm `norm`, in place; returns it."""
    if not norm > 0:
        raise InputError(f"the candidate matrix's spectral norm must be positive, got {norm!r}")
    hidden = module.hidden_size
    with torch.no_grad():
        for suffix in _gru_layers(module, "scale_candidate_"):
            weight = getattr(module, "weight_hh" + suffix)
            block = weight[2 * hidden :]
            block.mul_(norm / torch.linalg.matrix_norm(block.double(), ord=2).to(block.dtype))
    return module
