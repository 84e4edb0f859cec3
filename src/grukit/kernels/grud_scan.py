"""grukit's CPU path for GRU-D (`grud.GRUD`): the whole layer, forward and backward, as one
autograd Function whose backward is written out (no autograd graph of small ops).

Everything is T-major: x, m, δ (T, B, V) → gi (T, B, 3H), γ_h, out (T, B, H). With x_f = x where
m = 1 and 0 elsewhere (missing entries of x may hold anything, NaN included), per step t:

  1. compiled pass `_impute` over (t, b, v), the last observation carried in a (B, V) buffer:
         x_last_t = x_f,t if m_t = 1 else x_last_{t−1}   (x_last_{−1} = x̄)
         γ_x      = exp(−max(0, w_γx ⊙ δ_t + b_γx))       (≡ 1 "forward", ≡ 0 "mean")
         x̂_t      = m ⊙ x_f + (1 − m) ⊙ (γ_x ⊙ x_last + (1 − γ_x) ⊙ x̄)
     then u_t = [x̂; m; δ] (the fed parts) concatenated for all steps at once;
  2. gi = u [W_ih, V, W_dh]ᵀ: one matmul over all T·B rows (torch, MKL; b_ih is added in 4.'s
     loop, not broadcast into a (T·B, 3H) buffer first);
  3. γ_h = exp(−max(0, δ W_γhᵀ + b_γh)): one matmul and three in-place elementwise ops (torch);
  4. the recurrence, compiled (`_forward`), per step and batch row:
         ĥ  = γ_h[t] ⊙ h
         r  = σ((gi_r[t] + b_ir) + W_hr ĥ + b_hr)
         z  = σ((gi_z[t] + b_iz) + W_hz ĥ + b_hz)
         n  = tanh((gi_n[t] + b_in) + W_hn (r ⊙ ĥ) + b_hn)
         h  = (1 − z) ⊙ n + z ⊙ ĥ
     the per-step products on torch's BLAS (`blas.matmul_into`), batch rows split across threads
     as in `fused` (`rows`). At t ≥ length_b the state is left as it is and the output is 0, as in
     `recurrence.scan`.

Backward, the chain rule of the same steps in reverse:
  4. `_backward` (BPTT): ∂L/∂gi (T, B, 3H), ∂L/∂γ_h (T, B, H), ∂L/∂h0; then
     ∂W_hh = [∂gi_r, ∂gi_z]ᵀ ĥ ‖ ∂gi_nᵀ (r ⊙ ĥ) and ∂b_hh = ∂b_ih = Σ ∂gi (one matmul each, all rows);
  3. ∂pre_h = −∂γ_h ⊙ γ_h where pre_h > 0, else 0 (`_decay_backward`); ∂W_γh = ∂pre_hᵀ δ,
     ∂b_γh = Σ ∂pre_h, and ∂δ += ∂pre_h W_γh;
  2. ∂[W_ih, V, W_dh] = ∂giᵀ u and ∂u = ∂gi [W_ih, V, W_dh] (the x̂ columns only when no input needs
     a gradient);
  1. `_impute_backward`, t descending, the gradient of x_last carried in a (B, V) buffer c (its
     ∂x and ∂m only when x or m needs a gradient; γ_x's terms whenever it decays):
         ∂x_last_t = ∂x̂ ⊙ (1 − m) ⊙ γ_x + c
         ∂x_t      = m ⊙ ∂x̂ + ∂x_last_t and c ← 0 where m = 1;  ∂x_t = 0 and c ← ∂x_last_t where m = 0
         ∂m_t      = ∂x̂ ⊙ (x_f − γ_x ⊙ x_last − (1 − γ_x) ⊙ x̄) + ∂u_m
         ∂γ_x      = ∂x̂ ⊙ (1 − m) ⊙ (x_last − x̄),  ∂pre_x = −∂γ_x ⊙ γ_x where pre_x > 0, else 0
         ∂w_γx = Σ ∂pre_x ⊙ δ,  ∂b_γx = Σ ∂pre_x,  ∂δ_t = ∂pre_x ⊙ w_γx + ∂u_δ (+ step 3's term)

`grud.GRUD` imports this module only where `fused.refusal` is None (numba and BLAS load).
The slow reference is `GRUD(..., backend="reference")`: torch ops for the decays, imputation and
projections and the Python loop over `cells.gru_step`; tests hold the two equal in float64,
values and every gradient (inputs, h0, parameters).

The recurrence's compiled loops take their arrays in small bundles (`Steps`, `RecurrentWeights`,
`Biases`, `GRUDGates`, `Incoming`, `StepGradients`, `Rows`), NamedTuples here passed as plain
tuples and unpacked in the loop under the same field names, as in `gru_scan`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from grukit.errors import InputError
from grukit.kernels.activations import njit, sigmoid, tanh
from grukit.kernels.blas import check_blas_sizes, gemm_for, gemm_threads, matmul_into, small_product
from grukit.kernels.gru_scan import backward_operands, candidate_gradient
from grukit.kernels.rows import kernel_path, row_parts, run_rows


@njit(cache=True, nogil=True, error_model="numpy")
def _impute(x, m, gamma_x, mean, x_hat, x_last, zero, one):
    """Step 1 of the module docstring with γ_x given. Every array (T, B·V) (a T-major (T, B, V)
    flattened per step), mean x̄ tiled to (B·V,); zero, one scalars of the arrays' dtype. Writes x̂
    and x_last. Values are loaded before they are selected, so the selects compile branch-free."""
    steps, width = x.shape
    last = mean.copy()  # x_last_{−1} = x̄
    for t in range(steps):
        x_t, m_t, g_t, hat_t, last_t = x[t], m[t], gamma_x[t], x_hat[t], x_last[t]
        for i in range(width):
            m_i, x_i, carried = m_t[i], x_t[i], last[i]
            observed = m_i != zero
            x_f = x_i if observed else zero
            carried = x_i if observed else carried
            last[i] = carried
            last_t[i] = carried
            g = g_t[i]
            hat_t[i] = m_i * x_f + (one - m_i) * (g * carried + (one - g) * mean[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _impute_backward(d_hat, x, m, gamma_x, x_last, mean, inputs, decay, pre_x, delta, w_x, d_gamma_x, d_x, d_m,
                     d_delta, sum_w, sum_b, zero, one):
    """Step 1 of the backward in the module docstring. Arrays (T, B·V) as in `_impute`; d_hat = ∂x̂.
    With inputs, writes d_x, and d_m's part through x̂ (without, d_x and d_m may be empty: neither
    is read or written). With decay (γ_x = exp(−max(0, pre_x))) also adds ∂pre_x ⊙ δ and ∂pre_x
    into sum_w, sum_b ((B·V,) float64, summed over b by the caller) and writes d_delta = ∂pre_x ⊙
    w_γx (w_x tiled to (B·V,)); d_gamma_x an incoming ∂L/∂γ_x (size 0: none)."""
    steps, width = x.shape
    carry = np.zeros(width, dtype=x.dtype)  # ∂L/∂x_last_t from later steps
    incoming = d_gamma_x.size > 0
    for t in range(steps - 1, -1, -1):
        dh_t, x_t, m_t, g_t, last_t = d_hat[t], x[t], m[t], gamma_x[t], x_last[t]
        if inputs:
            dx_t, dm_t = d_x[t], d_m[t]
            for i in range(width):
                m_i, x_i, g, carried, dh, c = m_t[i], x_t[i], g_t[i], last_t[i], dh_t[i], carry[i]
                observed = m_i != zero
                x_f = x_i if observed else zero
                d_last = dh * (one - m_i) * g + c
                d_x_i = dh * m_i + d_last
                dx_t[i] = d_x_i if observed else zero
                carry[i] = zero if observed else d_last
                dm_t[i] = dh * (x_f - (g * carried + (one - g) * mean[i]))
        if decay:
            pre_t, delta_t, dd_t = pre_x[t], delta[t], d_delta[t]
            for i in range(width):
                d_g = d_hat[t, i] * (one - m_t[i]) * (last_t[i] - mean[i])
                if incoming:
                    d_g += d_gamma_x[t, i]
                d_pre = -(d_g * g_t[i])
                d_pre = d_pre if pre_t[i] > zero else zero
                sum_w[i] += d_pre * delta_t[i]
                sum_b[i] += d_pre
                dd_t[i] = d_pre * w_x[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _decay_backward(d_gamma, gamma, pre, zero):
    """In place, every entry: ∂γ → ∂pre = −∂γ ⊙ γ where pre > 0, else 0 (γ = exp(−max(0, pre)))."""
    flat_d, flat_g, flat_p = d_gamma.reshape(-1), gamma.reshape(-1), pre.reshape(-1)
    for i in range(flat_d.size):
        d_pre = -(flat_d[i] * flat_g[i])
        flat_d[i] = d_pre if flat_p[i] > zero else zero


class Steps(NamedTuple):
    """What the recurrence reads at every step, forward and backward."""

    gamma: np.ndarray  # γ_h (T, B, H)
    lengths: np.ndarray  # (B,) int64


class RecurrentWeights(NamedTuple):
    """W_hh's blocks: transposed for the forward (H, 2H), (H, H); as they are for the backward
    (2H, H), (H, H)."""

    w_rz: np.ndarray
    w_n: np.ndarray


class Biases(NamedTuple):
    b_ih: np.ndarray  # (3H,)
    b_hh: np.ndarray  # (3H,)


class GRUDGates(NamedTuple):
    """What the forward writes, each (T, B, H), and the backward reads."""

    out: np.ndarray
    h_hat: np.ndarray  # ĥ = γ_h ⊙ h_{t−1}
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray


class Incoming(NamedTuple):
    d_out: np.ndarray  # ∂L/∂out (T, B, H)
    dh: np.ndarray  # ∂L/∂h_T (B, H), turned into ∂L/∂h0 in place


class StepGradients(NamedTuple):
    """What the backward writes, zero at padded steps."""

    d_gi: np.ndarray  # (T, B, 3H)
    d_gamma: np.ndarray  # ∂L/∂γ_h (T, B, H)
    rh: np.ndarray  # r ⊙ ĥ (T, B, H), W_hn's input (for its gradient)


class Rows(NamedTuple):
    first: int
    last: int


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(gemm, gi, steps_in, weights, biases, h, gates, rows_in):
    """Steps 0 … T − 1 for rows first … last − 1. gi (T, B, 3H) the input products without b_ih
    (added here: gi + b_ih, as the reference's F.linear); steps_in `Steps`; weights
    `RecurrentWeights` (transposed); biases `Biases`; h (B, H) the state, updated in place; gates
    `GRUDGates`, written (padded steps: out and ĥ 0, r, z, n NaN); rows_in `Rows`; each bundle a
    plain tuple."""
    gamma, lengths = steps_in
    w_rz_t, w_n_t = weights
    b_ih, b_hh = biases
    out, h_hat_all, r_all, z_all, n_all = gates
    first, last = rows_in
    steps = gi.shape[0]
    hidden = h.shape[1]
    rows = last - first
    dtype = out.dtype
    h_hat = np.empty((rows, hidden), dtype=dtype)
    rh = np.empty((rows, hidden), dtype=dtype)
    g_rz = np.empty((rows, 2 * hidden), dtype=dtype)
    g_n = np.empty((rows, hidden), dtype=dtype)
    b_r, b_z, b_n = b_hh[:hidden], b_hh[hidden : 2 * hidden], b_hh[2 * hidden :]
    bi_r, bi_z, bi_n = b_ih[:hidden], b_ih[hidden : 2 * hidden], b_ih[2 * hidden :]
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
                r[j] = sigmoid((gi_r[j] + bi_r[j]) + g_rz[i, j] + b_r[j])
            for j in range(hidden):
                z[j] = sigmoid((gi_z[j] + bi_z[j]) + g_rz[i, hidden + j] + b_z[j])
            for j in range(hidden):
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
                n[j] = tanh((gi_n[j] + bi_n[j]) + g_n[i, j] + b_n[j])
            for j in range(hidden):
                h_b[j] = n[j] + z[j] * (hat[j] - n[j])  # (1 − z) n + z ĥ
            y[:] = h_b
            keep_hat[:] = hat


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(gemm, steps_in, weights, h0, gates, incoming, grads, rows_in):
    """BPTT of `_forward` for rows first … last − 1. steps_in `Steps`; weights `RecurrentWeights`
    (W_hh's blocks as they are); h0 (B, H); gates the forward's `GRUDGates`; incoming `Incoming`
    (dh updated in place to ∂L/∂h0); grads `StepGradients`, written; rows_in `Rows`; each bundle a
    plain tuple."""
    gamma, lengths = steps_in
    w_rz, w_n = weights
    out, h_hat_all, r_all, z_all, n_all = gates
    d_out, dh = incoming
    d_gi, d_gamma, rh_all = grads
    first, last = rows_in
    steps = out.shape[0]
    hidden = dh.shape[1]
    rows = last - first
    dtype = out.dtype
    d_n = np.zeros((rows, hidden), dtype=dtype)  # ∂L/∂(n's pre-activation)
    d_rz = np.zeros((rows, 2 * hidden), dtype=dtype)  # ∂L/∂(r's, z's pre-activations)
    d_rh = np.empty((rows, hidden), dtype=dtype)  # ∂L/∂(r ⊙ ĥ)
    d_hat = np.empty((rows, hidden), dtype=dtype)  # ∂L/∂ĥ
    for t in range(steps - 1, -1, -1):
        candidate_gradient(dh, d_n, d_out, z_all, n_all, lengths, t, first, last)
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
            # one short loop per output array: each compiles to vector code (one long loop writing
            # seven arrays did not)
            for j in range(hidden):
                drz[j] = drh[j] * hat[j] * r[j] * (1.0 - r[j])  # ∂L/∂(r's pre-activation)
            for j in range(hidden):
                drz[hidden + j] = dh_b[j] * (hat[j] - n[j]) * z[j] * (1.0 - z[j])  # ∂L/∂(z's)
            dg[: 2 * hidden] = drz
            dg[2 * hidden :] = dn
            for j in range(hidden):
                rh_b[j] = r[j] * hat[j]
            for j in range(hidden):
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
            for j in range(hidden):
                dh_b[j] = hat_grad[j] * g[j]



class GRUDFused(torch.autograd.Function):
    """(x, m, δ (T, B, V), h0 (B, H), W_ih (3H, V), b_ih, W_hh (3H, H), b_hh, V (3H, V) or None,
    W_dh (3H, V) or None, w_γx, b_γx (V,) or None, W_γh (H, V), b_γh (H,) or None, x̄ (V,),
    lengths (B,) int64, mode) → out (T, B, H), h_n (B, H), r, z, n (T, B, H) (NaN at padded steps;
    not differentiable), γ_x (T, B, V), γ_h (T, B, H). The steps of the module docstring."""

    @staticmethod
    def forward(ctx, x, m, delta, h0, w_ih, b_ih, w_hh, b_hh, w_mh, w_dh, w_x, b_x, w_h, b_h, mean, lengths, mode):
        steps, batch, variables = x.shape
        hidden = w_hh.shape[1]
        dtype = x.dtype
        x_, m_, delta_ = x.detach().contiguous(), m.detach().contiguous(), delta.detach().contiguous()
        # 1. γ_x, then x_last and x̂
        if mode == "decay":
            pre_x = delta_ * w_x.detach()
            pre_x += b_x.detach()
            gamma_x = pre_x.clamp_min(0.0).neg_().exp_()
        else:
            pre_x, gamma_x = None, torch.full_like(x_, 1.0 if mode == "forward" else 0.0)
        mean_tiled = mean.detach().repeat(batch)
        x_hat, x_last = torch.empty_like(x_), torch.empty_like(x_)
        zero, one = _scalars(x_)
        _impute(*(_rows(t) for t in (x_, m_, gamma_x)), mean_tiled.numpy(), _rows(x_hat), _rows(x_last), zero, one)
        # 2. gi = u [W_ih, V, W_dh]ᵀ
        fed = [(x_hat, w_ih)] + [(m_, w_mh)] * (w_mh is not None) + [(delta_, w_dh)] * (w_dh is not None)
        features = torch.cat([u for u, _ in fed], 2) if len(fed) > 1 else x_hat
        w_u = torch.cat([w for _, w in fed], 1).detach() if len(fed) > 1 else w_ih.detach()  # (3H, K)
        gi = torch.mm(features.view(steps * batch, -1), w_u.t()).view(steps, batch, 3 * hidden)  # + b_ih in 4.
        # 3. γ_h
        if w_h is not None:
            pre_h = torch.addmm(b_h.detach(), delta_.view(steps * batch, variables), w_h.detach().t())
            gamma_h = pre_h.clamp_min(0.0).neg_().exp_().view(steps, batch, hidden)
        else:
            pre_h, gamma_h = None, torch.ones(steps, batch, hidden, dtype=dtype)
        # 4. the recurrence
        w_t = w_hh.detach().t()
        w_rz_t, w_n_t = w_t[:, : 2 * hidden].contiguous(), w_t[:, 2 * hidden :].contiguous()
        h = h0.detach().clone().contiguous()
        out, h_hat, r, z, n = (torch.empty(steps, batch, hidden, dtype=dtype) for _ in range(5))
        check_blas_sizes(batch_size=batch, gate_units=3 * hidden)
        path = kernel_path()
        gemm = gemm_for(path, out.numpy().dtype)
        small = small_product(batch, 2 * hidden, hidden)
        gi_np, h_np = gi.numpy(), h.numpy()
        steps_in = tuple(Steps(gamma_h.numpy(), lengths.numpy()))
        weights = tuple(RecurrentWeights(w_rz_t.numpy(), w_n_t.numpy()))
        biases = tuple(Biases(b_ih.detach().numpy(), b_hh.detach().numpy()))
        gates = tuple(GRUDGates(out.numpy(), h_hat.numpy(), r.numpy(), z.numpy(), n.numpy()))

        def rows(first: int, last: int) -> None:
            with gemm_threads(path, single=small):
                _forward(gemm, gi_np, steps_in, weights, biases, h_np, gates, tuple(Rows(first, last)))

        run_rows(rows, row_parts(batch, hidden))
        ctx.save_for_backward(x_, m_, delta_, h0, w_ih, w_hh, w_u, w_mh, w_dh, w_x, w_h, mean_tiled, features,
                              x_last, pre_x, gamma_x, pre_h, gamma_h, out, h_hat, r, z, n, lengths)
        ctx.mark_non_differentiable(r, z, n)
        ctx.set_materialize_grads(False)
        return out, h, r, z, n, gamma_x, gamma_h

    @staticmethod
    def backward(ctx, d_out, d_hn, _dr, _dz, _dn, d_gamma_x, d_gamma_h):
        if torch.is_grad_enabled():  # create_graph=True: these numbers are not on autograd's tape
            raise InputError("GRU-D's compiled backward gives gradients, not differentiable ones: for second "
                             "derivatives (create_graph=True) use GRUD(..., backend='reference')")
        (x, m, delta, h0, w_ih, w_hh, w_u, w_mh, w_dh, w_x, w_h, mean_tiled, features, x_last, pre_x, gamma_x, pre_h,
         gamma_h, out, h_hat, r, z, n, lengths) = ctx.saved_tensors
        steps, batch, hidden = out.shape
        variables = x.shape[2]
        rows_total = steps * batch
        dtype = out.dtype
        want_x, want_m, want_delta = ctx.needs_input_grad[:3]
        # 4. BPTT, then W_hh's and the biases' gradients
        d_out, dh, _, w_rz, w_n = backward_operands(d_out, d_hn, w_hh, out)
        d_gi = torch.empty(steps, batch, 3 * hidden, dtype=dtype)
        d_gamma, rh = torch.empty_like(out), torch.empty_like(out)
        check_blas_sizes(batch_size=batch, gate_units=3 * hidden)
        path = kernel_path()
        gemm = gemm_for(path, out.numpy().dtype)
        small = small_product(batch, 2 * hidden, hidden)
        steps_in = tuple(Steps(gamma_h.numpy(), lengths.numpy()))
        weights = tuple(RecurrentWeights(w_rz.numpy(), w_n.numpy()))
        h0_np = h0.detach().contiguous().numpy()
        gates = tuple(GRUDGates(out.numpy(), h_hat.numpy(), r.numpy(), z.numpy(), n.numpy()))
        incoming = tuple(Incoming(d_out.numpy(), dh.numpy()))
        grads = tuple(StepGradients(d_gi.numpy(), d_gamma.numpy(), rh.numpy()))

        def rows(first: int, last: int) -> None:
            with gemm_threads(path, single=small):
                _backward(gemm, steps_in, weights, h0_np, gates, incoming, grads, tuple(Rows(first, last)))

        run_rows(rows, row_parts(batch, hidden))
        flat_gi = d_gi.view(rows_total, 3 * hidden)
        d_w_hh = torch.cat([flat_gi[:, : 2 * hidden].t() @ h_hat.view(-1, hidden),
                            flat_gi[:, 2 * hidden :].t() @ rh.view(-1, hidden)])
        d_b = flat_gi.sum(0)
        zero, one = _scalars(x)
        # 3. the hidden decay
        d_w_h = d_b_h = None
        d_delta = torch.zeros_like(x) if want_delta else None
        if pre_h is not None:
            if d_gamma_h is not None:
                d_gamma += d_gamma_h
            _decay_backward(d_gamma.numpy(), gamma_h.numpy(), pre_h.numpy(), zero)
            flat_pre = d_gamma.view(rows_total, hidden)
            d_w_h, d_b_h = flat_pre.t() @ delta.view(rows_total, variables), flat_pre.sum(0)
            if want_delta:
                d_delta.view(rows_total, variables).addmm_(flat_pre, w_h.detach())
        # 2. the input projections
        d_w_u = flat_gi.t() @ features.view(rows_total, -1)
        blocks = list(d_w_u.split(variables, 1))  # ∂W_ih, then ∂V and ∂W_dh where fed
        d_w_ih = blocks.pop(0)
        d_w_mh = blocks.pop(0) if w_mh is not None else None
        d_w_dh = blocks.pop(0) if w_dh is not None else None
        # 1. imputation and γ_x
        d_x = d_m = d_w_x = d_b_x = None
        decay = pre_x is not None
        if want_x or want_m or decay:
            d_hat = flat_gi @ w_ih.detach()  # ∂x̂ (T·B, V)
            inputs = want_x or want_m  # else only γ_x's parameters (and ∂δ) need ∂x̂
            d_x, d_m = (torch.empty_like(x), torch.empty_like(x)) if inputs else (x.new_empty(0, 0),) * 2
            sums = torch.zeros(2, batch * variables, dtype=torch.float64)
            w_tiled = w_x.detach().repeat(batch) if decay else torch.empty(0, dtype=dtype)
            incoming = d_gamma_x.contiguous() if d_gamma_x is not None and decay else torch.empty(0, 0, dtype=dtype)
            d_delta_x = torch.empty_like(x) if decay else torch.empty(0, 0, dtype=dtype)
            _impute_backward(_rows(d_hat.view(steps, batch, variables)), _rows(x), _rows(m), _rows(gamma_x),
                             _rows(x_last), mean_tiled.numpy(), inputs, decay, _rows(pre_x if decay else x),
                             _rows(delta), w_tiled.numpy(), _rows(incoming), _rows(d_x), _rows(d_m), _rows(d_delta_x),
                             sums[0].numpy(), sums[1].numpy(), zero, one)
            if decay:
                d_w_x, d_b_x = sums.view(2, batch, variables).sum(1).to(dtype).unbind(0)
                if want_delta:
                    d_delta += d_delta_x
        if want_m and w_mh is not None:
            d_m.view(rows_total, variables).addmm_(flat_gi, w_mh.detach())
        if want_delta and w_dh is not None:
            d_delta.view(rows_total, variables).addmm_(flat_gi, w_dh.detach())
        return (d_x if want_x else None, d_m if want_m else None, d_delta, dh, d_w_ih, d_b, d_w_hh, d_b.clone(),
                d_w_mh, d_w_dh, d_w_x, d_b_x, d_w_h, d_b_h, None, None, None)


def _rows(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous (T, B, …) tensor's array as (T, B·…), the layout of `_impute` (a 2-D one as it is)."""
    array = tensor.numpy()
    return array if array.ndim == 2 else array.reshape(tensor.shape[0], -1)


def _scalars(tensor: torch.Tensor) -> tuple:
    """0 and 1 as scalars of the tensor's dtype (the compiled loops then compute in that dtype)."""
    kind = tensor.numpy().dtype.type
    return kind(0), kind(1)


def grud_fused(x, m, delta, h0, w_ih, b_ih, w_hh, b_hh, w_mh, w_dh, w_x, b_x, w_h, b_h, mean, lengths, mode):
    """out (T, B, H), h_n (B, H), (r, z, n) each (T, B, H), γ_x (T, B, V), γ_h (T, B, H): GRU-D's layer
    as in the module docstring, for T-major x, m, δ (T, B, V); absent parameters None; lengths (B,)
    int64; mode GRUD's imputation: "decay", "forward" or "mean"."""
    out, h_n, r, z, n, gamma_x, gamma_h = GRUDFused.apply(x, m, delta, h0, w_ih, b_ih, w_hh, b_hh, w_mh, w_dh, w_x,
                                                          b_x, w_h, b_h, mean, lengths, mode)
    return out, h_n, (r, z, n), gamma_x, gamma_h
