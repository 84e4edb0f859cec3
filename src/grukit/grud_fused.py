"""grukit's CPU kernel for GRU-D's recurrence: forward and BPTT as compiled loops.

GRU-D (`grud.GRUD`) is a reset-before GRU step applied to a decayed state. Everything that does
not depend on the state — decays γ_x and γ_h, imputation, gi = W_ih x̂ + V m + (W_dh δ) + b_ih —
is computed by torch for all steps at once (autograd differentiates it). What remains is this
recurrence, run here, per step t and batch row:

    ĥ  = γ_h[t] ⊙ h                           the decayed state
    r  = σ(gi_r[t] + W_hr ĥ + b_hr)
    z  = σ(gi_z[t] + W_hz ĥ + b_hz)
    n  = tanh(gi_n[t] + W_hn (r ⊙ ĥ) + b_hn)
    h  = (1 − z) ⊙ n + z ⊙ ĥ

and its backward, which returns ∂L/∂gi (T, B, 3H), ∂L/∂γ_h (T, B, H), ∂L/∂h0 and the W_hh, b_hh
gradients (one matmul each over all steps' rows, after the loop). The per-step products run on
torch's BLAS (`blas.matmul_into`); batch rows are split across threads as in `fused` (`rows`).
At t ≥ length_b the state is left as it is and the output is 0, as in `recurrence.scan`.

`grud.GRUD` imports this module only where `fused.refusal` is None (numba and BLAS load).
The slow reference is `GRUD(..., backend="reference")`, the Python loop over `cells.gru_step`;
tests hold the two equal in float64, values and every gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from grukit.blas import gemm_for, gemm_threads, matmul_into, small_product
from grukit.fused import _candidate_gradient, _sigmoid, _tanh, backward_operands, njit
from grukit.rows import row_parts, run_rows


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(gemm, gi, gamma, h, w_rz_t, w_n_t, b_hh, lengths, out, h_hat_all, r_all, z_all, n_all, first, last):
    """Steps 0 … T − 1 for rows first … last − 1. gi (T, B, 3H); gamma (T, B, H); h (B, H) the
    state, updated in place; w_rz_t (H, 2H), w_n_t (H, H) the blocks of W_hhᵀ; b_hh (3H,);
    lengths (B,). Writes out, ĥ, r, z, n (T, B, H) (padded steps: out and ĥ 0, r, z, n NaN)."""
    steps = gi.shape[0]
    hidden = h.shape[1]
    rows = last - first
    dtype = out.dtype
    h_hat = np.empty((rows, hidden), dtype=dtype)
    rh = np.empty((rows, hidden), dtype=dtype)
    g_rz = np.empty((rows, 2 * hidden), dtype=dtype)
    g_n = np.empty((rows, hidden), dtype=dtype)
    b_r, b_z, b_n = b_hh[:hidden], b_hh[hidden : 2 * hidden], b_hh[2 * hidden :]
    for t in range(steps):
        for b in range(first, last):
            i = b - first
            g, h_b, hat = gamma[t, b], h[b], h_hat[i]
            for j in range(hidden):
                hat[j] = g[j] * h_b[j]
        matmul_into(gemm, h_hat, w_rz_t, g_rz, 0.0)  # [W_hr; W_hz] ĥ
        for b in range(first, last):
            i = b - first
            r, z, hat, rh_b = r_all[t, b], z_all[t, b], h_hat[i], rh[i]
            gi_r, gi_z = gi[t, b, :hidden], gi[t, b, hidden : 2 * hidden]
            for j in range(hidden):
                r[j] = _sigmoid(gi_r[j] + g_rz[i, j] + b_r[j])
                z[j] = _sigmoid(gi_z[j] + g_rz[i, hidden + j] + b_z[j])
                rh_b[j] = r[j] * hat[j]
        matmul_into(gemm, rh, w_n_t, g_n, 0.0)  # W_hn (r ⊙ ĥ)
        for b in range(first, last):
            i = b - first
            r, z, n, y, h_b, hat, keep_hat = r_all[t, b], z_all[t, b], n_all[t, b], out[t, b], h[b], h_hat[i], \
                h_hat_all[t, b]
            if t >= lengths[b]:  # past this sequence's end: state kept, output 0, no gates
                y[:] = 0.0
                r[:] = np.nan
                z[:] = np.nan
                n[:] = np.nan
                keep_hat[:] = 0.0  # read only by the W_hh gradient, where this step adds 0
                continue
            gi_n = gi[t, b, 2 * hidden :]
            for j in range(hidden):
                n[j] = _tanh(gi_n[j] + g_n[i, j] + b_n[j])
                h_b[j] = n[j] + z[j] * (hat[j] - n[j])  # (1 − z) n + z ĥ
                y[j] = h_b[j]
                keep_hat[j] = hat[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(gemm, d_out, dh, h0, out, gamma, h_hat_all, r_all, z_all, n_all, w_rz, w_n, lengths, d_gi, d_gamma,
              rh_all, first, last):
    """BPTT of `_forward` for rows first … last − 1. dh (B, H) = ∂L/∂h_T, updated in place to
    ∂L/∂h0. w_rz (2H, H), w_n (H, H) the blocks of W_hh. Writes d_gi (T, B, 3H), d_gamma (T, B, H)
    and rh_all (T, B, H) = r ⊙ ĥ (W_hn's input, for its gradient); zero at padded steps."""
    steps = out.shape[0]
    hidden = dh.shape[1]
    rows = last - first
    dtype = out.dtype
    d_n = np.zeros((rows, hidden), dtype=dtype)  # ∂L/∂(n's pre-activation)
    d_rz = np.zeros((rows, 2 * hidden), dtype=dtype)  # ∂L/∂(r's, z's pre-activations)
    d_rh = np.empty((rows, hidden), dtype=dtype)  # ∂L/∂(r ⊙ ĥ)
    d_hat = np.empty((rows, hidden), dtype=dtype)  # ∂L/∂ĥ
    for t in range(steps - 1, -1, -1):
        _candidate_gradient(dh, d_n, d_out, z_all, n_all, lengths, t, first, last)
        matmul_into(gemm, d_n, w_n, d_rh, 0.0)  # W_hnᵀ-product: ∂L/∂(r ⊙ ĥ)
        for b in range(first, last):
            i = b - first
            dg, dgam, rh_b = d_gi[t, b], d_gamma[t, b], rh_all[t, b]
            drz, hat_grad = d_rz[i], d_hat[i]
            if t >= lengths[b]:
                dg[:] = 0.0
                dgam[:] = 0.0
                rh_b[:] = 0.0
                drz[:] = 0.0
                hat_grad[:] = 0.0
                continue
            dh_b, dn, drh, r, z, n, hat = dh[b], d_n[i], d_rh[i], r_all[t, b], z_all[t, b], n_all[t, b], \
                h_hat_all[t, b]
            for j in range(hidden):
                d_r = drh[j] * hat[j] * r[j] * (1.0 - r[j])
                d_z = dh_b[j] * (hat[j] - n[j]) * z[j] * (1.0 - z[j])
                dg[j] = d_r
                dg[hidden + j] = d_z
                dg[2 * hidden + j] = dn[j]
                drz[j] = d_r
                drz[hidden + j] = d_z
                rh_b[j] = r[j] * hat[j]
                hat_grad[j] = dh_b[j] * z[j] + drh[j] * r[j]  # through z ⊙ ĥ and through r ⊙ ĥ
        matmul_into(gemm, d_rz, w_rz, d_hat, 1.0)  # + [W_hr; W_hz]ᵀ-product
        for b in range(first, last):
            i = b - first
            if t >= lengths[b]:
                continue
            dh_b, dgam, g, hat_grad = dh[b], d_gamma[t, b], gamma[t, b], d_hat[i]
            prev = out[t - 1, b] if t > 0 else h0[b]  # the state before step t (t − 1 < length)
            for j in range(hidden):
                dgam[j] = hat_grad[j] * prev[j]  # ĥ = γ ⊙ h_{t−1}
                dh_b[j] = hat_grad[j] * g[j]


class GRUDScan(torch.autograd.Function):
    """(gi (T, B, 3H), γ_h (T, B, H), h0 (B, H), W_hh (3H, H), b_hh (3H,), lengths (B,)) →
    out (T, B, H), h_n (B, H), and r, z, n (T, B, H) (NaN at padded steps; not differentiable)."""

    @staticmethod
    def forward(ctx, gi, gamma, h0, w_hh, b_hh, lengths):
        steps, batch, three_h = gi.shape
        hidden = three_h // 3
        dtype = gi.dtype
        w_t = w_hh.detach().t()
        w_rz_t, w_n_t = w_t[:, : 2 * hidden].contiguous(), w_t[:, 2 * hidden :].contiguous()
        gi_, gamma_ = gi.detach().contiguous(), gamma.detach().contiguous()
        h = h0.detach().clone().contiguous()
        out, h_hat, r, z, n = (torch.empty(steps, batch, hidden, dtype=dtype) for _ in range(5))
        gemm = gemm_for(out.numpy().dtype)
        small = small_product(batch, 2 * hidden, hidden)
        arrays = (gi_.numpy(), gamma_.numpy(), h.numpy(), w_rz_t.numpy(), w_n_t.numpy(), b_hh.detach().numpy(),
                  lengths.numpy(), out.numpy(), h_hat.numpy(), r.numpy(), z.numpy(), n.numpy())

        def rows(first: int, last: int) -> None:
            with gemm_threads(single=small):
                _forward(gemm, *arrays, first, last)

        run_rows(rows, row_parts(batch, hidden))
        ctx.save_for_backward(h0, w_hh, gamma_, out, h_hat, r, z, n, lengths)
        ctx.mark_non_differentiable(r, z, n)
        ctx.set_materialize_grads(False)
        return out, h, r, z, n

    @staticmethod
    def backward(ctx, d_out, d_hn, _dr, _dz, _dn):
        h0, w_hh, gamma, out, h_hat, r, z, n, lengths = ctx.saved_tensors
        steps, batch, hidden = out.shape
        dtype = out.dtype
        d_out, dh, _, w_rz, w_n = backward_operands(d_out, d_hn, w_hh, out)
        d_gi = torch.empty(steps, batch, 3 * hidden, dtype=dtype)
        d_gamma, rh = torch.empty_like(out), torch.empty_like(out)
        gemm = gemm_for(out.numpy().dtype)
        small = small_product(batch, 2 * hidden, hidden)
        arrays = (d_out.numpy(), dh.numpy(), h0.detach().contiguous().numpy(), out.numpy(), gamma.numpy(),
                  h_hat.numpy(), r.numpy(), z.numpy(), n.numpy(), w_rz.numpy(), w_n.numpy(), lengths.numpy(),
                  d_gi.numpy(), d_gamma.numpy(), rh.numpy())

        def rows(first: int, last: int) -> None:
            with gemm_threads(single=small):
                _backward(gemm, *arrays, first, last)

        run_rows(rows, row_parts(batch, hidden))
        # W_hh's gradient: its r, z rows read ĥ, its n rows r ⊙ ĥ (both 0 at padded steps)
        flat_gi = d_gi.view(-1, 3 * hidden)
        d_w_hh = torch.cat([flat_gi[:, : 2 * hidden].t() @ h_hat.view(-1, hidden),
                            flat_gi[:, 2 * hidden :].t() @ rh.view(-1, hidden)])
        d_b_hh = flat_gi.sum(0)
        return d_gi, d_gamma, dh, d_w_hh, d_b_hh, None


def grud_scan(gi, gamma, h0, w_hh, b_hh, lengths):
    """out (T, B, H), h_n (B, H), (r, z, n) each (T, B, H): the recurrence of the module docstring.
    gi (T, B, 3H) and gamma (T, B, H) as computed by torch; lengths (B,) int64."""
    out, h_n, r, z, n = GRUDScan.apply(gi, gamma, h0, w_hh, b_hh, lengths)
    return out, h_n, (r, z, n)
