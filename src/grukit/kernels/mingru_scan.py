"""minGRU's recurrence as a scan (Feng et al. 2024): three implementations of one function.

For one layer, from the pre-activations k = W_u x + b_u and c = W_h x + b_h (each (T, B, H)):

    u_t = σ(k_t),   h̃_t = g(c_t),   g(a) = a + ½ (a ≥ 0), σ(a) (a < 0)
    h_t = (1 − u_t) ⊙ h_{t−1} + u_t ⊙ h̃_t  =  a_t ⊙ h_{t−1} + b_t,   a_t = 1 − u_t,  b_t = u_t ⊙ h̃_t

a linear recurrence in h, so no step waits on a matrix product: the whole layer is a scan.
`mingru_scan(k, c, h0, lengths, scan=...)` returns out (T, B, H) — zeros past each sequence's
length, where the state is held — and h_n (B, H), by

    "sequential"  the readable step loop in torch ops: the specification
    "log"         Heinsen's parallel scan in log space (the paper's; torch ops, GPUs):
                  h_t = exp(a*_t) ⊙ h0 + exp(a*_t + logcumsumexp_{s≤t}(log b_s − a*_s)),
                  a*_t = Σ_{s≤t} log a_s. The initial state enters as its own term, so h0 may
                  have either sign (b_t > 0 always, g being positive): the two modes agree for
                  any h0, where implementations that fold h0 into the log-space sum need h0 > 0
    "compiled"    a numba loop over t, vectorised over B × H and fused with σ and g, forward and
                  backward (the backward a reverse scan: ∂h_t/∂h_{t−1} = a_t), CPU only; batch
                  rows split across threads as the GRU kernel's (`kernels.rows`). Compiled
                  with numpy's error model, as the GRU kernels are: a float division then
                  follows IEEE rules instead of testing for zero, which is what lets the
                  compiler vectorise σ's rational approximation over the hidden units

All three agree to float rounding (tested: float64 1e-10, float32 1e-5, gradients included).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from grukit.errors import InputError
from grukit.kernels.activations import NUMBA_ERROR, njit, sigmoid
from grukit.kernels.rows import row_parts, run_rows

Scan = Literal["sequential", "log", "compiled"]
SCANS = ("sequential", "log", "compiled")


def candidate(c: torch.Tensor) -> torch.Tensor:
    """g(c) = c + ½ for c ≥ 0, σ(c) below: continuous, positive, linear growth (the paper's g)."""
    return torch.where(c >= 0, c + 0.5, torch.sigmoid(c))


def log_candidate(c: torch.Tensor) -> torch.Tensor:
    """log g(c), computed without forming g: log(c + ½) for c ≥ 0, −softplus(−c) below."""
    return torch.where(c >= 0, torch.log(F.relu(c) + 0.5), -F.softplus(-c))


def mingru_scan(k, c, h0, lengths=None, *, scan: Scan = "sequential"):
    """(out (T, B, H), h_n (B, H)) of one layer from k, c (T, B, H), h0 (B, H) and lengths (B,)
    int64 or None (all T steps), by the chosen `scan` (module docstring)."""
    if scan not in SCANS:
        raise InputError(f"scan must be one of {', '.join(SCANS)}, got {scan!r}")
    if scan == "compiled":
        reason = compiled_refusal(k)
        if reason is not None:
            raise InputError(f"the compiled minGRU scan cannot run here: {reason}; use scan='log' or 'sequential'")
        steps, batch = k.shape[0], k.shape[1]
        lengths = torch.full((batch,), steps, dtype=torch.int64) if lengths is None else lengths.to("cpu", torch.int64)
        return CompiledMinGRUScan.apply(k.contiguous(), c.contiguous(), h0.contiguous(), lengths)
    valid = None if lengths is None else (torch.arange(k.shape[0], device=k.device)[:, None]
                                          < lengths.to(k.device)[None, :])[..., None]  # (T, B, 1)
    if scan == "sequential":
        return _sequential(k, c, h0, valid)
    return _log_space(k, c, h0, valid)


def compiled_refusal(x: torch.Tensor) -> str | None:
    """Why the compiled scan cannot run on x, or None."""
    if not x.is_cpu:
        return f"it runs on the CPU, the input is on {x.device}"
    if x.dtype not in (torch.float32, torch.float64):
        return f"it computes in float32 or float64, the input is {str(x.dtype).removeprefix('torch.')}"
    return NUMBA_ERROR


def _sequential(k, c, h0, valid):
    h, outputs = h0, []
    for t in range(k.shape[0]):
        u = torch.sigmoid(k[t])
        new = (1 - u) * h + u * candidate(c[t])
        if valid is not None:
            new = torch.where(valid[t], new, h)
            outputs.append(torch.where(valid[t], new, torch.zeros((), dtype=new.dtype, device=new.device)))
        else:
            outputs.append(new)
        h = new
    return torch.stack(outputs), h


def _log_space(k, c, h0, valid):
    log_a = -F.softplus(k)  # log(1 − σ(k))
    log_b = -F.softplus(-k) + log_candidate(c)  # log σ(k) + log g(c)
    if valid is not None:  # past a sequence's end: a = 1, b = 0, the state held
        log_a = torch.where(valid, log_a, torch.zeros((), dtype=k.dtype, device=k.device))
        log_b = torch.where(valid, log_b, torch.full((), torch.finfo(k.dtype).min / 4, dtype=k.dtype,
                                                     device=k.device))
    a_star = torch.cumsum(log_a, dim=0)  # (T, B, H)
    h = torch.exp(a_star) * h0 + torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0))
    out = h if valid is None else torch.where(valid, h, torch.zeros((), dtype=h.dtype, device=h.device))
    return out, h[-1]


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(k, c, h, lengths, out, first, last):
    """Rows first … last − 1: out[t] = h_t for t < lengths[b] (zeros after), h updated in place to h_n."""
    steps, _, hidden = k.shape
    zero, half = k.dtype.type(0), k.dtype.type(0.5)
    for t in range(steps):
        for b in range(first, last):
            if t >= lengths[b]:
                for i in range(hidden):
                    out[t, b, i] = zero
                continue
            for i in range(hidden):
                u = sigmoid(k[t, b, i])
                ci = c[t, b, i]
                g = ci + half if ci >= zero else sigmoid(ci)
                h[b, i] = h[b, i] + u * (g - h[b, i])
                out[t, b, i] = h[b, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(k, c, h0, out, lengths, d_out, d_h, d_k, d_c, first, last):
    """Rows first … last − 1 of the reverse scan: d_h enters as ∂L/∂h_n and leaves as ∂L/∂h0; d_k,
    d_c filled."""
    steps, _, hidden = k.shape
    zero, one, half = k.dtype.type(0), k.dtype.type(1), k.dtype.type(0.5)
    for t in range(steps - 1, -1, -1):
        for b in range(first, last):
            if t >= lengths[b]:
                for i in range(hidden):
                    d_k[t, b, i] = zero
                    d_c[t, b, i] = zero
                continue
            for i in range(hidden):
                grad = d_h[b, i] + d_out[t, b, i]
                u = sigmoid(k[t, b, i])
                ci = c[t, b, i]
                if ci >= zero:
                    g, g_prime = ci + half, one
                else:
                    g = sigmoid(ci)
                    g_prime = g * (one - g)
                previous = out[t - 1, b, i] if t > 0 else h0[b, i]
                d_k[t, b, i] = grad * (g - previous) * u * (one - u)
                d_c[t, b, i] = grad * u * g_prime
                d_h[b, i] = grad * (one - u)


def compiled_forward_into(k, c, h, lengths, out) -> None:
    """The compiled forward scan on tensors the caller owns (contiguous CPU, one float dtype; lengths
    int64): out (T, B, H) ← each step's state, h (B, H) updated in place from h0 to h_n; batch
    rows split across threads. No allocation: what `grukit bench --mingru` times as the scan itself."""
    arrays = (k.detach().numpy(), c.detach().numpy(), h.numpy(), lengths.numpy(), out.numpy())
    run_rows(lambda first, last: _forward(*arrays, first, last), row_parts(k.shape[1], k.shape[2]))


def compiled_backward_into(k, c, h0, out, lengths, d_out, d_h, d_k, d_c) -> None:
    """The compiled reverse scan on tensors the caller owns: from k, c, h0, out (the forward's
    states) and ∂L/∂out, d_h enters as ∂L/∂h_n and leaves as ∂L/∂h0; d_k and d_c (T, B, H) filled."""
    arrays = (k.detach().numpy(), c.detach().numpy(), _np(h0), out.detach().numpy(), lengths.numpy(), _np(d_out),
              d_h.numpy(), d_k.numpy(), d_c.numpy())
    run_rows(lambda first, last: _backward(*arrays, first, last), row_parts(k.shape[1], k.shape[2]))


class CompiledMinGRUScan(torch.autograd.Function):
    """(k, c (T, B, H), h0 (B, H), lengths (B,) int64) → out (T, B, H), h_n (B, H) by `_forward`;
    the backward by `_backward`, from k, c, h0 and out (each step's h) alone."""

    @staticmethod
    def forward(ctx, k, c, h0, lengths):
        h = h0.detach().clone().contiguous()
        out = torch.empty_like(k)
        compiled_forward_into(k, c, h, lengths, out)
        ctx.save_for_backward(k, c, h0, out, lengths)
        return out, h

    @staticmethod
    def backward(ctx, d_out, d_hn):
        if torch.is_grad_enabled():
            raise InputError("the compiled minGRU scan gives gradients, not differentiable ones: for second "
                             "derivatives use scan='log' or 'sequential'")
        k, c, h0, out, lengths = ctx.saved_tensors
        d_out = torch.zeros_like(out) if d_out is None else d_out.contiguous()
        d_h = torch.zeros_like(h0) if d_hn is None else d_hn.detach().clone().contiguous()
        d_k, d_c = torch.empty_like(k), torch.empty_like(c)
        compiled_backward_into(k, c, h0, out, lengths, d_out, d_h, d_k, d_c)
        return d_k, d_c, d_h, None


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()
