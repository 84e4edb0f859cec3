"""grukit's own CPU kernel for one GRU layer in one direction: forward and BPTT each one compiled loop.

The work is split the way the equations allow:
  * before the loop, torch computes gi = W_ih x + b_ih for every step in one matmul (caller);
  * per step, the compiled loop does only the recurrent product (BLAS through numba's np.dot)
    and the fused gate arithmetic of `cells.gru_step`, element by element;
  * after the backward loop, the weight gradients are whole-sequence matmuls:
    dW_hh = Σ_t dgh_tᵀ h_{t−1} (reset="after"), with W_hn's block fed r ⊙ h_{t−1} for reset="before".

r, z, n (and W_hn h + b_hn for reset="after") are computed anyway and kept for the backward pass,
so a gate trace costs nothing extra in training.

Lengths follow `recurrence.scan`: at t ≥ length_b the state is left untouched and the output is 0.
Arrays are shared with torch without copies (`Tensor.numpy()` on contiguous CPU tensors).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

try:
    from numba import njit, types
    from numba.extending import overload

    _IMPORT_ERROR: str | None = None
except Exception as error:  # noqa: BLE001 - any broken numba install means: no fused kernel
    _IMPORT_ERROR = f"numba could not be imported ({type(error).__name__}: {error})"

    def njit(*args, **kwargs):
        return lambda fn: fn

    def overload(*args, **kwargs):
        return lambda fn: fn

# float32 activations: a [13/6] minimax rational approximation of tanh on [−7.905, 7.905] (the
# coefficients Eigen uses for its float tanh), max abs error 3.4e-7 against float64 tanh, i.e. a few
# float32 ulps — 4× faster than libm's tanhf per element here. float64 keeps the exact libm
# functions, so float64 results stay within 1e-10 of torch.
_CLAMP = np.float32(7.90531110763549805)
_HALF = np.float32(0.5)
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = (np.float32(v) for v in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_B0, _B2, _B4, _B6 = (np.float32(v) for v in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))


def _tanh(x):
    """tanh for the compiled kernels (float32: rational approximation; float64: libm)."""
    return np.tanh(x)


def _sigmoid(x):
    """σ(x) = 1/(1 + e^(−x)) for the compiled kernels (float32: ½ tanh(x/2) + ½)."""
    return 1.0 / (1.0 + np.exp(-x))


def _is_float32(x) -> bool:
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(_tanh)
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


@overload(_sigmoid)
def _sigmoid_typed(x):
    if not _is_float32(x):
        return lambda x: 1.0 / (1.0 + np.exp(-x))
    return lambda x: _HALF * _tanh(_HALF * x) + _HALF


def unavailable_reason() -> str | None:
    """Why the fused kernel cannot run in this environment, or None when it can."""
    if _IMPORT_ERROR is not None:
        warnings.warn(f"grukit's fused kernel is unavailable: {_IMPORT_ERROR}", RuntimeWarning, stacklevel=4)
    return _IMPORT_ERROR


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(gi, h0, w_t, w_rz_t, w_n_t, b_hh, lengths, reverse, reset_after, out, prev, r_all, z_all, n_all, ghn_all):
    """gi (T, B, 3H); h0 (B, H); w_t = W_hhᵀ (H, 3H); w_rz_t (H, 2H), w_n_t (H, H) its blocks;
    b_hh (3H,); lengths (B,). Writes out, prev (state before each step), r, z, n, ghn: (T, B, H)."""
    steps, batch, three_h = gi.shape
    hidden = three_h // 3
    h = h0.copy()
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        prev[t] = h
        if reset_after:
            gh = np.dot(h, w_t)  # (B, 3H)
        else:
            gh = np.dot(h, w_rz_t)  # (B, 2H): the r and z blocks only
        for b in range(batch):
            if t >= lengths[b]:
                for j in range(hidden):
                    out[t, b, j] = 0.0
                    r_all[t, b, j] = np.nan
                    z_all[t, b, j] = np.nan
                    n_all[t, b, j] = np.nan
                continue
            for j in range(hidden):
                r_all[t, b, j] = _sigmoid(gi[t, b, j] + gh[b, j] + b_hh[j])
                z_all[t, b, j] = _sigmoid(gi[t, b, hidden + j] + gh[b, hidden + j] + b_hh[hidden + j])
        if not reset_after:
            rh = r_all[t] * h  # (B, H); NaN rows of padded sequences are never used
            ghn = np.dot(rh, w_n_t)
        for b in range(batch):
            if t >= lengths[b]:
                continue
            for j in range(hidden):
                if reset_after:
                    gn = gh[b, 2 * hidden + j] + b_hh[2 * hidden + j]  # W_hn h + b_hn
                    ghn_all[t, b, j] = gn
                    n = _tanh(gi[t, b, 2 * hidden + j] + r_all[t, b, j] * gn)
                else:
                    n = _tanh(gi[t, b, 2 * hidden + j] + ghn[b, j] + b_hh[2 * hidden + j])
                n_all[t, b, j] = n
                z = z_all[t, b, j]
                h[b, j] = n + z * (h[b, j] - n)  # (1 − z) n + z h
                out[t, b, j] = h[b, j]
    return h


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(d_out, d_hn, prev, r_all, z_all, n_all, ghn_all, w, w_rz, w_n, lengths, reverse, reset_after,
              d_gi, d_gh):
    """BPTT of `_forward`. w = W_hh (3H, H); w_rz (2H, H), w_n (H, H) its blocks.
    Writes d_gi (T, B, 3H) and d_gh (T, B, 3H) = ∂L/∂(recurrent pre-activations); returns ∂L/∂h0."""
    steps, batch, hidden = prev.shape
    dh = d_hn.copy()
    d_pre_n = np.zeros((batch, hidden), dtype=prev.dtype)
    for s in range(steps):
        t = s if reverse else steps - 1 - s  # the forward order, backwards
        for b in range(batch):
            valid = t < lengths[b]
            for j in range(hidden):
                if not valid:
                    d_pre_n[b, j] = 0.0
                    continue
                dh[b, j] += d_out[t, b, j]
                n = n_all[t, b, j]
                d_pre_n[b, j] = dh[b, j] * (1.0 - z_all[t, b, j]) * (1.0 - n * n)
        if not reset_after:
            d_rh = np.dot(d_pre_n, w_n)  # ∂L/∂(r ⊙ h_{t−1}), (B, H)
        for b in range(batch):
            valid = t < lengths[b]
            for j in range(hidden):
                if not valid:
                    for k in range(3):
                        d_gi[t, b, k * hidden + j] = 0.0
                        d_gh[t, b, k * hidden + j] = 0.0
                    continue
                r = r_all[t, b, j]
                z = z_all[t, b, j]
                h_prev = prev[t, b, j]
                d_z = dh[b, j] * (h_prev - n_all[t, b, j]) * z * (1.0 - z)
                if reset_after:
                    d_r = d_pre_n[b, j] * ghn_all[t, b, j] * r * (1.0 - r)
                    d_gh[t, b, 2 * hidden + j] = d_pre_n[b, j] * r
                else:
                    d_r = d_rh[b, j] * h_prev * r * (1.0 - r)
                    d_gh[t, b, 2 * hidden + j] = d_pre_n[b, j]
                d_gi[t, b, j] = d_r
                d_gi[t, b, hidden + j] = d_z
                d_gi[t, b, 2 * hidden + j] = d_pre_n[b, j]
                d_gh[t, b, j] = d_r
                d_gh[t, b, hidden + j] = d_z
                # the direct path through z ⊙ h_{t−1}, plus r ⊙ h inside the candidate (reset before)
                dh[b, j] = dh[b, j] * z + (0.0 if reset_after else d_rh[b, j] * r)
        if reset_after:
            dh += np.dot(np.ascontiguousarray(d_gh[t]), w)
        else:
            dh += np.dot(np.ascontiguousarray(d_gh[t, :, : 2 * hidden]), w_rz)
    return dh


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


class FusedGRUScan(torch.autograd.Function):
    """(gi (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,) or None) → out (T, B, H), h_n (B, H),
    and the gates r, z, n (T, B, H) with NaN at padded steps (not differentiable)."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, lengths, reverse: bool, reset_after: bool):
        steps, batch, three_h = gi.shape
        hidden = three_h // 3
        dtype = gi.dtype
        bias = torch.zeros(three_h, dtype=dtype) if b_hh is None else b_hh
        w_t = w_hh.detach().t().contiguous()  # (H, 3H)
        w_rz_t, w_n_t = w_t[:, : 2 * hidden].contiguous(), w_t[:, 2 * hidden :].contiguous()
        out, prev, r, z, n, ghn = (torch.empty(steps, batch, hidden, dtype=dtype) for _ in range(6))
        h_n = _forward(_np(gi), _np(h0), w_t.numpy(), w_rz_t.numpy(), w_n_t.numpy(), _np(bias),
                       lengths.numpy(), reverse, reset_after, out.numpy(), prev.numpy(), r.numpy(),
                       z.numpy(), n.numpy(), ghn.numpy())
        h_n = torch.from_numpy(h_n)
        ctx.save_for_backward(w_hh, prev, r, z, n, ghn, lengths)
        ctx.flags = (reverse, reset_after, b_hh is not None)
        ctx.mark_non_differentiable(r, z, n)
        return out, h_n, r, z, n

    @staticmethod
    def backward(ctx, d_out, d_hn, _dr, _dz, _dn):
        w_hh, prev, r, z, n, ghn, lengths = ctx.saved_tensors
        reverse, reset_after, has_bias = ctx.flags
        steps, batch, hidden = prev.shape
        d_out = torch.zeros_like(prev) if d_out is None else d_out
        d_hn = torch.zeros(batch, hidden, dtype=prev.dtype) if d_hn is None else d_hn
        d_gi = torch.empty(steps, batch, 3 * hidden, dtype=prev.dtype)
        d_gh = torch.empty_like(d_gi)
        w = w_hh.detach().contiguous()
        d_h0 = _backward(_np(d_out), _np(d_hn), prev.numpy(), r.numpy(), z.numpy(), n.numpy(), ghn.numpy(),
                         w.numpy(), w[: 2 * hidden].contiguous().numpy(), w[2 * hidden :].contiguous().numpy(),
                         lengths.numpy(), reverse, reset_after, d_gi.numpy(), d_gh.numpy())
        # weight gradients: whole-sequence matmuls (rows at padded steps are zero)
        flat_gh = d_gh.reshape(steps * batch, 3 * hidden)
        if reset_after:
            d_w = flat_gh.t() @ prev.reshape(steps * batch, hidden)
        else:
            rh = torch.nan_to_num(r * prev, nan=0.0).reshape(steps * batch, hidden)
            d_w = torch.cat([flat_gh[:, : 2 * hidden].t() @ prev.reshape(steps * batch, hidden),
                             flat_gh[:, 2 * hidden :].t() @ rh])
        d_b = flat_gh.sum(0) if has_bias else None
        return d_gi, torch.from_numpy(d_h0), d_w, d_b, None, None, None


def fused_scan(gi, h0, w_hh, b_hh, lengths, *, reverse: bool, reset: str):
    """out (T, B, H), h_n (B, H), (r, z, n) for one layer and direction; lengths (B,) int64."""
    out, h_n, r, z, n = FusedGRUScan.apply(gi, h0, w_hh, b_hh, lengths, reverse, reset == "after")
    return out, h_n, (r, z, n)
