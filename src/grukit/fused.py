"""grukit's own CPU kernel for one GRU layer in one direction: forward and BPTT as compiled loops.

The work is split the way the equations allow:
  * torch computes the input projections gi = W_ih x + b_ih as one matmul per chunk of steps
    (about 1M values, `chunks`: the whole sequence when it is small). Departure from "one matmul
    for the whole sequence": chunking keeps gi and its gradient from ever existing for all T steps
    at once, which is what holds peak training memory to torch.nn.GRU's;
  * per step, the compiled loop does only the recurrent product (torch's own BLAS, `blas`) and
    the fused gate arithmetic of `cells.gru_step`, row by row;
  * the weight gradients are matmuls over each chunk's rows, accumulated:
    dW_hh = Σ_t dgh_tᵀ h_{t−1} (with W_hn's block fed r ⊙ h_{t−1} for reset="before"),
    dW_ih = Σ_t dgi_tᵀ x_t, and ∂L/∂x_t = dgi_t W_ih.

r, z, n (and W_hn h + b_hn for reset="after") are computed anyway and kept for the backward pass,
so a gate trace costs nothing extra in training; the state before each step is not kept — the
backward reads it back from the output (or h0).

Lengths follow `recurrence.scan`: at t ≥ length_b the state is left untouched and the output is 0.
Arrays are shared with torch without copies (`Tensor.numpy()` on contiguous CPU tensors).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

try:
    from numba import njit, types
    from numba.extending import overload

    from grukit.blas import gemm_for, gemm_threads, matmul_into

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
def _forward(gemm, gi, begin, h, w_t, w_rz_t, w_n_t, b_hh, lengths, reverse, reset_after, out, r_all, z_all, n_all,
             ghn_all):
    """Steps begin … begin + C − 1 of one direction (descending for reverse), C = len(gi).
    gi (C, B, 3H) their input projections; h (B, H) the state before them, updated in place;
    w_t = W_hhᵀ (H, 3H); w_rz_t (H, 2H), w_n_t (H, H) its blocks; b_hh (3H,); lengths (B,);
    gemm: see `blas.matmul_into`. Writes out, r, z, n, ghn = W_hn h + b_hn (reset="after"), each
    (T, B, H) at those steps. When nothing will read r, z, n, ghn (inference without a trace) they
    may be (1, B, H) scratch rows, overwritten each step: the memory written is then out's alone.
    Inner loops run over one contiguous row of H units, so LLVM vectorises them."""
    chunk, batch, three_h = gi.shape
    hidden = three_h // 3
    steps = out.shape[0]
    gh = np.empty((batch, three_h if reset_after else 2 * hidden), dtype=gi.dtype)  # W_hh h, or its r, z rows
    rh = np.empty((batch, hidden), dtype=gi.dtype)
    ghn = np.empty((batch, hidden), dtype=gi.dtype)
    b_r, b_z, b_n = b_hh[:hidden], b_hh[hidden : 2 * hidden], b_hh[2 * hidden :]
    keep = r_all.shape[0] == steps
    keep_ghn = ghn_all.shape[0] == steps  # only the backward reads ghn: a trace alone keeps r, z, n
    for s in range(chunk):
        c = chunk - 1 - s if reverse else s  # row of the chunk
        t = begin + c  # step of the sequence
        k = t if keep else 0  # where this step's gates go
        kh = t if keep_ghn else 0
        matmul_into(gemm, h, w_t if reset_after else w_rz_t, gh, 0.0)
        for b in range(batch):
            r, z, n, h_b, y = r_all[k, b], z_all[k, b], n_all[k, b], h[b], out[t, b]
            if t >= lengths[b]:  # past this sequence's end: state kept, output 0, no gates
                y[:] = 0.0
                r[:] = np.nan
                z[:] = np.nan
                n[:] = np.nan
                continue
            gi_r, gi_z, gi_n = gi[c, b, :hidden], gi[c, b, hidden : 2 * hidden], gi[c, b, 2 * hidden :]
            gh_r, gh_z = gh[b, :hidden], gh[b, hidden : 2 * hidden]
            for j in range(hidden):
                r[j] = _sigmoid(gi_r[j] + gh_r[j] + b_r[j])
                z[j] = _sigmoid(gi_z[j] + gh_z[j] + b_z[j])
            if reset_after:
                gh_n, ghn_t = gh[b, 2 * hidden :], ghn_all[kh, b]
                for j in range(hidden):
                    ghn_t[j] = gh_n[j] + b_n[j]  # W_hn h + b_hn
                    n[j] = _tanh(gi_n[j] + r[j] * ghn_t[j])
                    h_b[j] = n[j] + z[j] * (h_b[j] - n[j])  # (1 − z) n + z h
                    y[j] = h_b[j]
        if reset_after:
            continue
        for b in range(batch):
            r, h_b, rh_b = r_all[k, b], h[b], rh[b]
            for j in range(hidden):
                rh_b[j] = r[j] * h_b[j]  # NaN rows of finished sequences are never used
        matmul_into(gemm, rh, w_n_t, ghn, 0.0)  # W_hn (r ⊙ h)
        for b in range(batch):
            if t >= lengths[b]:
                continue
            z, n, h_b, y = z_all[k, b], n_all[k, b], h[b], out[t, b]
            gi_n, ghn_b = gi[c, b, 2 * hidden :], ghn[b]
            for j in range(hidden):
                n[j] = _tanh(gi_n[j] + ghn_b[j] + b_n[j])
                h_b[j] = n[j] + z[j] * (h_b[j] - n[j])
                y[j] = h_b[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(gemm, d_out, dh, begin, h0, out, r_all, z_all, n_all, ghn_all, w, w_rz, w_n, lengths, reverse,
              reset_after, d_gi, d_ghn, prev, rh):
    """BPTT of `_forward` over steps begin … begin + C − 1 (in the reverse of the forward order),
    C = len(d_gi). dh (B, H) = ∂L/∂h after them, updated in place to ∂L/∂h before them.
    w = W_hh (3H, H); w_rz (2H, H), w_n (H, H) its blocks; h0 (B, H) the initial state.
    The state before step t is read back, not stored: out[t − 1] (out[t + 1] in reverse) while that
    step is inside the sequence, else h0. Writes for the chunk, each (C, B, ·):
    d_gi (3H) = ∂L/∂(W_ih x + b_ih); d_ghn (H) = ∂L/∂(W_hn h + b_hn) = r ⊙ ∂L/∂n̂ (reset="after";
    the r and z blocks of ∂L/∂(W_hh h + b_hh) equal d_gi's, and so does the n block for reset="before");
    prev (H) the state before each step and, for reset="before", rh (H) = r ⊙ prev — the inputs
    of W_hh's gradient. Rows of finished sequences are zero."""
    chunk, batch, hidden = prev.shape
    dtype = prev.dtype
    d_pre_n = np.zeros((batch, hidden), dtype=dtype)  # ∂L/∂n̂, n̂ the candidate's pre-activation
    d_rh = np.zeros((batch, hidden), dtype=dtype)  # ∂L/∂(r ⊙ h_{t−1}) (reset="before")
    d_gh = np.zeros((batch, 3 * hidden), dtype=dtype)  # ∂L/∂(W_hh h_{t−1}) for this step
    for s in range(chunk):
        c = s if reverse else chunk - 1 - s  # the forward order, backwards
        t = begin + c
        for b in range(batch):
            dh_b, dn, dy, z, n = dh[b], d_pre_n[b], d_out[t, b], z_all[t, b], n_all[t, b]
            if t >= lengths[b]:
                dn[:] = 0.0
                continue
            for j in range(hidden):
                dh_b[j] += dy[j]
                dn[j] = dh_b[j] * (1.0 - z[j]) * (1.0 - n[j] * n[j])
        if not reset_after:
            matmul_into(gemm, d_pre_n, w_n, d_rh, 0.0)  # W_hnᵀ-product: ∂L/∂(r ⊙ h_{t−1})
        for b in range(batch):
            dg, dgh, h_prev = d_gi[c, b], d_gh[b], prev[c, b]
            if t >= lengths[b]:
                dg[:] = 0.0
                dgh[:] = 0.0
                h_prev[:] = 0.0
                if reset_after:
                    d_ghn[c, b] = 0.0
                else:
                    rh[c, b] = 0.0
                continue
            before = t + 1 if reverse else t - 1
            if 0 <= before < lengths[b]:
                h_prev[:] = out[before, b]
            else:
                h_prev[:] = h0[b]
            dh_b, dn, r, z, n = dh[b], d_pre_n[b], r_all[t, b], z_all[t, b], n_all[t, b]
            ghn = ghn_all[t, b] if reset_after else dn  # W_hn h + b_hn (reset="after" only)
            dghn, rh_b, drh = d_ghn[c, b], rh[c, b], d_rh[b]
            for j in range(hidden):
                if reset_after:
                    d_r = dn[j] * ghn[j] * r[j] * (1.0 - r[j])
                else:
                    d_r = drh[j] * h_prev[j] * r[j] * (1.0 - r[j])
                d_z = dh_b[j] * (h_prev[j] - n[j]) * z[j] * (1.0 - z[j])
                dg[j] = d_r
                dg[hidden + j] = d_z
                dg[2 * hidden + j] = dn[j]
                dgh[j] = d_r
                dgh[hidden + j] = d_z
                if reset_after:
                    dgh[2 * hidden + j] = dn[j] * r[j]
                    dghn[j] = dgh[2 * hidden + j]
                    dh_b[j] = dh_b[j] * z[j]  # the direct path through z ⊙ h_{t−1}
                else:
                    rh_b[j] = r[j] * h_prev[j]
                    dh_b[j] = dh_b[j] * z[j] + drh[j] * r[j]  # through z ⊙ h and through r ⊙ h
        if reset_after:
            matmul_into(gemm, d_gh, w, dh, 1.0)  # dh += Σ_gates ∂L/∂(W_h· h) W_h·
        else:
            matmul_into(gemm, d_gh[:, : 2 * hidden], w_rz, dh, 1.0)  # W_hn's part went through d_rh


@njit(cache=True, nogil=True, error_model="numpy")
def _cell_step(x, h, w_ih_t, w_hh_t, b_ih, b_hh, reset_after, h_new):
    """One GRU step, `cells.gru_step` fused: x (B, I), h (B, H), W_ihᵀ (I, 3H), W_hhᵀ (H, 3H)
    (transposed, so each product is a sum of contiguous rows scaled by x_k or h_k: vectorised, no
    BLAS call, no reassociation), b_ih, b_hh (3H,) → writes h_new (B, H). For streaming, where B is
    small. Returns False, before any arithmetic, if x or h holds a NaN or inf (the caller then
    names it), True otherwise."""
    batch, inputs = x.shape
    hidden = h.shape[1]
    for b in range(batch):
        for i in range(inputs):
            if not np.isfinite(x[b, i]):
                return False
        for j in range(hidden):
            if not np.isfinite(h[b, j]):
                return False
    gi = np.empty(3 * hidden, dtype=x.dtype)  # W_ih x + b_ih
    gh = np.empty(3 * hidden, dtype=x.dtype)  # W_hh h + b_hh (reset="before": n rows W_hn (r ⊙ h) + b_hn)
    rh = np.empty(hidden, dtype=x.dtype)
    recurrent_rows = 3 * hidden if reset_after else 2 * hidden
    for b in range(batch):
        x_b, h_b, y = x[b], h[b], h_new[b]
        gi[:] = b_ih
        for i in range(inputs):
            row, scale = w_ih_t[i], x_b[i]
            for j in range(3 * hidden):
                gi[j] += scale * row[j]
        gh[:] = b_hh
        for k in range(hidden):
            row, scale = w_hh_t[k], h_b[k]
            for j in range(recurrent_rows):
                gh[j] += scale * row[j]
        if not reset_after:
            for k in range(hidden):
                rh[k] = _sigmoid(gi[k] + gh[k]) * h_b[k]
            for k in range(hidden):
                row, scale = w_hh_t[k], rh[k]
                for j in range(hidden):
                    gh[2 * hidden + j] += scale * row[2 * hidden + j]
        for j in range(hidden):
            r = _sigmoid(gi[j] + gh[j])
            z = _sigmoid(gi[hidden + j] + gh[hidden + j])
            if reset_after:
                n = _tanh(gi[2 * hidden + j] + r * gh[2 * hidden + j])
            else:
                n = _tanh(gi[2 * hidden + j] + gh[2 * hidden + j])
            y[j] = n + z * (h_b[j] - n)  # (1 − z) n + z h
    return True


class CellWeights:
    """One layer's (W_ihᵀ, W_hhᵀ, b_ih, b_hh) as NumPy arrays for `_cell_step`, kept between calls and
    rebuilt when a parameter changes: in place (its version counter moves) or by a new storage."""

    def __init__(self) -> None:
        self.key: tuple = ()
        self.arrays: tuple = ()

    def get(self, w_ih, w_hh, b_ih, b_hh) -> tuple:
        key = (w_ih.data_ptr(), w_ih._version, w_hh.data_ptr(), w_hh._version,
               *((b_ih.data_ptr(), b_ih._version, b_hh.data_ptr(), b_hh._version) if b_ih is not None else ()))
        if key != self.key:
            zeros = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype)
            self.arrays = (w_ih.detach().t().contiguous().numpy(), w_hh.detach().t().contiguous().numpy(),
                           (zeros if b_ih is None else b_ih.detach()).numpy(),
                           (zeros if b_hh is None else b_hh.detach()).numpy())
            self.key = key
        return self.arrays


def fused_cell_step(x, h, weights: tuple, *, reset: str):
    """h' (B, H) for x (B, I), h (B, H) on the CPU, without autograd; None if x or h is not finite.
    weights: `CellWeights.get(...)`."""
    x_np = x.detach().numpy() if x.requires_grad else x.numpy()
    h_np = h.detach().numpy() if h.requires_grad else h.numpy()
    h_new = np.empty(h_np.shape, dtype=h_np.dtype)
    finite = _cell_step(x_np, h_np, *weights, reset == "after", h_new)
    return torch.from_numpy(h_new) if finite else None


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


CHUNK_VALUES = 1 << 18  # values of W_ih x per chunk of steps (1 MiB in float32)


def chunks(steps: int, batch: int, hidden: int, *, reverse: bool) -> list[tuple[int, int]]:
    """[begin, end) step ranges of about CHUNK_VALUES projected inputs each, in the forward order
    of the direction (descending for reverse)."""
    size = max(1, CHUNK_VALUES // (batch * 3 * hidden))
    ranges = [(begin, min(begin + size, steps)) for begin in range(0, steps, size)]
    return ranges[::-1] if reverse else ranges


class FusedGRUScan(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), W_ih (3H, I), b_ih (3H,) or None, W_hh (3H, H), b_hh (3H,) or None)
    → out (T, B, H), h_n (B, H), and the gates r, z, n (T, B, H) with NaN at padded steps (not
    differentiable). The input projection W_ih x + b_ih runs one matmul per chunk of steps
    (`chunks`), so it never exists for the whole sequence; nor does its gradient in the backward,
    where ∂L/∂x, ∂L/∂W_ih and ∂L/∂W_hh are accumulated chunk by chunk as matmuls."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse: bool, reset_after: bool, record: bool,
                differentiable: bool):
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]
        dtype = x.dtype
        bias = torch.zeros(3 * hidden, dtype=dtype) if b_hh is None else b_hh.detach()
        w_t = w_hh.detach().t().contiguous()  # (H, 3H)
        w_rz_t, w_n_t = w_t[:, : 2 * hidden].contiguous(), w_t[:, 2 * hidden :].contiguous()
        # the backward reads every step's r, z, n and ghn = W_hn h + b_hn, a trace r, z, n; plain
        # inference overwrites one step's
        kept = steps if record or differentiable else 1
        out = torch.empty(steps, batch, hidden, dtype=dtype)
        r, z, n = (torch.empty(kept, batch, hidden, dtype=dtype) for _ in range(3))
        ghn = torch.empty(steps if differentiable else 1, batch, hidden, dtype=dtype) if reset_after else \
            torch.empty(1, 0, 0, dtype=dtype)
        h = h0.detach().clone().contiguous()
        x_, w_ih_, b_ih_ = x.detach(), w_ih.detach(), None if b_ih is None else b_ih.detach()
        gemm = gemm_for(w_t.numpy().dtype)
        with gemm_threads(batch, 3 * hidden, hidden):
            for begin, end in chunks(steps, batch, hidden, reverse=reverse):
                gi = F.linear(x_[begin:end], w_ih_, b_ih_)  # (C, B, 3H), one product for the chunk
                _forward(gemm, _np(gi), begin, h.numpy(), w_t.numpy(), w_rz_t.numpy(), w_n_t.numpy(),
                         bias.numpy(), lengths.numpy(), reverse, reset_after, out.numpy(), r.numpy(), z.numpy(),
                         n.numpy(), ghn.numpy())
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths)
        ctx.flags = (reverse, reset_after, b_ih is not None, b_hh is not None)
        ctx.mark_non_differentiable(r, z, n)
        ctx.set_materialize_grads(False)  # no (T, B, H) zero gradients for the gates (or an unused out)
        return out, h, r, z, n

    @staticmethod
    def backward(ctx, d_out, d_hn, _dr, _dz, _dn):
        x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths = ctx.saved_tensors
        reverse, reset_after, has_bias_ih, has_bias_hh = ctx.flags
        steps, batch, hidden = out.shape
        dtype = out.dtype
        d_out = torch.zeros_like(out) if d_out is None else d_out.contiguous()
        dh = torch.zeros(batch, hidden, dtype=dtype) if d_hn is None else d_hn.detach().clone().contiguous()
        w = w_hh.detach().contiguous()
        w_rz, w_n = w[: 2 * hidden].contiguous(), w[2 * hidden :].contiguous()
        x_, w_ih_ = x.detach(), w_ih.detach()
        wants_d_x = ctx.needs_input_grad[0]  # a first layer's input usually needs no gradient
        d_x = torch.empty(x_.shape, dtype=dtype) if wants_d_x else None  # contiguous, whatever x's layout
        d_w_ih, d_w_hh = torch.zeros_like(w_ih_), torch.zeros_like(w)
        d_b_ih, d_b_hh = torch.zeros(3 * hidden, dtype=dtype), torch.zeros(3 * hidden, dtype=dtype)
        size = chunks(steps, batch, hidden, reverse=False)[0][1]
        d_gi_buffer = torch.empty(size, batch, 3 * hidden, dtype=dtype)
        prev_buffer, side_buffer = torch.empty(size, batch, hidden, dtype=dtype), torch.empty(size, batch, hidden,
                                                                                               dtype=dtype)
        gemm = gemm_for(out.numpy().dtype)
        initial = _np(h0)
        for begin, end in reversed(chunks(steps, batch, hidden, reverse=reverse)):  # backwards in time
            d_gi, prev, side = d_gi_buffer[: end - begin], prev_buffer[: end - begin], side_buffer[: end - begin]
            with gemm_threads(batch, 3 * hidden, hidden):
                _backward(gemm, d_out.numpy(), dh.numpy(), begin, initial, out.numpy(),
                          r.numpy(), z.numpy(), n.numpy(), ghn.numpy(), w.numpy(), w_rz.numpy(), w_n.numpy(),
                          lengths.numpy(), reverse, reset_after, d_gi.numpy(), side.numpy(), prev.numpy(),
                          side.numpy())
            # this chunk's share of the gradients, as matmuls over its (C·B) rows
            flat_gi = d_gi.reshape(-1, 3 * hidden)
            if wants_d_x:
                torch.mm(flat_gi, w_ih_, out=d_x[begin:end].view(-1, x_.shape[-1]))
            d_w_ih.addmm_(flat_gi.t(), x_[begin:end].reshape(-1, x_.shape[-1]))
            flat_prev = prev.reshape(-1, hidden)
            d_w_hh[: 2 * hidden].addmm_(flat_gi[:, : 2 * hidden].t(), flat_prev)
            if reset_after:  # side = d_ghn; W_hn reads h
                d_gh_n, n_input = side.reshape(-1, hidden), flat_prev
            else:  # side = r ⊙ h; W_hn reads it, and its gradient is d_gi's n block
                d_gh_n, n_input = flat_gi[:, 2 * hidden :], side.reshape(-1, hidden)
            d_w_hh[2 * hidden :].addmm_(d_gh_n.t(), n_input)
            d_b_ih += flat_gi.sum(0)
            d_b_hh[: 2 * hidden] += flat_gi[:, : 2 * hidden].sum(0)
            d_b_hh[2 * hidden :] += d_gh_n.sum(0)
        return (d_x, dh, d_w_ih, d_b_ih if has_bias_ih else None, d_w_hh, d_b_hh if has_bias_hh else None,
                None, None, None, None, None)


def fused_scan(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, *, reverse: bool, reset: str, record: bool):
    """out (T, B, H), h_n (B, H), and (r, z, n) each (T, B, H) when record=True (else None),
    for one layer and direction: x (T, B, I), lengths (B,) int64."""
    # the backward pass and a trace read every step's gates; plain inference needs one step's
    differentiable = torch.is_grad_enabled() and any(
        tensor is not None and tensor.requires_grad for tensor in (x, h0, w_ih, b_ih, w_hh, b_hh))
    out, h_n, r, z, n = FusedGRUScan.apply(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse, reset == "after",
                                           record, differentiable)
    return out, h_n, (r, z, n) if record else None
