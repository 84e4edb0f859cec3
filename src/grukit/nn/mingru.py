"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates do not read h.

Per layer ℓ (input x: the layer below's output; the first layer's, the input):

    [k; c] = W_ih x + b_ih              (2H, I): rows for the update gate, then the candidate
    u_t = σ(k_t),   h̃_t = g(c_t),   g(a) = a + ½ (a ≥ 0), σ(a) (a < 0)
    h_t = (1 − u_t) ⊙ h_{t−1} + u_t ⊙ h̃_t

Departures from the GRU: no reset gate, no W_hh (so 2H(I + 1) parameters a layer against the GRU's
3H(I + H) + 6H), and g in place of tanh (positive, unbounded above), which the log-space scan
needs. The recurrence is linear in h, so training runs it as a scan (`kernels.mingru_scan`):

    mode="parallel"    the scan by `scan`: "compiled" (numba, CPU; the default there, "auto"),
                       "log" (Heinsen's log-space scan in torch ops; "auto" elsewhere)
    mode="sequential"  the step loop, the specification (and what streaming inference is)

Both modes compute the same function of the same state, h0 included: `hx` is the initial state
itself, zeros by default, of any sign (no h0 > 0 requirement: the log-space scan adds its term
exactly). Forward contract as grukit's GRU: input (T, B, I) / (B, T, I) with batch_first, or
unbatched (T, I); hx (L, B, H); lengths (B,); returns (output, h_n[, MinGRUTrace]). One direction.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from grukit.errors import InputError, check_positive
from grukit.io.serialization import save
from grukit.kernels.mingru_scan import candidate, compiled_refusal, mingru_scan
from grukit.nn.base import uniform_reset_
from grukit.nn.trace import MinGRUTrace
from grukit.nn.validation import check_state, sequence_batch, transformed

Mode = Literal["parallel", "sequential"]
ScanChoice = Literal["auto", "log", "compiled"]


class MinGRU(nn.Module):
    """Stacked minGRU layers with grukit's forward contract (module docstring)."""

    trace_class = MinGRUTrace

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, mode: Mode = "parallel", scan: ScanChoice = "auto") -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if bidirectional:
            raise InputError("MinGRU runs one direction (the paper's); bidirectional=True is not available")
        if mode not in ("parallel", "sequential"):
            raise InputError(f"mode must be 'parallel' or 'sequential', got {mode!r}")
        if scan not in ("auto", "log", "compiled"):
            raise InputError(f"scan must be 'auto', 'log' or 'compiled', got {scan!r}")
        if not 0.0 <= dropout <= 1.0:
            raise InputError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.mode, self.scan = False, mode, scan
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(2 * hidden_size, width, **factory)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(2 * hidden_size, **factory))
                                    if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(−1/√H, 1/√H), as grukit's GRU."""
        uniform_reset_(self, self.hidden_size)

    @property
    def config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "bias": self.bias, "batch_first": self.batch_first, "dropout": self.dropout, "mode": self.mode,
                "scan": self.scan}

    @classmethod
    def from_config(cls, config: dict, *, device=None, dtype=None):
        """Build from `config` (the constructor's arguments, as `module.config` holds them)."""
        return cls(**config, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, mode={self.mode!r}"

    def resolved_scan(self, x: torch.Tensor) -> str:
        """The scan this call runs: "sequential" in that mode, else "compiled" or "log" ("auto":
        compiled where it can run eagerly, log elsewhere and under compile, export and torch.func)."""
        if self.mode == "sequential":
            return "sequential"
        if self.scan == "compiled" and transformed():
            raise InputError("the compiled minGRU scan runs eagerly, not under torch.compile, torch.export or a "
                             "torch.func transform: use scan='auto' or 'log' there")
        if self.scan != "auto":
            return self.scan
        return "compiled" if compiled_refusal(x) is None and not transformed() else "log"

    def forward(self, input, hx=None, *, lengths=None, return_gates: bool = False):
        if isinstance(input, PackedSequence):
            raise InputError("MinGRU takes padded input with lengths=, not a PackedSequence")
        weight = self.weight_ih_l0
        batch = sequence_batch(input, input_size=self.input_size, batch_first=self.batch_first, lengths=lengths,
                               dtype=weight.dtype, device=weight.device)
        shape = (self.num_layers, batch.batch_size, self.hidden_size)
        if hx is None:
            state = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        else:
            check_state(hx, name="hx", expected_shape=shape[::2] if batch.unbatched else shape, dtype=weight.dtype,
                        device=weight.device)
            state = hx.unsqueeze(1) if batch.unbatched else hx
        x, finals, updates, candidates = batch.data, [], [], []
        scan = self.resolved_scan(x)
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            k, c = F.linear(x, getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_ih_l{layer}")).chunk(2, -1)
            x, h_n = mingru_scan(k, c, state[layer], batch.lengths, scan=scan)
            finals.append(h_n)
            if return_gates:
                updates.append(torch.sigmoid(k).transpose(0, 1))
                candidates.append(candidate(c).transpose(0, 1))
        h_n = torch.stack(finals)
        output = x
        trace = None
        if return_gates:
            trace = MinGRUTrace(torch.stack(updates), torch.stack(candidates))  # (L, B, T, H)
            if batch.lengths is not None:
                pad = ~batch.valid_mask().t()[None, :, :, None]  # (1, B, T, 1)
                trace = trace.map(lambda gate: gate.masked_fill(pad, float("nan")))
        if batch.unbatched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            trace = None if trace is None else trace.map(lambda gate: gate.squeeze(1))
        elif batch.batch_first:
            output = output.transpose(0, 1)
        return (output, h_n, trace) if return_gates else (output, h_n)

    def save(self, directory, *, overwrite: bool = False):
        """Write `model.safetensors` and `config.json` into `directory`, atomically."""
        return save(self, directory, overwrite=overwrite)
