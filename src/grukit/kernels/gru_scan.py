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

The compiled loops take their arrays in small bundles, each a NamedTuple here (`ScanInputs`,
`ForwardWeights`, `Gates`, `BackwardWeights`, `ChunkGradients`, `Block`) passed to numba as a plain
tuple (`tuple(bundle)`: numba types a NamedTuple argument through a slower Python path on every
call) and unpacked in the loop under the same field names, in the same order (tested).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch

from grukit.kernels.activations import NUMBA_ERROR, njit, sigmoid, tanh

if NUMBA_ERROR is None:
    from grukit.kernels.blas import check_blas_sizes, gemm_for, gemm_threads, matmul_into, small_product
    from grukit.kernels.rows import kernel_path, row_parts, run_rows


def unavailable_reason() -> str | None:
    """Why the fused kernel cannot run in this environment, or None when it can."""
    if NUMBA_ERROR is not None:
        warnings.warn(f"grukit's fused kernel is unavailable: {NUMBA_ERROR}", RuntimeWarning, stacklevel=4)
    return NUMBA_ERROR


KERNEL_DTYPES = (torch.float32, torch.float64)  # what the compiled loops are typed for


def refusal(x: torch.Tensor, *, what: str = "input") -> str | None:
    """Why the compiled kernels (this module's, `grud_fused`'s) cannot run on the tensor x (the
    `what`: the input, or a module's weight), or None."""
    if not x.is_cpu:
        return f"the fused kernel runs on the CPU, the {what} is on {x.device}"
    if x.dtype not in KERNEL_DTYPES:
        return f"the fused kernel computes in float32 or float64, the {what} is {str(x.dtype).removeprefix('torch.')}"
    return unavailable_reason()


class ScanInputs(NamedTuple):
    """What one layer-direction's scan reads and never writes."""

    x: np.ndarray  # (T, B, I)
    lengths: np.ndarray  # (B,) int64
    reverse: bool  # run the steps descending
    reset_after: bool  # reset="after": r multiplies W_hn h + b_hn; "before": W_hn (r ⊙ h)


class ForwardWeights(NamedTuple):
    """One layer-direction's weights as the forward loop multiplies by them (transposed)."""

    w_ih_t: np.ndarray  # W_ihᵀ (I, 3H)
    b_ih: np.ndarray  # (3H,)
    w_hh_t: np.ndarray  # W_hhᵀ (H, 3H)
    w_rz_t: np.ndarray  # its r, z columns (H, 2H)
    w_n_t: np.ndarray  # its n columns (H, H)
    b_hh: np.ndarray  # (3H,)


class Gates(NamedTuple):
    """What the forward writes, each (T, B, H) (r, z, n, ghn may be (1, B, H) scratch: `_forward`),
    and the backward reads."""

    out: np.ndarray
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    ghn: np.ndarray  # W_hn h + b_hn (reset="after"; (1, 0, 0) for reset="before")


class BackwardWeights(NamedTuple):
    """W_hh as the backward loop multiplies by it (untransposed)."""

    w_hh: np.ndarray  # (3H, H)
    w_rz: np.ndarray  # its r, z rows (2H, H)
    w_n: np.ndarray  # its n rows (H, H)


class ChunkGradients(NamedTuple):
    """What the backward writes for one chunk of C steps and R rows (`_backward`)."""

    x_rows: np.ndarray  # (C, R, I)
    d_gi: np.ndarray  # (C, R, 3H)
    d_ghn: np.ndarray  # (C, R, H), reset="after"
    prev: np.ndarray  # (C, R, H)
    rh: np.ndarray  # (C, R, H), reset="before" (the same buffer as d_ghn)
    d_bias: np.ndarray  # (4H,), added to


class Block(NamedTuple):
    """The steps [begin, end) and batch rows [first, last) one call runs."""

    begin: int
    end: int
    first: int
    last: int


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(gemm, inputs, weights, h, gates, block):
    """Steps begin … end − 1 of one direction (run descending for reverse) for batch rows
    first … last − 1 (rows are independent: `rows.run_rows` runs disjoint ranges at once).
    inputs `ScanInputs`, weights `ForwardWeights`, gates `Gates`, block `Block`, each a plain tuple;
    gemm: see `blas.matmul_into`. The chunk's input projections gi = W_ih x + b_ih come first, as
    one product over its (C·R) rows, C = end − begin, R = last − first. h (B, H) the state before
    the chunk, updated in place. Writes out, r, z, n, ghn = W_hn h + b_hn (reset="after"), each
    (T, B, H) at those steps. When nothing will read r, z, n, ghn (inference without a trace) they
    may be (1, B, H) scratch rows, overwritten each step: the memory written is then out's alone.
    Inner loops run over one contiguous row of H units, so LLVM vectorises them."""
    x, lengths, reverse, reset_after = inputs
    w_ih_t, b_ih, w_t, w_rz_t, w_n_t, b_hh = weights
    out, r_all, z_all, n_all, ghn_all = gates
    begin, end, first, last = block
    chunk, rows = end - begin, last - first
    three_h = w_t.shape[1]
    hidden = three_h // 3
    steps = out.shape[0]
    dtype = out.dtype
    x_rows = np.empty((chunk * rows, x.shape[2]), dtype=dtype)
    gi = np.empty((chunk * rows, three_h), dtype=dtype)
    for c in range(chunk):
        for i in range(rows):
            x_rows[c * rows + i] = x[begin + c, first + i]
            gi[c * rows + i] = b_ih
    matmul_into(gemm, x_rows, w_ih_t, gi, 1.0)  # W_ih x + b_ih for the chunk's rows
    gi = gi.reshape((chunk, rows, three_h))
    gh = np.empty((rows, three_h if reset_after else 2 * hidden), dtype=dtype)  # W_hh h, or its r, z rows
    rh = np.empty((rows, hidden), dtype=dtype)
    ghn = np.empty((rows, hidden), dtype=dtype)
    h_rows = h[first:last]
    b_r, b_z, b_n = b_hh[:hidden], b_hh[hidden : 2 * hidden], b_hh[2 * hidden :]
    keep = r_all.shape[0] == steps
    keep_ghn = ghn_all.shape[0] == steps  # only the backward reads ghn: a trace alone keeps r, z, n
    for s in range(chunk):
        c = chunk - 1 - s if reverse else s  # row of the chunk
        t = begin + c  # step of the sequence
        k = t if keep else 0  # where this step's gates go
        kh = t if keep_ghn else 0
        matmul_into(gemm, h_rows, w_t if reset_after else w_rz_t, gh, 0.0)
        for b in range(first, last):
            i = b - first  # row of the scratch arrays
            r, z, n, h_b, y = r_all[k, b], z_all[k, b], n_all[k, b], h[b], out[t, b]
            if t >= lengths[b]:  # past this sequence's end: state kept, output 0, no gates
                y[:] = 0.0
                r[:] = np.nan
                z[:] = np.nan
                n[:] = np.nan
                continue
            gi_r, gi_z, gi_n = gi[c, i, :hidden], gi[c, i, hidden : 2 * hidden], gi[c, i, 2 * hidden :]
            gh_r, gh_z = gh[i, :hidden], gh[i, hidden : 2 * hidden]
            for j in range(hidden):
                r[j] = sigmoid(gi_r[j] + gh_r[j] + b_r[j])
                z[j] = sigmoid(gi_z[j] + gh_z[j] + b_z[j])
            if reset_after:
                gh_n, ghn_t = gh[i, 2 * hidden :], ghn_all[kh, b]
                for j in range(hidden):
                    ghn_t[j] = gh_n[j] + b_n[j]  # W_hn h + b_hn
                    n[j] = tanh(gi_n[j] + r[j] * ghn_t[j])
                    h_b[j] = n[j] + z[j] * (h_b[j] - n[j])  # (1 − z) n + z h
                    y[j] = h_b[j]
        if reset_after:
            continue
        for b in range(first, last):
            r, h_b, rh_b = r_all[k, b], h[b], rh[b - first]
            for j in range(hidden):
                rh_b[j] = r[j] * h_b[j]  # NaN rows of finished sequences are never used
        matmul_into(gemm, rh, w_n_t, ghn, 0.0)  # W_hn (r ⊙ h)
        for b in range(first, last):
            if t >= lengths[b]:
                continue
            z, n, h_b, y = z_all[k, b], n_all[k, b], h[b], out[t, b]
            gi_n, ghn_b = gi[c, b - first, 2 * hidden :], ghn[b - first]
            for j in range(hidden):
                n[j] = tanh(gi_n[j] + ghn_b[j] + b_n[j])
                h_b[j] = n[j] + z[j] * (h_b[j] - n[j])
                y[j] = h_b[j]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def candidate_gradient(dh, d_n, d_out, z_all, n_all, lengths, t, first, last):
    """The first move of a step's BPTT, for rows first … last − 1: dh += ∂L/∂y_t, then
    d_n = ∂L/∂(n's pre-activation) = dh ⊙ (1 − z) ⊙ (1 − n²) (0 past a sequence's end)."""
    for b in range(first, last):
        dh_b, dn, dy, z, n = dh[b], d_n[b - first], d_out[t, b], z_all[t, b], n_all[t, b]
        if t >= lengths[b]:
            dn[:] = 0.0
            continue
        for j in range(dh_b.shape[0]):
            dh_b[j] += dy[j]
            dn[j] = dh_b[j] * (1.0 - z[j]) * (1.0 - n[j] * n[j])


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(gemm, inputs, weights, h0, gates, d_out, dh, grads, block):
    """BPTT of `_forward` over steps begin … end − 1 (in the reverse of the forward order),
    C = end − begin = len(d_gi), for batch rows first … last − 1 (R = last − first of them).
    inputs `ScanInputs`, weights `BackwardWeights` (W_hh and its blocks), gates the forward's
    `Gates`, grads `ChunkGradients`, block `Block`, each a plain tuple. d_out (T, B, H) = ∂L/∂out;
    dh (B, H) = ∂L/∂h after the steps, updated in place to ∂L/∂h before them; h0 (B, H) the
    initial state.
    The state before step t is read back, not stored: out[t − 1] (out[t + 1] in reverse) while that
    step is inside the sequence, else h0. Writes for the chunk and those rows, each (C, R, ·):
    d_gi (3H) = ∂L/∂(W_ih x + b_ih); d_ghn (H) = ∂L/∂(W_hn h + b_hn) = r ⊙ ∂L/∂n̂ (reset="after";
    the r and z blocks of ∂L/∂(W_hh h + b_hh) equal d_gi's, and so does the n block for reset="before");
    prev (H) the state before each step and, for reset="before", rh (H) = r ⊙ prev — the inputs
    of W_hh's gradient; x_rows (I) those rows of x (T, B, I), the input of W_ih's. Rows of finished
    sequences are zero. Adds the bias gradients to d_bias (4H): Σ d_gi, then Σ d_ghn (reset="after")."""
    x, lengths, reverse, reset_after = inputs
    w, w_rz, w_n = weights
    out, r_all, z_all, n_all, ghn_all = gates
    x_rows, d_gi, d_ghn, prev, rh, d_bias = grads
    begin, _, first, last = block
    chunk, _, hidden = prev.shape
    dtype = prev.dtype
    rows = last - first
    d_pre_n = np.zeros((rows, hidden), dtype=dtype)  # ∂L/∂n̂, n̂ the candidate's pre-activation
    d_rh = np.zeros((rows, hidden), dtype=dtype)  # ∂L/∂(r ⊙ h_{t−1}) (reset="before")
    d_gh = np.zeros((rows, 3 * hidden), dtype=dtype)  # ∂L/∂(W_hh h_{t−1}) for this step
    dh_rows = dh[first:last]
    for s in range(chunk):
        c = s if reverse else chunk - 1 - s  # the forward order, backwards
        t = begin + c
        candidate_gradient(dh, d_pre_n, d_out, z_all, n_all, lengths, t, first, last)
        if not reset_after:
            matmul_into(gemm, d_pre_n, w_n, d_rh, 0.0)  # W_hnᵀ-product: ∂L/∂(r ⊙ h_{t−1})
        for b in range(first, last):
            i = b - first  # row of the scratch arrays
            x_rows[c, i] = x[t, b]
            dg, dgh, h_prev = d_gi[c, i], d_gh[i], prev[c, i]
            if t >= lengths[b]:
                dg[:] = 0.0
                dgh[:] = 0.0
                h_prev[:] = 0.0
                if reset_after:
                    d_ghn[c, i] = 0.0
                else:
                    rh[c, i] = 0.0
                continue
            before = t + 1 if reverse else t - 1
            if 0 <= before < lengths[b]:
                h_prev[:] = out[before, b]
            else:
                h_prev[:] = h0[b]
            dh_b, dn, r, z, n = dh[b], d_pre_n[i], r_all[t, b], z_all[t, b], n_all[t, b]
            ghn = ghn_all[t, b] if reset_after else dn  # W_hn h + b_hn (reset="after" only)
            dghn, rh_b, drh = d_ghn[c, i], rh[c, i], d_rh[i]
            for j in range(hidden):
                if reset_after:
                    d_r = dn[j] * ghn[j] * r[j] * (1.0 - r[j])
                else:
                    d_r = drh[j] * h_prev[j] * r[j] * (1.0 - r[j])
                d_z = dh_b[j] * (h_prev[j] - n[j]) * z[j] * (1.0 - z[j])
                dg[j] = d_r
                dg[hidden + j] = d_z
                dg[2 * hidden + j] = dn[j]
                d_bias[j] += d_r
                d_bias[hidden + j] += d_z
                d_bias[2 * hidden + j] += dn[j]
                dgh[j] = d_r
                dgh[hidden + j] = d_z
                if reset_after:
                    dgh[2 * hidden + j] = dn[j] * r[j]
                    dghn[j] = dgh[2 * hidden + j]
                    d_bias[3 * hidden + j] += dghn[j]
                    dh_b[j] = dh_b[j] * z[j]  # the direct path through z ⊙ h_{t−1}
                else:
                    rh_b[j] = r[j] * h_prev[j]
                    dh_b[j] = dh_b[j] * z[j] + drh[j] * r[j]  # through z ⊙ h and through r ⊙ h
        if reset_after:
            matmul_into(gemm, d_gh, w, dh_rows, 1.0)  # dh += Σ_gates ∂L/∂(W_h· h) W_h·
        else:
            matmul_into(gemm, d_gh[:, : 2 * hidden], w_rz, dh_rows, 1.0)  # W_hn's part went through d_rh


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
                rh[k] = sigmoid(gi[k] + gh[k]) * h_b[k]
            for k in range(hidden):
                row, scale = w_hh_t[k], rh[k]
                for j in range(hidden):
                    gh[2 * hidden + j] += scale * row[2 * hidden + j]
        for j in range(hidden):
            r = sigmoid(gi[j] + gh[j])
            z = sigmoid(gi[hidden + j] + gh[hidden + j])
            if reset_after:
                n = tanh(gi[2 * hidden + j] + r * gh[2 * hidden + j])
            else:
                n = tanh(gi[2 * hidden + j] + gh[2 * hidden + j])
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


def fused_cell_step(x, h, weights: tuple, *, reset: str, out: torch.Tensor | None = None):
    """h' (B, H) for x (B, I), h (B, H) on the CPU, without autograd; None if x or h is not finite.
    weights: `CellWeights.get(...)`; out: a contiguous (B, H) tensor to write h' into."""
    x_np = x.detach().numpy() if x.requires_grad else x.numpy()
    h_np = h.detach().numpy() if h.requires_grad else h.numpy()
    h_new = np.empty(h_np.shape, dtype=h_np.dtype) if out is None else out.numpy()
    finite = _cell_step(x_np, h_np, *weights, reset == "after", h_new)
    if not finite:
        return None
    return torch.from_numpy(h_new) if out is None else out


@njit(cache=True, nogil=True)
def _put_rows(rows, into, begin, first):
    """into[begin + c, first + i] = rows[c, i] for rows (C, R, ·), into (T, B, ·)."""
    for c in range(rows.shape[0]):
        for i in range(rows.shape[1]):
            into[begin + c, first + i] = rows[c, i]


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


def backward_operands(d_out, d_hn, w_hh, out):
    """A scan's backward inputs as the compiled loops want them: ∂L/∂out (zeros when unused) and
    ∂L/∂h_n (a fresh buffer the loop turns into ∂L/∂h0), contiguous; W_hh and its [r; z] and n blocks."""
    _, batch, hidden = out.shape
    d_out = torch.zeros_like(out) if d_out is None else d_out.contiguous()
    dh = torch.zeros(batch, hidden, dtype=out.dtype) if d_hn is None else d_hn.detach().clone().contiguous()
    w = w_hh.detach().contiguous()
    return d_out, dh, w, w[: 2 * hidden].contiguous(), w[2 * hidden :].contiguous()


CHUNK_VALUES = 1 << 18  # values of W_ih x per chunk of steps (1 MiB in float32)
CHUNKS_AT_LEAST = 4  # a short sequence is still cut in four: its buffers stay a quarter of its size


def chunks(steps: int, batch: int, hidden: int, *, reverse: bool) -> list[tuple[int, int]]:
    """[begin, end) step ranges of about CHUNK_VALUES projected inputs each, and at most a
    CHUNKS_AT_LEAST-th of the sequence, in the forward order of the direction (descending for
    reverse)."""
    size = max(1, min(CHUNK_VALUES // (batch * 3 * hidden), -(-steps // CHUNKS_AT_LEAST)))
    ranges = [(begin, min(begin + size, steps)) for begin in range(0, steps, size)]
    return ranges[::-1] if reverse else ranges


def scan_forward(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, *, reverse: bool, reset_after: bool, keep: bool):
    """out (T, B, H), h_n (B, H), r, z, n and ghn = W_hn h + b_hn (reset after; else an empty
    (1, 0, 0)) of one layer-direction by the compiled loop. keep: every step's gates (what the
    backward and a trace read); otherwise only the last step's, overwritten step by step."""
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]
    dtype = x.dtype
    zeros = torch.zeros(3 * hidden, dtype=dtype)  # a missing bias
    bias = zeros if b_hh is None else b_hh.detach()
    w_t = w_hh.detach().t().contiguous()  # (H, 3H)
    w_rz_t, w_n_t = w_t[:, : 2 * hidden].contiguous(), w_t[:, 2 * hidden :].contiguous()
    # the backward reads every step's r, z, n and ghn = W_hn h + b_hn, a trace r, z, n; plain
    # inference overwrites one step's
    kept = steps if keep else 1
    out = torch.empty(steps, batch, hidden, dtype=dtype)
    r, z, n = (torch.empty(kept, batch, hidden, dtype=dtype) for _ in range(3))
    ghn = torch.empty(steps if keep else 1, batch, hidden, dtype=dtype) if reset_after else \
        torch.empty(1, 0, 0, dtype=dtype)
    h = h0.detach().clone().contiguous()
    x_np = _np(x)
    ranges = chunks(steps, batch, hidden, reverse=reverse)
    check_blas_sizes(batch_size=batch, input_size=x_np.shape[2], gate_units=3 * hidden,
                     chunk_rows=max(end - begin for begin, end in ranges) * batch)
    inputs = tuple(ScanInputs(x_np, lengths.numpy(), reverse, reset_after))
    weights = tuple(ForwardWeights(w_ih.detach().t().contiguous().numpy(),
                                   (zeros if b_ih is None else b_ih.detach()).numpy(),
                                   w_t.numpy(), w_rz_t.numpy(), w_n_t.numpy(), bias.numpy()))
    gates = tuple(Gates(out.numpy(), r.numpy(), z.numpy(), n.numpy(), ghn.numpy()))
    h_np = h.numpy()
    path = kernel_path()
    gemm = gemm_for(path, out.numpy().dtype)
    small = small_product(batch, 3 * hidden, hidden)

    def forward_rows(first: int, last: int) -> None:
        for begin, end in ranges:
            with gemm_threads(path, single=small):
                _forward(gemm, inputs, weights, h_np, gates, tuple(Block(begin, end, first, last)))

    run_rows(forward_rows, row_parts(batch, hidden))
    return out, h, r, z, n, ghn


def scan_backward(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths, d_out, d_hn, *, reverse: bool, reset_after: bool,
                  wants_d_x: bool):
    """(∂L/∂x or None, ∂L/∂h0, ∂L/∂W_ih, ∂L/∂b_ih, ∂L/∂W_hh, ∂L/∂b_hh) of one layer-direction from
    what `scan_forward` kept and the incoming d_out (T, B, H), d_hn (B, H) (None: zero)."""
    steps, batch, hidden = out.shape
    dtype = out.dtype
    d_out, dh, w, w_rz, w_n = backward_operands(d_out, d_hn, w_hh, out)
    x_np, w_ih_ = _np(x), w_ih.detach()
    inputs = x_np.shape[2]
    d_x = torch.empty(x.shape, dtype=dtype) if wants_d_x else None  # contiguous, whatever x's layout
    inputs_np = tuple(ScanInputs(x_np, lengths.numpy(), reverse, reset_after))
    weights = tuple(BackwardWeights(w.numpy(), w_rz.numpy(), w_n.numpy()))
    gates = tuple(Gates(out.numpy(), r.numpy(), z.numpy(), n.numpy(), ghn.numpy()))
    path = kernel_path()
    gemm = gemm_for(path, out.numpy().dtype)
    small = small_product(batch, 3 * hidden, hidden)
    ranges = chunks(steps, batch, hidden, reverse=reverse)
    size = max(end - begin for begin, end in ranges)
    check_blas_sizes(batch_size=batch, input_size=inputs, gate_units=3 * hidden, chunk_rows=size * batch)
    sums = {}  # first row → that part's (∂L/∂W_ih, ∂L/∂W_hh, bias sums)

    def backward_rows(first: int, last: int) -> None:
        rows = last - first
        d_gi_buffer = torch.empty(size, rows, 3 * hidden, dtype=dtype)
        prev_buffer, side_buffer = (torch.empty(size, rows, hidden, dtype=dtype) for _ in range(2))
        x_buffer = torch.empty(size, rows, inputs, dtype=dtype)
        d_x_buffer = torch.empty(size, rows, inputs, dtype=dtype) if wants_d_x else None
        d_w_ih, d_w_hh = torch.zeros_like(w_ih_), torch.zeros_like(w)
        d_bias = torch.zeros(4 * hidden, dtype=dtype)
        for begin, end in reversed(ranges):  # backwards in time
            steps_here = end - begin
            d_gi, prev, side, x_rows = (buffer[:steps_here] for buffer in (d_gi_buffer, prev_buffer, side_buffer,
                                                                           x_buffer))
            grads = tuple(ChunkGradients(x_rows.numpy(), d_gi.numpy(), side.numpy(), prev.numpy(), side.numpy(),
                                         d_bias.numpy()))
            with gemm_threads(path, single=small):
                _backward(gemm, inputs_np, weights, initial, gates, d_out_np, dh_np, grads,
                          tuple(Block(begin, end, first, last)))
            # this chunk's share of the gradients, as matmuls over its (C·R) rows
            flat_gi = d_gi.view(-1, 3 * hidden)
            if wants_d_x:
                d_x_rows = d_x_buffer[:steps_here]
                torch.mm(flat_gi, w_ih_, out=d_x_rows.view(-1, inputs))
                _put_rows(d_x_rows.numpy(), d_x.numpy(), begin, first)
            d_w_ih.addmm_(flat_gi.t(), x_rows.view(-1, inputs))
            flat_prev = prev.view(-1, hidden)
            d_w_hh[: 2 * hidden].addmm_(flat_gi[:, : 2 * hidden].t(), flat_prev)
            if reset_after:  # side = d_ghn; W_hn reads h
                d_gh_n, n_input = side.view(-1, hidden), flat_prev
            else:  # side = r ⊙ h; W_hn reads it, and its gradient is d_gi's n block
                d_gh_n, n_input = flat_gi[:, 2 * hidden :], side.view(-1, hidden)
            d_w_hh[2 * hidden :].addmm_(d_gh_n.t(), n_input)
        sums[first] = (d_w_ih, d_w_hh, d_bias)

    d_out_np, dh_np, initial = d_out.numpy(), dh.numpy(), _np(h0)
    run_rows(backward_rows, row_parts(batch, hidden))
    d_w_ih, d_w_hh, d_bias = (sum(part[k] for part in sums.values()) for k in range(3))
    d_b_ih = d_bias[: 3 * hidden]
    d_b_hh = torch.cat([d_bias[: 2 * hidden], d_bias[3 * hidden :] if reset_after else d_b_ih[2 * hidden :]])
    return d_x, dh, d_w_ih, d_b_ih, d_w_hh, d_b_hh


class FusedGRUScan(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), W_ih (3H, I), b_ih (3H,) or None, W_hh (3H, H), b_hh (3H,) or None)
    → out (T, B, H), h_n (B, H), and the gates r, z, n (T, B, H) with NaN at padded steps (not
    differentiable). The input projection W_ih x + b_ih runs one matmul per chunk of steps
    (`chunks`), so it never exists for the whole sequence; nor does its gradient in the backward,
    where ∂L/∂x, ∂L/∂W_ih and ∂L/∂W_hh are accumulated chunk by chunk as matmuls."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse: bool, reset_after: bool, record: bool,
                differentiable: bool, reference=None):
        out, h, r, z, n, ghn = scan_forward(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse=reverse,
                                            reset_after=reset_after, keep=record or differentiable)
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths, b_ih, b_hh)
        ctx.flags = (reverse, reset_after, b_ih is not None, b_hh is not None)
        ctx.reference = reference
        ctx.mark_non_differentiable(r, z, n)
        ctx.set_materialize_grads(False)  # no (T, B, H) zero gradients for the gates (or an unused out)
        return out, h, r, z, n

    @staticmethod
    def backward(ctx, d_out, d_hn, _dr, _dz, _dn):
        if torch.is_grad_enabled() and ctx.reference is not None:  # create_graph=True
            return differentiable_backward(ctx, d_out, d_hn)
        x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths, _, _ = ctx.saved_tensors
        reverse, reset_after, has_bias_ih, has_bias_hh = ctx.flags
        d_x, dh, d_w_ih, d_b_ih, d_w_hh, d_b_hh = scan_backward(
            x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths, d_out, d_hn, reverse=reverse, reset_after=reset_after,
            wants_d_x=ctx.needs_input_grad[0])  # a first layer's input usually needs no gradient
        return (d_x, dh, d_w_ih, d_b_ih if has_bias_ih else None, d_w_hh, d_b_hh if has_bias_hh else None,
                None, None, None, None, None, None)


def differentiable_backward(ctx, d_out, d_hn):
    """The gradients of FusedGRUScan as differentiable functions of its inputs and of d_out, d_hn,
    for a backward with create_graph=True (double backward, gradient penalties, Hessian-vector
    products): the compiled backward's numbers are not on autograd's tape, so the layer is re-run
    by `ctx.reference` — the readable recurrence, (x, h0, W_ih, b_ih, W_hh, b_hh, lengths) → (out,
    h_n) — and differentiated by autograd. Costs one more forward and an autograd backward of
    the reference code, on top of the compiled forward."""
    x, h0, w_ih, w_hh, *_, lengths, b_ih, b_hh = ctx.saved_tensors
    primals = (x, h0, w_ih, b_ih, w_hh, b_hh)
    wanted = [k for k, tensor in enumerate(primals) if tensor is not None and ctx.needs_input_grad[k]]
    with torch.enable_grad():
        out, h_n = ctx.reference(*primals, lengths)
        pairs = [(y, d) for y, d in ((out, d_out), (h_n, d_hn)) if d is not None]
        grads = torch.autograd.grad([y for y, _ in pairs], [primals[k] for k in wanted], [d for _, d in pairs],
                                    create_graph=True, allow_unused=True)
    result: list = [None] * 12
    for k, grad in zip(wanted, grads, strict=True):
        result[k] = grad
    return tuple(result)


# -- the scan as PyTorch custom operators, for code torch.compile and torch.export trace ----------
# Eager calls go through FusedGRUScan (its create_graph fallback included); traced calls through
# grukit::gru_scan, which a compiled graph or an exported program calls as one opaque op: its fake
# (meta) implementation gives the shapes, its registered autograd calls grukit::gru_scan_backward.


@torch.library.custom_op("grukit::gru_scan", mutates_args=(), device_types="cpu")
def gru_scan_op(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor | None,
                w_hh: torch.Tensor, b_hh: torch.Tensor | None, lengths: torch.Tensor, reverse: bool,
                reset_after: bool, keep: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                        torch.Tensor, torch.Tensor]:
    """`scan_forward` as an op: (out, h_n, r, z, n, ghn), every step's gates with keep (a backward or a
    trace reads them), the last step's without."""
    return scan_forward(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse=reverse, reset_after=reset_after, keep=keep)


@gru_scan_op.register_fake
def _(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse, reset_after, keep):
    steps, batch, hidden = x.shape[0], x.shape[1], w_hh.shape[1]
    kept = steps if keep else 1
    gates = [x.new_empty(kept, batch, hidden) for _ in range(3)]
    ghn = x.new_empty(kept, batch, hidden) if reset_after else x.new_empty(1, 0, 0)
    return x.new_empty(steps, batch, hidden), x.new_empty(batch, hidden), *gates, ghn


@torch.library.custom_op("grukit::gru_scan_backward", mutates_args=(), device_types="cpu")
def gru_scan_backward_op(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
                         out: torch.Tensor, r: torch.Tensor, z: torch.Tensor, n: torch.Tensor, ghn: torch.Tensor,
                         lengths: torch.Tensor, d_out: torch.Tensor, d_hn: torch.Tensor, reverse: bool,
                         reset_after: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                     torch.Tensor, torch.Tensor]:
    """`scan_backward` as an op: (∂x, ∂h0, ∂W_ih, ∂b_ih, ∂W_hh, ∂b_hh)."""
    return scan_backward(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths, d_out, d_hn, reverse=reverse,
                         reset_after=reset_after, wants_d_x=True)


@gru_scan_backward_op.register_fake
def _(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths, d_out, d_hn, reverse, reset_after):
    gates = w_hh.shape[0]
    return (x.new_empty(x.shape), h0.new_empty(h0.shape), w_ih.new_empty(w_ih.shape), w_ih.new_empty(gates),
            w_hh.new_empty(w_hh.shape), w_hh.new_empty(gates))


def _op_setup_context(ctx, inputs, output) -> None:
    x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse, reset_after, _ = inputs
    out, _, r, z, n, ghn = output
    ctx.save_for_backward(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths)
    ctx.flags = (reverse, reset_after, b_ih is not None, b_hh is not None)


def _op_backward(ctx, d_out, d_hn, _dr, _dz, _dn, _dghn):
    x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths = ctx.saved_tensors
    reverse, reset_after, has_bias_ih, has_bias_hh = ctx.flags
    d_out = torch.zeros_like(out) if d_out is None else d_out
    d_hn = torch.zeros_like(h0) if d_hn is None else d_hn
    d_x, dh, d_w_ih, d_b_ih, d_w_hh, d_b_hh = gru_scan_backward_op(x, h0, w_ih, w_hh, out, r, z, n, ghn, lengths,
                                                                   d_out, d_hn, reverse, reset_after)
    return (d_x, dh, d_w_ih, d_b_ih if has_bias_ih else None, d_w_hh, d_b_hh if has_bias_hh else None,
            None, None, None, None)


gru_scan_op.register_autograd(_op_backward, setup_context=_op_setup_context)


def fused_scan(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, *, reverse: bool, reset: str, record: bool, reference=None):
    """out (T, B, H), h_n (B, H), and (r, z, n) each (T, B, H) when record=True (else None),
    for one layer and direction: x (T, B, I), lengths (B,) int64. `reference`: the same layer by
    readable code, (x, h0, W_ih, b_ih, W_hh, b_hh, lengths) → (out, h_n), which a backward with
    create_graph=True differentiates (`differentiable_backward`); without it such a backward's
    gradients are not differentiable."""
    # the backward pass and a trace read every step's gates; plain inference needs one step's
    differentiable = torch.is_grad_enabled() and any(
        tensor is not None and tensor.requires_grad for tensor in (x, h0, w_ih, b_ih, w_hh, b_hh))
    if torch.compiler.is_compiling():  # traced: the registered op, which torch.compile and torch.export keep whole
        out, h_n, r, z, n, _ = gru_scan_op(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse, reset == "after",
                                           record or differentiable)
        return out, h_n, (r, z, n) if record else None
    out, h_n, r, z, n = FusedGRUScan.apply(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, reverse, reset == "after",
                                           record, differentiable, reference)
    return out, h_n, (r, z, n) if record else None
