"""The GRU's three gate blocks in each library's order, and the one function that reorders them.

torch.nn.GRU and grukit stack the blocks r, z, n (reset, update, candidate); Keras and ONNX stack
z, r, h, where h is the candidate n under another name. A block is one gate's rows of a weight
(3H, ·) or bias (3H,), or its columns of Keras' transposed kernel (·, 3H).
"""

from __future__ import annotations

import numpy as np

from grukit.errors import InputError

GATE_ORDERS = {"torch": ("r", "z", "n"), "keras": ("z", "r", "n"), "onnx": ("z", "r", "n")}


def reorder_gate_blocks(blocks, source: str, target: str, *, axis: int = 0) -> np.ndarray:
    """`blocks` with its three equal gate blocks along `axis` moved from `source`'s order to
    `target`'s (each "torch", "keras" or "onnx"), as a new NumPy array.

    E.g. torch's W_ih (3H, I) = [W_ir; W_iz; W_in] → Keras' and ONNX's [W_iz; W_ir; W_in].
    Raises InputError for an unknown order, or when the axis does not split into three equal blocks.
    """
    for name in (source, target):
        if name not in GATE_ORDERS:
            raise InputError(f"gate order must be one of {sorted(GATE_ORDERS)}, got {name!r}")
    blocks = np.asarray(blocks)
    if blocks.shape[axis] % 3:
        raise InputError(f"axis {axis} of shape {blocks.shape} does not split into three gate blocks")
    parts = dict(zip(GATE_ORDERS[source], np.split(blocks, 3, axis=axis), strict=True))
    return np.concatenate([parts[gate] for gate in GATE_ORDERS[target]], axis=axis)
