"""GRU-D (Che et al. 2018, Sci. Rep. 8:6085): a GRU for irregularly sampled, partially observed series.

For step t with values x_t, mask m_t (1 = observed), per-variable gaps δ_t (`data.irregular`),
last observations x_last_t and the empirical mean x̄ (a buffer, from training data):

    γ_x = exp(−max(0, w_γx ⊙ δ_t + b_γx))            input decay, diagonal (V,)
    γ_h = exp(−max(0, W_γh δ_t + b_γh))              hidden decay, (H, V)
    w_γx = |decay_x_weight|, W_γh = |decay_h_weight|  rates ≥ 0 (see `decay_rates`)
    x̂_t = m_t ⊙ x_t + (1 − m_t) ⊙ (γ_x ⊙ x_last_t + (1 − γ_x) ⊙ x̄)
    ĥ   = γ_h ⊙ h_{t−1}
    r   = σ(W_ir x̂ + V_r m + W_hr ĥ + b_r)
    z   = σ(W_iz x̂ + V_z m + W_hz ĥ + b_z)               z = 1 − u, u the paper's update gate
    n   = tanh(W_in x̂ + V_n m + W_hn (r ⊙ ĥ) + b_n)      the paper's h̃ (reset before the product)
    h_t = (1 − z) ⊙ n + z ⊙ ĥ                           the paper's (1 − u) ⊙ ĥ + u ⊙ h̃

Parameters keep torch.nn.GRU's layout (rows r, z, n; weight_ih (3H, V), weight_hh (3H, H),
bias_ih and bias_hh (3H), whose sum is the paper's single b), plus weight_mh (3H, V) for V m and
the decays. So with nothing missing and both decays off, GRU-D is `GRU(reset="before")` reading
[x; m] with input weights [W_ih, V] (tested).

Options, each a documented departure the literature uses (defaults are the paper's model):
  imputation="forward"  γ_x ≡ 1: a missing input is its last observation (GRU-Forward's)
  imputation="mean"     γ_x ≡ 0: a missing input is the empirical mean (GRU-Mean's)
  hidden_decay=False    γ_h ≡ 1
  feed_mask=False       no V m term (weight_mh absent)
  feed_gaps=True        δ as V more inputs beside x̂ (weight_dh (3H, V); GRU-Simple's [x̂; m; δ])
The paper's baselines are these options (`gru_mean`, `gru_forward`, `gru_simple`):
  GRU-Mean     imputation="mean",    no hidden decay, no mask
  GRU-Forward  imputation="forward", no hidden decay, no mask
  GRU-Simple   imputation="forward", no hidden decay, mask and gaps fed
Known implementations differ from the paper (PyPOTS feeds unit time steps and ĥ twice; the
authors' Keras code decays toward 0 and mixes with the undecayed h); grukit follows the equations
above. One layer, one direction: the model of the paper.

backend="auto" runs the whole layer as `grud_fused.GRUDFused` wherever numba works: imputation and
γ_x as one compiled pass, gi = [W_ih, V, W_dh] [x̂; m; δ] + b_ih and W_γh δ as one matmul each over
all steps, the recurrence (ĥ, gates, interpolation) as the compiled kernel, and a hand-written
backward of all of it. "reference" computes the decays, imputation and projections with the torch
ops of `decays` and `impute` (autograd differentiates them) and runs the Python loop over
`cells.gru_step`: the slow path the fused one is tested against; "fused" insists on the kernel.

Forward contract: model(values, hx=None, *, mask=None, times=None, gaps=None, lengths=None,
return_gates=False) with values (T, B, V) or (B, T, V) with batch_first; mask defaults to the
finite entries of values; gaps δ are computed from times (B, T) or given (same layout as values);
when neither is given, steps are one time unit apart. Returns (output (T, B, H), h_n (1, B, H)) and
with return_gates a GRUDTrace; steps past a sequence's length give zero output and leave h alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from grukit.errors import InputError, check_positive
from grukit.io.serialization import save
from grukit.nn.cells import gru_step
from grukit.nn.time_gaps import check_times, last_observed, time_gaps
from grukit.nn.validation import TRANSFORMED_REFUSAL, check_float_dtype, check_state, normalise_lengths, transformed
from grukit.registry import MODELS

Imputation = Literal["decay", "forward", "mean"]
IMPUTATIONS = ("decay", "forward", "mean")
DECAY_INIT = 0.01  # decay weights start in U(0, DECAY_INIT) per unit of δ (see reset_parameters)
Backend = Literal["auto", "reference", "fused"]
BACKENDS = ("auto", "reference", "fused")


@dataclass(frozen=True)
class GRUDTrace:
    """Every field (1, B, T, ·) with NaN at padded steps: the GRU gates (H) and the decays."""

    reset: torch.Tensor
    keep: torch.Tensor  # z; the paper's update gate u = 1 − z
    candidate: torch.Tensor
    input_decay: torch.Tensor  # γ_x (V)
    hidden_decay: torch.Tensor  # γ_h (H)

    @property
    def update(self) -> torch.Tensor:
        return 1 - self.keep


@dataclass(frozen=True)
class GRUDConfig:
    """GRUD's constructor arguments (what `grukit.save` records; the empirical mean is a buffer)."""

    input_size: int  # V, variables per step
    hidden_size: int  # H
    batch_first: bool = False  # (B, T, V) instead of (T, B, V)
    imputation: Imputation = "decay"  # decay toward x̄ (the paper's), forward, or mean
    hidden_decay: bool = True  # γ_h ⊙ h before each step
    feed_mask: bool = True  # V m in every gate
    feed_gaps: bool = False  # W_d δ in every gate (GRU-Simple)
    backend: Backend = "auto"  # auto, reference or fused


class GRUD(nn.Module):
    """GRU-D: γ_x, γ_h decays of the gaps δ, x̂ imputed toward x̄, ĥ = γ_h ⊙ h, then a reset-before
    GRU step on [x̂; m] (the equations, shapes and options are in the module docstring).

    values (T, B, V) or (B, T, V) with batch_first; mask (same), times (B, T) or gaps (like values);
    returns output (T, B, H) / (B, T, H) and h_n (1, B, H), and a GRUDTrace with return_gates.
    backend="fused" and "reference" never fall back: they refuse with an InputError that says why.
    """

    config_class = GRUDConfig

    def __init__(self, input_size: int, hidden_size: int, *, batch_first: bool = False,
                 imputation: Imputation = "decay", hidden_decay: bool = True, feed_mask: bool = True,
                 feed_gaps: bool = False, empirical_mean: torch.Tensor | None = None,
                 backend: Backend = "auto", device=None, dtype=None) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        if imputation not in IMPUTATIONS:
            raise InputError(f"imputation must be one of {IMPUTATIONS}, got {imputation!r}")
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.config = GRUDConfig(input_size, hidden_size, batch_first=batch_first, imputation=imputation,
                                 hidden_decay=hidden_decay, feed_mask=feed_mask, feed_gaps=feed_gaps, backend=backend)
        self.backend = backend
        self.input_size, self.hidden_size, self.batch_first = input_size, hidden_size, batch_first
        self.imputation, self.hidden_decay = imputation, hidden_decay
        self.feed_mask, self.feed_gaps = feed_mask, feed_gaps
        input_decay = imputation == "decay"
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **factory))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size, **factory))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size, **factory))
        self.weight_mh = nn.Parameter(torch.empty(3 * hidden_size, input_size, **factory)) if feed_mask else None
        self.weight_dh = nn.Parameter(torch.empty(3 * hidden_size, input_size, **factory)) if feed_gaps else None
        self.decay_x_weight = nn.Parameter(torch.empty(input_size, **factory)) if input_decay else None
        self.decay_x_bias = nn.Parameter(torch.empty(input_size, **factory)) if input_decay else None
        self.decay_h_weight = nn.Parameter(torch.empty(hidden_size, input_size, **factory)) if hidden_decay else None
        self.decay_h_bias = nn.Parameter(torch.empty(hidden_size, **factory)) if hidden_decay else None
        self.register_buffer("empirical_mean", torch.zeros(input_size, **factory))
        if empirical_mean is not None:
            self.set_empirical_mean(empirical_mean)
        self.reset_parameters()

    @classmethod
    def from_config(cls, config: GRUDConfig, *, device=None, dtype=None) -> GRUD:
        """Build from a config (as `module.config` holds it); the empirical mean starts at 0."""
        return cls(**asdict(config), device=device, dtype=dtype)

    def save(self, directory, *, overwrite: bool = False):
        """Write `model.safetensors` (the empirical mean included) and `config.json`, atomically."""
        return save(self, directory, overwrite=overwrite)

    def reset_parameters(self) -> None:
        """GRU weights U(−1/√H, 1/√H) as torch.nn.GRU's. Decay weights U(0, DECAY_INIT) per time unit
        and biases 0: γ starts near 1 (a state that remembers, inputs carried forward) and every
        decay has a gradient from the first step (a pre-activation ≤ 0 would have none: the relu).
        The paper gives no initialisation; U(0, 1/√H) would make γ_h small after gaps of a few time
        units, erasing the state (see the docs' results page for what it did on the clinical task)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, weight in self.named_parameters():
            if name.startswith("decay"):
                nn.init.uniform_(weight, 0.0, DECAY_INIT) if name.endswith("weight") else nn.init.zeros_(weight)
            else:
                nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, imputation={self.imputation!r}, "
                f"hidden_decay={self.hidden_decay}, feed_mask={self.feed_mask}, feed_gaps={self.feed_gaps}, "
                f"backend={self.backend!r}")

    def set_empirical_mean(self, mean: torch.Tensor) -> None:
        """x̄ (V,): the mean of each variable's observed values in the training data."""
        mean = torch.as_tensor(mean, dtype=self.empirical_mean.dtype)
        if mean.shape != (self.input_size,) or not torch.isfinite(mean).all():
            raise InputError(f"empirical_mean must be {self.input_size} finite values, got shape {tuple(mean.shape)}")
        self.empirical_mean.copy_(mean)

    def decay_rates(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(w_γx (V,), W_γh (H, V)): the absolute values of decay_x_weight and decay_h_weight (None
        where that decay is off). The paper calls γ = exp(−max(0, W δ + b)) a decay "monotonically
        decreasing in a reasonable range between 0 and 1", which holds only for W ≥ 0; a raw W is
        free to turn negative, and once W δ + b ≤ 0 at every gap the relu passes no gradient and the
        decay is dead for good (trained unconstrained, most decays died that way: see the docs'
        results page). Biases stay free: b < 0 keeps γ at 1 for a while, then decays (an onset)."""
        return (None if self.decay_x_weight is None else self.decay_x_weight.abs(),
                None if self.decay_h_weight is None else self.decay_h_weight.abs())

    def decays(self, gaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ_x (…, V), γ_h (…, H)) for gaps δ (…, V); constants for a decay that is off."""
        w_x, w_h = self.decay_rates()
        if self.imputation == "decay":
            gamma_x = torch.exp(-F.relu(gaps * w_x + self.decay_x_bias))
        else:  # forward: γ_x ≡ 1; mean: γ_x ≡ 0
            gamma_x = torch.full_like(gaps, 1.0 if self.imputation == "forward" else 0.0)
        gamma_h = (torch.ones(*gaps.shape[:-1], self.hidden_size, dtype=gaps.dtype, device=gaps.device)
                   if not self.hidden_decay else torch.exp(-F.relu(F.linear(gaps, w_h, self.decay_h_bias))))
        return gamma_x, gamma_h

    def impute(self, x: torch.Tensor, m: torch.Tensor, gamma_x: torch.Tensor) -> torch.Tensor:
        """x̂ = m ⊙ x + (1 − m) ⊙ (γ_x ⊙ x_last + (1 − γ_x) ⊙ x̄), all (B, T, V); missing entries of x
        may hold anything (NaN included)."""
        x_filled = torch.where(m.bool(), x, torch.zeros((), dtype=x.dtype))
        x_last = last_observed(x_filled, m, self.empirical_mean)
        return m * x_filled + (1 - m) * (gamma_x * x_last + (1 - gamma_x) * self.empirical_mean)

    def forward(self, values, hx=None, *, mask=None, times=None, gaps=None, lengths=None, return_gates: bool = False):
        x, m, delta, lengths = self._inputs(values, mask=mask, times=times, gaps=gaps, lengths=lengths)
        batch, steps = x.shape[0], x.shape[1]
        if hx is None:
            h = torch.zeros(batch, self.hidden_size, dtype=x.dtype, device=x.device)
        else:
            check_state(hx, name="hx", expected_shape=(1, batch, self.hidden_size), dtype=x.dtype, device=x.device)
            h = hx[0]
        valid = None if lengths is None else torch.arange(steps)[None, :] < lengths[:, None]
        if self._use_fused(x):
            output, h, gates, gamma_x, gamma_h = self._fused_layer(x, m, delta, h, lengths)
        else:
            gi, gamma_x, gamma_h = self._drive(x, m, delta)
            output, h, gates = self._reference_scan(gi, gamma_h, h, valid, record=return_gates)
        result_output = output if self.batch_first else output.transpose(0, 1)
        if not return_gates:
            return result_output, h[None]
        trace = self._trace(gates, gamma_x, gamma_h, valid)
        return result_output, h[None], trace

    def step_drive(self, values, *, mask=None, times=None, gaps=None, lengths=None):
        """What each step of the recurrence reads besides h, from the forward contract's inputs:
        gi_t = W_ih x̂_t + V m_t + W_dh δ_t + b_ih (B, T, 3H) and γ_h,t (B, T, H), batch-first. They
        depend on the data alone (x̂ carries the last observations), so the recurrence is the map
        h_t = recurrence_step(h_{t−1}, gi_t, γ_h,t): what the analyses differentiate (reference ops)."""
        x, m, delta, _ = self._inputs(values, mask=mask, times=times, gaps=gaps, lengths=lengths)
        gi, _, gamma_h = self._drive(x, m, delta)
        return gi, gamma_h

    def recurrence_step(self, h: torch.Tensor, gi_t: torch.Tensor, gamma_h_t: torch.Tensor):
        """One step on ĥ = γ_h ⊙ h: (h_t (B, H), the gates r, z, n) from h_{t−1} (B, H), gi_t (B, 3H)
        and γ_h,t (B, H); the reference path's step."""
        return gru_step(gi_t, gamma_h_t * h, self.weight_hh, self.bias_hh, reset="before")

    def _drive(self, x, m, delta):
        """gi (B, T, 3H) (all steps at once), γ_x (B, T, V), γ_h (B, T, H) from checked x, m, δ (B, T, V)."""
        gamma_x, gamma_h = self.decays(delta)
        x_hat = self.impute(x, m, gamma_x)
        gi = F.linear(x_hat, self.weight_ih, self.bias_ih)
        if self.feed_mask:
            gi = gi + F.linear(m, self.weight_mh)
        if self.feed_gaps:
            gi = gi + F.linear(delta, self.weight_dh)
        return gi, gamma_x, gamma_h

    def _use_fused(self, x: torch.Tensor) -> bool:
        """Whether this call runs `grud_fused` (backend "fused", or "auto" on the CPU where numba works)."""
        if self.backend == "reference":
            return False
        from grukit.kernels.gru_scan import refusal as fused_refusal

        refusal = TRANSFORMED_REFUSAL if transformed() else fused_refusal(x)
        if refusal is not None and self.backend == "fused":
            raise InputError(f"backend='fused' cannot run here: {refusal}")
        return refusal is None

    def _fused_layer(self, x, m, delta, h, lengths):
        """The whole layer as `grud_fused.GRUDFused` (imputation, decays, projections, recurrence and
        their hand-written backward) on T-major copies of x, m, δ (B, T, V). Returns output (B, T, H),
        h_n (B, H), the gates r, z, n and the decays γ_x, γ_h, each (B, T, ·) (views of T-major)."""
        from grukit.kernels.grud_scan import grud_fused

        batch, steps = x.shape[0], x.shape[1]
        scan_lengths = torch.full((batch,), steps, dtype=torch.int64) if lengths is None else lengths.cpu()
        x_tm, m_tm, delta_tm = (t.transpose(0, 1).contiguous() for t in (x, m, delta))
        w_x, w_h = self.decay_rates()
        out, h_n, gates, gamma_x, gamma_h = grud_fused(
            x_tm, m_tm, delta_tm, h.contiguous(), self.weight_ih, self.bias_ih, self.weight_hh, self.bias_hh,
            self.weight_mh, self.weight_dh, w_x, self.decay_x_bias, w_h, self.decay_h_bias, self.empirical_mean,
            scan_lengths, self.imputation)
        return (out.transpose(0, 1), h_n, tuple(g.transpose(0, 1) for g in gates), gamma_x.transpose(0, 1),
                gamma_h.transpose(0, 1))

    def _reference_scan(self, gi, gamma_h, h, valid, *, record: bool):
        """The slow reference: `cells.gru_step` on ĥ = γ_h ⊙ h, step by step. (B, T, H) output, h (B, H),
        and with record the gates r, z, n each (B, T, H) (else ())."""
        outputs, gates = [], []
        for t in range(gi.shape[1]):
            h_new, step_gates = self.recurrence_step(h, gi[:, t], gamma_h[:, t])
            if valid is not None:
                keep = valid[:, t, None].to(gi.device)
                h_new = torch.where(keep, h_new, h)
                outputs.append(torch.where(keep, h_new, torch.zeros((), dtype=gi.dtype)))
            else:
                outputs.append(h_new)
            h = h_new
            if record:
                gates.append(step_gates)
        recorded = tuple(torch.stack([g[k] for g in gates], 1) for k in range(3)) if record else ()
        return torch.stack(outputs, 1), h, recorded

    def _trace(self, gates, gamma_x, gamma_h, valid) -> GRUDTrace:
        """gates: r, z, n, each (B, T, H); the decays (B, T, ·)."""
        fields = [*gates, gamma_x, gamma_h]
        if valid is not None:
            fields = [torch.where(valid[..., None].to(f.device), f, torch.full((), float("nan"), dtype=f.dtype))
                      for f in fields]
        return GRUDTrace(*(f[None] for f in fields))

    def _inputs(self, values, *, mask, times, gaps, lengths):
        """Checked (values, mask, δ) as (B, T, V) and lengths (B,) or None."""
        if not isinstance(values, torch.Tensor) or values.dim() != 3 or values.shape[-1] != self.input_size:
            layout = "(B, T, V)" if self.batch_first else "(T, B, V)"
            raise InputError(f"values must be a {layout} tensor with V = {self.input_size}, got "
                             f"{tuple(getattr(values, 'shape', ())) or type(values).__name__}")
        check_float_dtype(values, name="values", expected=self.weight_ih.dtype)
        x = values if self.batch_first else values.transpose(0, 1)
        batch, steps = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = normalise_lengths(lengths, batch_size=batch, steps=steps)
        if mask is None:
            m = torch.isfinite(x).to(x.dtype)
        else:
            if not isinstance(mask, torch.Tensor) or mask.shape != values.shape:
                raise InputError(f"mask must have the shape of values {tuple(values.shape)}, got "
                                 f"{tuple(getattr(mask, 'shape', ())) or type(mask).__name__}")
            m = (mask if self.batch_first else mask.transpose(0, 1)).to(x.dtype)
            if not transformed() and not ((m == 0) | (m == 1)).all():
                raise InputError("mask must hold only 0 (missing) and 1 (observed)")
            observed_bad = (m == 1) & ~torch.isfinite(x)
            if not transformed() and observed_bad.any():
                b, t, v = (int(i) for i in observed_bad.nonzero()[0])
                raise InputError(f"values has a non-finite value at an observed entry (b={b}, t={t}, variable={v})")
        if gaps is not None and times is not None:
            raise InputError("pass either times= or gaps=, not both")
        if gaps is not None:
            if not isinstance(gaps, torch.Tensor) or gaps.shape != values.shape:
                raise InputError(f"gaps must have the shape of values {tuple(values.shape)}")
            delta = (gaps if self.batch_first else gaps.transpose(0, 1)).to(x.dtype)
            if not transformed() and (not torch.isfinite(delta).all() or (delta < 0).any()):
                raise InputError("gaps must be finite and ≥ 0")
        else:
            if times is None:
                stamps = torch.arange(steps, dtype=x.dtype, device=x.device).expand(batch, steps)
            else:
                stamps = times.to(x.dtype)
                if stamps.shape != (batch, steps):
                    raise InputError(f"times must be (B, T) = ({batch}, {steps}), got {tuple(stamps.shape)}")
                check_times(stamps, lengths=lengths)
            delta = time_gaps(m, stamps)
        if lengths is not None:  # padded steps may hold any times: their gaps are never read, and are 0
            valid = (torch.arange(steps)[None, :] < lengths[:, None]).to(x.device)
            delta = torch.where(valid[..., None], delta, torch.zeros((), dtype=x.dtype))
        return x, m, delta, lengths


def gru_mean(input_size: int, hidden_size: int, **kwargs) -> GRUD:
    """The paper's GRU-Mean baseline: missing inputs replaced by the empirical mean."""
    return GRUD(input_size, hidden_size, **MODELS["gru-mean"].options, **kwargs)


def gru_forward(input_size: int, hidden_size: int, **kwargs) -> GRUD:
    """The paper's GRU-Forward baseline: missing inputs carried forward from their last observation."""
    return GRUD(input_size, hidden_size, **MODELS["gru-forward"].options, **kwargs)


def gru_simple(input_size: int, hidden_size: int, **kwargs) -> GRUD:
    """The paper's GRU-Simple baseline: input [x̂ (carried forward); m; δ]."""
    return GRUD(input_size, hidden_size, **MODELS["gru-simple"].options, **kwargs)
