"""The gated recurrent unit: `GRUCell` for one step, `GRU` for stacked, bidirectional sequences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import _VF, nn

from grukit.errors import InputError, check_positive
from grukit.io.serialization import save
from grukit.nn.base import BACKENDS, Backend, RecurrentBase, RecurrentConfig
from grukit.nn.cells import Reset, check_reset, gru_step
from grukit.nn.trace import GRUTrace
from grukit.nn.validation import check_device, check_finite, check_float_dtype, check_state

# backend="auto" on the CPU uses the fused kernel (reset="after", no trace) up to these sizes: the
# whole grid `grukit bench` measures on 2 cores (B ≤ 256, H ≤ 512), where it was faster everywhere
# (ratios fused / torch.nn.GRU, float32, the README's grid, with batch rows split across threads):
#   training:  0.02–0.23 at B = 1; 0.1–0.75 at B = 32; 0.38–0.91 at B = 256 (0.91 at H = 512)
#   inference: 0.03–0.7 at B = 1; 0.15–0.73 at B = 32; 0.47–0.87 at B = 256
# Beyond the grid (B·H > 131072 or H > 512) nothing was measured: torch's op.
FUSED_MAX_UNITS_TRAIN = 131072
FUSED_MAX_HIDDEN_TRAIN = 512
FUSED_MAX_UNITS_INFERENCE = 131072
FUSED_MAX_HIDDEN_INFERENCE = 512
STEP_MAX_UNITS = 2048  # backend="auto": single steps without autograd use the compiled cell up to B·H


@dataclass(frozen=True)
class GRUConfig(RecurrentConfig):
    """torch.nn.GRU's arguments plus where the reset gate acts."""

    reset: Reset = "after"  # "after": r ⊙ (W_hn h + b_hn) as cuDNN/torch; "before": W_hn (r ⊙ h) as Cho et al.

    def __post_init__(self) -> None:
        super().__post_init__()
        check_reset(self.reset)


class GRU(RecurrentBase):
    r"""Multi-layer gated recurrent unit, a drop-in for :class:`torch.nn.GRU`.

    For each layer, direction and step:

    .. math::
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))
              \quad\text{reset="after"} \\
        n_t = \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})
              \quad\text{reset="before"} \\
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    The articles write the last line as h_t = (1 − u_t) ⊙ h_{t−1} + u_t ⊙ h̃_t with the update
    gate u = 1 − z; gate traces report both. ``reset="after"`` is torch's and cuDNN's form (Keras
    ``reset_after=True``); ``reset="before"`` is Cho et al. (2014) as the articles state it (Keras
    ``reset_after=False``). Layers above the first read the concatenated directions (D·H).

    Shapes: N batch, L sequence length, D = 2 if bidirectional else 1, H hidden_size.
      input (L, N, I) or (N, L, I) with batch_first, (L, I) unbatched, or a PackedSequence;
      hx (num_layers·D, N, H);  output (L, N, D·H);  h_n (num_layers·D, N, H).
    Weights: weight_ih_l{k} (3H, I or D·H), weight_hh_l{k} (3H, H), bias_ih_l{k}, bias_hh_l{k} (3H),
    rows ordered r, z, n, suffix ``_reverse`` for the backward direction; all U(−1/√H, 1/√H).

    Beyond torch.nn.GRU: ``lengths=`` for padded batches, ``return_gates=True`` for a
    :class:`~grukit.nn.trace.GRUTrace`, ``step()`` for streaming, ``reset=`` and ``backend=``.
    """

    gate_count = 3
    torch_class = nn.GRU
    config_class = GRUConfig
    trace_class = GRUTrace

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        reset: Reset = "after",
        backend: Backend = "auto",
    ) -> None:
        config = GRUConfig(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            backend, reset,
        )
        super().__init__(config, device=device, dtype=dtype)
        self.reset = reset
        self._step_caches: dict = {}  # layer → fused.CellWeights, for step() without autograd

    def _native_refusal(self) -> str | None:
        if self.reset == "before":
            return "torch.nn.GRU (cuDNN) implements only reset='after'"
        return None

    def _native_op(self):
        return _VF.gru

    def _fused_refusal(self) -> str | None:
        from grukit.kernels.gru_scan import refusal

        return refusal(self.weight_ih_l0, what="module")

    def _prefer_fused(self, *, batch_size: int) -> bool:
        # Measured crossover on the 2-core CPU (`grukit bench`): the compiled loop wins while one
        # step's work is small (per-step dispatch dominates torch); past it torch's vectorised
        # gate arithmetic and MKL win. Training gains more, since torch's CPU backward is autograd.
        training = torch.is_grad_enabled() and self.weight_hh_l0.requires_grad
        if training:
            units, hidden = FUSED_MAX_UNITS_TRAIN, FUSED_MAX_HIDDEN_TRAIN
        else:
            units, hidden = FUSED_MAX_UNITS_INFERENCE, FUSED_MAX_HIDDEN_INFERENCE
        return self.hidden_size <= hidden and batch_size * self.hidden_size <= units

    def _forward_fused(self, batch, state, *, record: bool):
        from grukit.kernels.gru_scan import fused_scan

        steps, size = batch.steps, batch.batch_size
        lengths = batch.lengths if batch.lengths is not None else torch.full((size,), steps, dtype=torch.int64)

        def scan_direction(layer, direction, x, initial):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer, direction)
            out, h_n, gates = fused_scan(x, initial[0], w_ih, b_ih, w_hh, b_hh, lengths, reverse=direction == 1,
                                         reset=self.reset, record=record)
            return out, (h_n,), [g.transpose(0, 1) for g in gates] if record else None  # (B, T, H)

        return self._run_stack(scan_direction, batch, state, record=record)

    def _step(self, layer: int, direction: int):
        _, w_hh, _, b_hh = self.layer_weights(layer, direction)

        def step(gi, state):
            h, gates = gru_step(gi, state[0], w_hh, b_hh, reset=self.reset)
            return (h,), gates

        return step

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None):
        """One streaming step through every layer: x_t (B, I) or (I,), state (L, B, H) or (L, H).

        Returns (y_t, state') with y_t the top layer's new state (B, H). Unidirectional only:
        a reverse direction needs the whole sequence. Each layer's step runs as `GRUCell` with
        this module's backend would (see there).
        """
        if self.bidirectional:
            raise InputError("step() streams forward in time; a bidirectional GRU needs the whole sequence")
        lean = self._plain_compiled_step(x_t, state)
        if lean is not None:
            return lean
        x_t, state, unbatched = _cell_inputs(
            x_t, state, input_size=self.input_size, hidden_size=self.hidden_size,
            leading=(self.num_layers,), weight=self.weight_ih_l0,
        )
        path = _step_path(x_t, state[0], self.layer_weights(0), reset=self.reset, backend=self.backend)
        if path != "compiled":  # the compiled cell checks for itself
            self._check_step_finite(x_t, state)
        states = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x_t = F.dropout(x_t, p=self.dropout, training=True)
            h = _one_step(path, x_t, state[layer], self.layer_weights(layer), reset=self.reset,
                          caches=self._step_caches, layer=layer)
            if h is None:
                self._check_step_finite(x_t, state)  # raises, naming the NaN or inf
            states.append(h)
            x_t = h
        new_state = torch.stack(states)  # (L, B, H)
        if unbatched:
            return x_t.squeeze(0), new_state.squeeze(1)
        return x_t, new_state

    def _plain_compiled_step(self, x_t, state):
        """(y_t, state') by `_lean_step_kernel`'s path through every layer, or None: then the general
        path runs (also for dropout in training, and for a NaN or inf met on the way)."""
        if self.dropout > 0 and self.training and self.num_layers > 1:
            return None
        if state is None or state.dim() != 3 or state.shape[0] != self.num_layers:
            return None
        params = self._parameters
        kernel = _lean_step_kernel(x_t, state, params, input_size=self.input_size, hidden_size=self.hidden_size,
                                   backend=self.backend)
        if kernel is None:
            return None
        new_state = torch.empty_like(state)
        for layer in range(self.num_layers):
            cache = self._step_caches.get(layer) or self._step_caches.setdefault(layer, kernel.CellWeights())
            weights = cache.get(*_plain_weights(params, f"_l{layer}"))
            if kernel.fused_cell_step(x_t, state[layer], weights, reset=self.reset, out=new_state[layer]) is None:
                return None
            x_t = new_state[layer]
        return x_t, new_state

    @staticmethod
    def _check_step_finite(x_t, state) -> None:
        check_finite(x_t, name="input", axes=("b", "feature"))
        check_finite(state, name="state", axes=("layer", "b", "unit"))


class GRUCell(nn.Module):
    r"""One GRU step, a drop-in for :class:`torch.nn.GRUCell`:  h' = (1 − z) ⊙ n + z ⊙ h.

    The gates are those of :class:`GRU`. input (B, I) or (I,), hx (B, H) or (H,), zeros when
    omitted → h' (B, H) or (H,). Weights: weight_ih (3H, I), weight_hh (3H, H), bias_ih,
    bias_hh (3H), rows r, z, n, all U(−1/√H, 1/√H). ``gates(input, hx)`` returns the step's
    (r, z, n) beside h'.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        reset: Reset = "after",
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        check_reset(reset)
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "torch" and reset == "before":
            raise InputError("backend='torch' cannot run reset='before': torch's GRU cell is reset-after")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.reset, self.backend = reset, backend
        self._step_caches: dict = {}  # {0: fused.CellWeights}, for forward() without autograd
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @property
    def config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias,
                "reset": self.reset, "backend": self.backend}

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}, reset={self.reset!r}"

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        h_new = self._plain_compiled_step(input, hx)
        if h_new is not None:
            return h_new
        x, h, unbatched = _cell_inputs(input, hx, input_size=self.input_size,
                                       hidden_size=self.hidden_size, leading=(), weight=self.weight_ih)
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        path = _step_path(x, h, weights, reset=self.reset, backend=self.backend)
        if path != "compiled":  # the compiled cell checks for itself
            _check_cell_finite(x, h)
        h_new = _one_step(path, x, h, weights, reset=self.reset, caches=self._step_caches, layer=0)
        if h_new is None:
            _check_cell_finite(x, h)  # raises, naming the NaN or inf
        return h_new.squeeze(0) if unbatched else h_new

    def _plain_compiled_step(self, x, h) -> torch.Tensor | None:
        """h' by `_lean_step_kernel`'s path, or None: then the general path runs."""
        kernel = _lean_step_kernel(x, h, self._parameters, input_size=self.input_size, hidden_size=self.hidden_size,
                                   backend=self.backend)
        if kernel is None:
            return None
        cache = self._step_caches.get(0) or self._step_caches.setdefault(0, kernel.CellWeights())
        return kernel.fused_cell_step(x, h, cache.get(*_plain_weights(self._parameters, "")), reset=self.reset)

    def gates(self, input: torch.Tensor, hx: torch.Tensor | None = None):
        """(h', GRUGates(reset, keep, candidate)) for one step, always by the reference code."""
        x, h, unbatched = _cell_inputs(input, hx, input_size=self.input_size,
                                       hidden_size=self.hidden_size, leading=(), weight=self.weight_ih)
        _check_cell_finite(x, h)
        h_new, gates = gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                                self.bias_hh, reset=self.reset)
        if unbatched:
            return h_new.squeeze(0), type(gates)(*(g.squeeze(0) for g in gates))
        return h_new, gates

    def save(self, directory, *, overwrite: bool = False):
        return save(self, directory, overwrite=overwrite)


def _cell_inputs(x, state, *, input_size: int, hidden_size: int, leading: tuple, weight):
    """Validate one step's input and state; add the batch dimension to unbatched input.

    x (B, I) or (I,); state leading + (B, H) or leading + (H,), or None for zeros.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError(f"input must be a floating-point torch.Tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() not in (1, 2) or x.shape[-1] != input_size:
        raise InputError(
            f"input must be (B, {input_size}) or unbatched ({input_size},), got shape {tuple(x.shape)}"
        )
    check_float_dtype(x, name="input", expected=weight.dtype)
    check_device(x, name="input", expected=weight.device)
    unbatched = x.dim() == 1
    if unbatched:
        x = x.unsqueeze(0)
    batch_size = x.shape[0]
    if state is None:
        state = torch.zeros(*leading, batch_size, hidden_size, dtype=weight.dtype, device=weight.device)
    else:
        expected = (*leading, hidden_size) if unbatched else (*leading, batch_size, hidden_size)
        axes = ("layer",) * len(leading) + (("unit",) if unbatched else ("b", "unit"))
        check_state(state, name="state" if leading else "hx", expected_shape=expected,
                    dtype=weight.dtype, device=weight.device, axes=axes, finite=False)
        if unbatched:
            state = state.unsqueeze(-2)
    return x, state, unbatched


def _step_path(x, h, weights, *, reset: Reset, backend: Backend) -> str:
    """Which code runs one step of x (B, I), h (B, H) with weights (W_ih, W_hh, b_ih, b_hh):

    "compiled"  no autograd on the CPU, backend "fused" (or "auto" up to B·H = STEP_MAX_UNITS):
                the compiled cell, which checks x and h for NaN/inf itself;
    "scan"      backend "fused" with autograd: the sequence kernel for T = 1 (compiled backward);
    "torch"     torch's GRU cell op (reset="after", backends "auto" and "torch");
    "reference" the reference cell (`cells.gru_step`).
    """
    if backend in ("auto", "fused"):
        from grukit.kernels.gru_scan import refusal as fused_refusal

        refusal = fused_refusal(x)
        if backend == "fused" and refusal is not None:
            raise InputError(f"backend='fused' cannot run here: {refusal}")
        if refusal is None:
            differentiable = torch.is_grad_enabled() and any(
                t is not None and t.requires_grad for t in (x, h, *weights))
            if not differentiable and (backend == "fused" or x.shape[0] * h.shape[1] <= STEP_MAX_UNITS):
                return "compiled"
            if backend == "fused":
                return "scan"
    return "torch" if backend != "reference" and reset == "after" else "reference"


def _one_step(path: str, x, h, weights, *, reset: Reset, caches: dict, layer: int):
    """h' (B, H) by the `_step_path` chosen; None if the compiled cell met a NaN or inf.
    caches: the module's {layer: fused.CellWeights}, the compiled cell's prepared weights."""
    w_ih, w_hh, b_ih, b_hh = weights
    if path == "compiled":
        from grukit.kernels.gru_scan import CellWeights, fused_cell_step

        cache = caches.get(layer) or caches.setdefault(layer, CellWeights())
        return fused_cell_step(x, h, cache.get(w_ih, w_hh, b_ih, b_hh), reset=reset)
    if path == "scan":
        from grukit.kernels.gru_scan import fused_scan

        lengths = torch.ones(x.shape[0], dtype=torch.int64)
        _, h_new, _ = fused_scan(x[None], h, w_ih, b_ih, w_hh, b_hh, lengths, reverse=False, reset=reset,
                                 record=False)
        return h_new
    if path == "torch":
        return _VF.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
    return gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh, reset=reset)[0]


_COMPILED_BACKENDS = ("auto", "fused")
_COMPILED_DTYPES = (torch.float32, torch.float64)


def _plain_weights(params: dict, suffix: str) -> tuple:
    """(w_ih, w_hh, b_ih, b_hh) from a module's _parameters (nn.Module.__getattr__ is slow for a
    per-step call)."""
    return tuple(params.get(stem + suffix) for stem in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _lean_step_kernel(x, h, params: dict, *, input_size: int, hidden_size: int, backend: str):
    """The streaming call, lean: grukit.kernels.gru_scan when the compiled cell may run x (B, I) and h
    (B, H), or (L, B, H) for a stack, with no further checks — contiguous CPU tensors of the
    weights' dtype, nothing needing a gradient, the backend picking "compiled" (`_step_path`);
    None in every other case, which then takes the general path (validation, error messages,
    other backends). The kernel itself still refuses NaN and inf (the caller then takes the
    general path, which names them). params: the module's _parameters (every layer's), the first
    being the (first layer's) W_ih. Measured in `grukit bench`'s streaming table."""
    w_ih = next(iter(params.values()))
    dtype = w_ih.dtype
    if not (
        backend in _COMPILED_BACKENDS and type(x) is torch.Tensor and type(h) is torch.Tensor
        and x.dtype is dtype and h.dtype is dtype and dtype in _COMPILED_DTYPES
        and x.dim() == 2 and h.dim() >= 2 and x.shape[1] == input_size
        and h.shape[-2] == x.shape[0] and h.shape[-1] == hidden_size
        and x.is_cpu and h.is_cpu and w_ih.is_cpu and x.is_contiguous() and h.is_contiguous()
        and (backend == "fused" or x.shape[0] * hidden_size <= STEP_MAX_UNITS)
        and not (torch.is_grad_enabled() and (x.requires_grad or h.requires_grad or any(
            w is not None and w.requires_grad for w in params.values())))
    ):
        return None
    return _compiled_cell()


def _compiled_cell():
    """grukit.kernels.gru_scan when its kernel can run (imported on first use: `import grukit` stays free of
    numba), else None."""
    from grukit.kernels import gru_scan as fused

    return fused if fused.unavailable_reason() is None else None


def _check_cell_finite(x, h) -> None:
    check_finite(x, name="input", axes=("b", "feature"))
    check_finite(h, name="hx", axes=("b", "unit"))
