"""Activations for the compiled kernels (GRU and GRU-D alike), and the numba they compile with.

    tanh(x), sigmoid(x) = 1/(1 + e^(−x)): float64 calls libm, so float64 results stay within
    1e-10 of torch; float32 uses a [13/6] minimax rational approximation of tanh on
    [−7.905, 7.905] (the coefficients Eigen uses for its float tanh; max abs error 3.4e-7 against
    float64 tanh, a few float32 ulps) and σ(x) = ½ tanh(x/2) + ½.

NUMBA_ERROR says why numba could not be imported (None when it was); `njit` and `overload` are
then stand-ins that leave functions as plain Python, and the kernels refuse to run.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit, types
    from numba.extending import overload

    NUMBA_ERROR: str | None = None
except Exception as error:  # noqa: BLE001 - any broken numba install means: no compiled kernels
    NUMBA_ERROR = f"numba could not be imported ({type(error).__name__}: {error})"

    def njit(*args, **kwargs):
        return lambda fn: fn

    def overload(*args, **kwargs):
        return lambda fn: fn

# float32 activations: a [13/6] minimax rational approximation of tanh on [−7.905, 7.905] (the
# coefficients Eigen uses for its float tanh), max abs error 3.4e-7 against float64 tanh, i.e. a few
# float32 ulps. float64 keeps the exact libm functions, so float64 results stay within 1e-10 of torch.
_CLAMP = np.float32(7.90531110763549805)
_HALF = np.float32(0.5)
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = (np.float32(v) for v in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_B0, _B2, _B4, _B6 = (np.float32(v) for v in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))


def tanh(x):
    """tanh for the compiled kernels (float32: rational approximation; float64: libm)."""
    return np.tanh(x)


def sigmoid(x):
    """σ(x) = 1/(1 + e^(−x)) for the compiled kernels (float32: ½ tanh(x/2) + ½)."""
    return 1.0 / (1.0 + np.exp(-x))


def _is_float32(x) -> bool:
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(tanh)
def _tanh_typed(x):
    if not _is_float32(x):
        return lambda x: np.tanh(x)

    def tanh32(x):
        x = _CLAMP if x > _CLAMP else x
        x = -_CLAMP if x < -_CLAMP else x
        x2 = x * x
        p = x2 * _A13 + _A11
        p = x2 * p + _A9
        p = x2 * p + _A7
        p = x2 * p + _A5
        p = x2 * p + _A3
        p = x2 * p + _A1
        q = x2 * _B6 + _B4
        q = x2 * q + _B2
        q = x2 * q + _B0
        return x * p / q

    return tanh32


@overload(sigmoid)
def _sigmoid_typed(x):
    if not _is_float32(x):
        return lambda x: 1.0 / (1.0 + np.exp(-x))
    return lambda x: _HALF * tanh(_HALF * x) + _HALF
