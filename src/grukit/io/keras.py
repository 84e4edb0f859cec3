"""Moving GRU weights between torch.nn/grukit and Keras, as plain array functions.

torch.nn.GRU (and grukit) store per layer and direction
    weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H), bias_hh (3H), row blocks r, z, n.
Keras 3 `layers.GRU` stores
    kernel (I, 3H), recurrent_kernel (H, 3H), column blocks z, r, h (h = the candidate), and
    bias (3H,) for reset_after=False, or (2, 3H) = [input bias; recurrent bias] for reset_after=True.
Both use h' = z ⊙ h + (1 − z) ⊙ h̃ with the same z.

reset_after=True ↔ grukit reset="after": the blocks map one to one.
reset_after=False ↔ grukit reset="before": Keras has a single bias; the candidate's b_hn sits
outside r ⊙ h in both, so b_in + b_hn (and b_ir + b_hr, b_iz + b_hz) is exact. Going back,
the whole bias lands in bias_ih and bias_hh is zero.

No Keras is needed: arrays in, NumPy arrays out.
"""

from __future__ import annotations

import numpy as np

from grukit.errors import InputError, check_choice
from grukit.io.gates import reorder_gate_blocks


def _numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def torch_gru_to_keras(weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset: str = "after") -> list:
    """[kernel (I, 3H), recurrent_kernel (H, 3H)(, bias)] for Keras `GRU(reset_after=(reset == "after"))`
    from torch's weight_ih (3H, I), weight_hh (3H, H) and optional bias_ih, bias_hh (3H,); bias is
    (2, 3H) for reset="after", (3H,) = bias_ih + bias_hh for "before". Raises InputError for other
    shapes, for one bias without the other, and for an unknown reset."""
    check_choice("reset", reset, ("after", "before"))
    w_ih, w_hh = _numpy(weight_ih), _numpy(weight_hh)
    if w_ih.ndim != 2 or w_ih.shape[0] % 3 or w_hh.shape != (w_ih.shape[0], w_ih.shape[0] // 3):
        raise InputError(
            f"expected weight_ih (3H, I) and weight_hh (3H, H), got {w_ih.shape} and {w_hh.shape}"
        )
    kernel = reorder_gate_blocks(w_ih, "torch", "keras").T  # (I, 3H)
    recurrent_kernel = reorder_gate_blocks(w_hh, "torch", "keras").T  # (H, 3H)
    if (bias_ih is None) != (bias_hh is None):
        raise InputError("give both bias_ih and bias_hh, or neither")
    if bias_ih is None:
        return [np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent_kernel)]
    b_ih = reorder_gate_blocks(_numpy(bias_ih), "torch", "keras")
    b_hh = reorder_gate_blocks(_numpy(bias_hh), "torch", "keras")
    bias = np.stack([b_ih, b_hh]) if reset == "after" else b_ih + b_hh  # (2, 3H) or (3H,)
    return [np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent_kernel), bias]


def keras_gru_to_torch(kernel, recurrent_kernel, bias=None, *, reset: str = "after") -> dict:
    """{weight_ih (3H, I), weight_hh (3H, H)(, bias_ih, bias_hh (3H,))} as NumPy arrays from Keras GRU
    weights kernel (I, 3H), recurrent_kernel (H, 3H) and optional bias ((2, 3H) for reset="after",
    (3H,) for "before", which lands whole in bias_ih, bias_hh zero). Raises InputError for other
    shapes and for an unknown reset."""
    check_choice("reset", reset, ("after", "before"))
    k, rk = _numpy(kernel), _numpy(recurrent_kernel)
    if k.ndim != 2 or k.shape[1] % 3 or rk.shape != (k.shape[1] // 3, k.shape[1]):
        raise InputError(
            f"expected kernel (I, 3H) and recurrent_kernel (H, 3H), got {k.shape} and {rk.shape}"
        )
    out = {
        "weight_ih": np.ascontiguousarray(reorder_gate_blocks(k.T, "keras", "torch")),
        "weight_hh": np.ascontiguousarray(reorder_gate_blocks(rk.T, "keras", "torch")),
    }
    if bias is None:
        return out
    b = _numpy(bias)
    three_h = k.shape[1]
    if reset == "after":
        if b.shape != (2, three_h):
            raise InputError(f"reset_after=True bias must be (2, {three_h}), got {b.shape}")
        b_ih, b_hh = b[0], b[1]
    else:
        if b.shape != (three_h,):
            raise InputError(f"reset_after=False bias must be ({three_h},), got {b.shape}")
        b_ih, b_hh = b, np.zeros_like(b)
    out["bias_ih"] = reorder_gate_blocks(b_ih, "keras", "torch")
    out["bias_hh"] = reorder_gate_blocks(b_hh, "keras", "torch")
    return out


def gru_to_keras(module, *, layer: int = 0, direction: int = 0) -> list:
    """Keras weights of one layer and direction of a grukit GRU (its own reset variant)."""
    w_ih, w_hh, b_ih, b_hh = module.layer_weights(layer, direction)
    return torch_gru_to_keras(w_ih, w_hh, b_ih, b_hh, reset=module.reset)


def load_keras_weights(module, weights, *, layer: int = 0, direction: int = 0) -> None:
    """Copy Keras `GRU.get_weights()` into one layer and direction of a grukit GRU, in place (read
    with the module's reset variant). Raises InputError when the weights have a bias and the
    module not (or the reverse), or a shape or parameter does not match the module."""
    import torch

    arrays = keras_gru_to_torch(*weights, reset=module.reset)
    suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    params = dict(module.named_parameters())
    if ("bias_ih" in arrays) != module.bias:
        raise InputError(f"the Keras weights {'have' if 'bias_ih' in arrays else 'lack'} a bias, "
                         f"the module has bias={module.bias}")
    with torch.no_grad():
        for stem, array in arrays.items():
            param = params.get(stem + suffix)
            if param is None:
                raise InputError(f"the module has no parameter {stem + suffix}")
            if tuple(param.shape) != array.shape:
                raise InputError(f"{stem + suffix} is {tuple(param.shape)}, Keras gives {array.shape}")
            param.copy_(torch.as_tensor(array, dtype=param.dtype))
