"""The gated recurrent unit: `GRUCell` for one step, `GRU` for stacked, bidirectional sequences."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import _VF, nn

from grukit.errors import InputError, check_positive
from grukit.io.serialization import save
from grukit.nn.base import BACKENDS, Backend, RecurrentBase, RecurrentConfig, uniform_reset_
from grukit.nn.cells import Reset, check_reset, gru_step
from grukit.nn.recurrence import Direction, scan
from grukit.nn.trace import GRUTrace
from grukit.nn.validation import (
    TRANSFORMED_REFUSAL,
    check_device,
    check_finite,
    check_float_dtype,
    check_state,
    functorch_active,
    transformed,
)

# backend="auto" on the CPU uses the fused kernel (reset="after", no trace) up to these sizes: the grid
# `grukit bench` measures (B ≤ 256, H ≤ 512), on which it was the faster choice everywhere (the measured
# ratios are on the benchmark page). Beyond the grid (B·H > 131072 or H > 512) nothing was measured: torch's op.
FUSED_MAX_UNITS_TRAIN = 131072
FUSED_MAX_HIDDEN_TRAIN = 512
FUSED_MAX_UNITS_INFERENCE = 131072
FUSED_MAX_HIDDEN_INFERENCE = 512


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
        self._step_caches: dict = {}  # layer → gru_scan.CellWeights, the compiled cell's prepared weights
        self._step_names = tuple(tuple(stem + f"_l{layer}" for stem in WEIGHT_STEMS) for layer in range(num_layers))

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
            reverse = direction == 1
            reference = functools.partial(reference_layer, reverse=reverse, reset=self.reset)
            out, h_n, gates = fused_scan(x, initial[0], w_ih, b_ih, w_hh, b_hh, lengths, reverse=reverse,
                                         reset=self.reset, record=record, reference=reference)
            return out, (h_n,), [g.transpose(0, 1) for g in gates] if record else None  # (B, T, H)

        return self._run_stack(scan_direction, batch, state, record=record)

    def _step(self, layer: int, direction: int):
        _, w_hh, _, b_hh = self.layer_weights(layer, direction)

        def step(gi, state):
            h, gates = gru_step(gi, state[0], w_hh, b_hh, reset=self.reset)
            return (h,), gates

        return step

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None):
        """One streaming step through every layer: x_t (B, I) or (I,), state (L, B, H) or (L, H),
        zeros when omitted → (y_t, state'), y_t the top layer's new state (B, H) or (H,).

        Layer k reads layer k − 1's new state (through dropout in training, as forward does), so
        streaming a sequence step by step gives forward's output and h_n. Which code runs the
        layers is `step_kind`'s choice for the backend, as for `GRUCell`.

        Raises InputError for a bidirectional module (a reverse direction needs the whole
        sequence); for an input or state of the wrong shape, dtype or device, or holding NaN or
        inf (naming the first such entry); and for backend="fused" where its kernel cannot run.
        """
        if self.bidirectional:
            raise InputError("step() streams forward in time; a bidirectional GRU needs the whole sequence")
        layers = tuple(_weights(self, names) for names in self._step_names)
        return stream_step(x_t, state, layers, stacked=True, reset=self.reset, backend=self.backend,
                           input_size=self.input_size, hidden_size=self.hidden_size, caches=self._step_caches,
                           dropout=self.dropout if self.training else 0.0)


class GRUCell(nn.Module):
    r"""One GRU step, a drop-in for :class:`torch.nn.GRUCell`:  h' = (1 − z) ⊙ n + z ⊙ h.

    The gates are those of :class:`GRU` (``reset="after"``: torch's form; ``"before"``: Cho et
    al.'s). input (B, I) or (I,), hx (B, H) or (H,), zeros when omitted → h' (B, H) or (H,).
    Weights: weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh (3H), rows r, z, n, all
    U(−1/√H, 1/√H). ``gates(input, hx)`` returns the step's (r, z, n) beside h'. Which code runs
    the step is `step_kind`'s choice for the backend.

    Raises InputError for an unknown backend and for backend="torch" with reset="before" (torch's
    cell is reset-after); forward raises it for an input or hx of the wrong shape, dtype or
    device or holding NaN or inf (naming the first such entry), and for backend="fused" where its
    kernel cannot run.
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
        self._step_caches: dict = {}  # {0: gru_scan.CellWeights}, the compiled cell's prepared weights
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
        uniform_reset_(self, self.hidden_size)

    @property
    def config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias,
                "reset": self.reset, "backend": self.backend}

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}, reset={self.reset!r}"

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        """h' (B, H) or (H,) for input (B, I) or (I,) and hx (B, H) or (H,), zeros when omitted."""
        _, h_new = stream_step(input, hx, (_weights(self, WEIGHT_STEMS),), stacked=False, reset=self.reset,
                               backend=self.backend, input_size=self.input_size, hidden_size=self.hidden_size,
                               caches=self._step_caches, dropout=0.0)
        return h_new

    def gates(self, input: torch.Tensor, hx: torch.Tensor | None = None):
        """(h', GRUGates(reset, keep, candidate)) for one step, always by the reference code."""
        x, h, unbatched = _step_inputs(input, hx, input_size=self.input_size,
                                       hidden_size=self.hidden_size, leading=(), weight=self.weight_ih)
        _check_step_finite(x, h, stacked=False)
        h_new, gates = gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                                self.bias_hh, reset=self.reset)
        if unbatched:
            return h_new.squeeze(0), type(gates)(*(g.squeeze(0) for g in gates))
        return h_new, gates

    def save(self, directory, *, overwrite: bool = False):
        return save(self, directory, overwrite=overwrite)


# -- streaming: one step of a GRUCell, or of every layer of a GRU -------------------------------------

WEIGHT_STEMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
STEP_MAX_UNITS = 2048  # backend="auto": single steps without autograd use the compiled cell up to B·H
StepKind = Literal["compiled", "scan", "torch", "reference"]


def stream_step(x, state, layers: tuple, *, stacked: bool, reset: Reset, backend: Backend, input_size: int,
                hidden_size: int, caches: dict, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a stack of GRU cells, layer k reading layer k − 1's new state: the one streaming
    path, of `GRU.step` (stacked=True) and of `GRUCell.forward` (stacked=False, one layer).

    x (B, I) or (I,); state (L, B, H) or (L, H) when stacked, else (B, H) or (H,), or None for
    zeros; layers: each layer's (W_ih, W_hh, b_ih, b_hh), biases None without bias; caches: the
    module's {layer: gru_scan.CellWeights}; dropout: the probability applied to the input of
    every layer but the first (0 outside training). Returns (y, state'): the top layer's h'
    (B, H) and the new state, shaped as the given one (unbatched input, unbatched results).

    x and state are validated (`_step_inputs`) unless `_is_plain` sees that validation would pass
    them unchanged; `step_kind` then picks the code for the backend, one for all layers. The
    compiled cell checks x and h for NaN and inf itself, before any arithmetic; every other kind
    is checked here first. Either way a NaN or inf raises InputError naming its first entry.
    """
    w_ih = layers[0][0]
    if _is_plain(x, state, w_ih, input_size=input_size, hidden_size=hidden_size,
                 layers=len(layers) if stacked else None):
        unbatched = False
    else:
        x, state, unbatched = _step_inputs(x, state, input_size=input_size, hidden_size=hidden_size,
                                           leading=(len(layers),) if stacked else (), weight=w_ih)
    kind = step_kind(x, state, layers, reset=reset, backend=backend)
    if kind != "compiled":  # the compiled cell checks for itself
        _check_step_finite(x, state, stacked=stacked)
    layer_states = state if stacked else (state,)
    new_states = []
    for layer, weights in enumerate(layers):
        if layer > 0 and dropout > 0:
            x = F.dropout(x, p=dropout, training=True)
        h = _one_step(kind, x, layer_states[layer], weights, reset=reset, caches=caches, layer=layer)
        if h is None:  # the compiled cell met a NaN or inf
            _check_step_finite(x, state, stacked=stacked)  # raises, naming it
        new_states.append(h)
        x = h
    if not stacked:
        h = x.squeeze(0) if unbatched else x
        return h, h
    new_state = new_states[0].unsqueeze(0) if len(new_states) == 1 else torch.stack(new_states)  # (L, B, H)
    if unbatched:
        return x.squeeze(0), new_state.squeeze(1)
    return x, new_state


def step_kind(x, h, layers: tuple, *, reset: Reset, backend: Backend) -> StepKind:
    """Which code runs one streaming step of x (B, I) and h (…, B, H) through `layers`, each
    (W_ih, W_hh, b_ih, b_hh), for each backend:

    "compiled"   the compiled cell (`gru_scan.fused_cell_step`), on the CPU with nothing needing a
                 gradient: backend "fused", and "auto" up to B·H = STEP_MAX_UNITS;
    "scan"       backend "fused" with autograd: the sequence kernel for T = 1 (compiled backward);
    "torch"      torch's GRU cell op, for reset="after": backend "torch", and "auto" where the
                 compiled cell does not run;
    "reference"  the reference cell (`cells.gru_step`): backend "reference", and "torch" or "auto"
                 for reset="before", which torch's cell does not implement.

    Raises InputError for backend "fused" where its kernel cannot run (off the CPU, or without numba).
    """
    if transformed() and backend in ("auto", "fused", "torch"):
        if backend == "fused":
            raise InputError(f"backend='fused' cannot run here: {TRANSFORMED_REFUSAL}")
        functorch = functorch_active()  # torch's cell op has no vmap rule
        return "torch" if reset == "after" and not (functorch and backend == "auto") else "reference"
    if backend in ("auto", "fused"):
        refusal = _gru_scan().refusal(x)
        if backend == "fused" and refusal is not None:
            raise InputError(f"backend='fused' cannot run here: {refusal}")
        if refusal is None:
            differentiable = torch.is_grad_enabled() and (x.requires_grad or h.requires_grad or any(
                t is not None and t.requires_grad for weights in layers for t in weights))
            if not differentiable and (backend == "fused" or x.shape[0] * h.shape[-1] <= STEP_MAX_UNITS):
                return "compiled"
            if backend == "fused":
                return "scan"
    return "torch" if backend != "reference" and reset == "after" else "reference"


def _one_step(kind: StepKind, x, h, weights: tuple, *, reset: Reset, caches: dict, layer: int):
    """h' (B, H) of one layer by the `step_kind` chosen, from x (B, I) and h (B, H); None if the
    compiled cell met a NaN or inf. caches: the module's {layer: gru_scan.CellWeights}."""
    w_ih, w_hh, b_ih, b_hh = weights
    if kind == "compiled":
        kernel = _gru_scan()
        cache = caches.get(layer) or caches.setdefault(layer, kernel.CellWeights())
        return kernel.fused_cell_step(x, h, cache.get(w_ih, w_hh, b_ih, b_hh), reset=reset)
    if kind == "scan":
        lengths = torch.ones(x.shape[0], dtype=torch.int64)
        _, h_new, _ = _gru_scan().fused_scan(x[None], h, w_ih, b_ih, w_hh, b_hh, lengths, reverse=False,
                                             reset=reset, record=False,
                                             reference=functools.partial(reference_layer, reverse=False, reset=reset))
        return h_new
    if kind == "torch":
        return _VF.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
    return gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh, reset=reset)[0]


@functools.cache
def _gru_scan():
    """grukit.kernels.gru_scan, imported on first use (`import grukit` stays free of numba) and kept:
    an import statement per step would cost a tenth of a small step."""
    from grukit.kernels import gru_scan

    return gru_scan


def _weights(module: nn.Module, names: tuple) -> tuple:
    """The module's tensors `names` (None where absent), read from its _parameters where they are:
    per step, nn.Module.__getattr__ would cost as much as the arithmetic at small sizes."""
    params = module._parameters
    return tuple([params[name] if name in params else getattr(module, name, None) for name in names])


def _is_plain(x, state, weight, *, input_size: int, hidden_size: int, layers: int | None) -> bool:
    """Whether `_step_inputs` would pass x and state unchanged: batched CPU tensors of the weights'
    floating dtype, x (B, I) and state (layers, B, H), or (B, H) for layers=None. A cheap test, so
    that the common streaming call skips a validation that has nothing to say."""
    dtype = weight.dtype
    return (
        type(x) is torch.Tensor and type(state) is torch.Tensor and dtype.is_floating_point
        and x.dtype is dtype and state.dtype is dtype and x.is_cpu and state.is_cpu and weight.is_cpu
        and x.dim() == 2 and x.shape[1] == input_size
        and state.dim() == (2 if layers is None else 3) and state.shape[-2] == x.shape[0]
        and state.shape[-1] == hidden_size and (layers is None or state.shape[0] == layers)
    )


def _step_inputs(x, state, *, input_size: int, hidden_size: int, leading: tuple, weight):
    """Validate one step's input and state; add the batch dimension to unbatched input.

    x (B, I) or (I,); state leading + (B, H) or leading + (H,), or None for zeros → (x (B, I),
    state leading + (B, H), unbatched). Raises InputError naming what does not fit; NaN and inf
    are checked apart (`_check_step_finite`).
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


def _check_step_finite(x, state, *, stacked: bool) -> None:
    """Raise InputError naming the first NaN or inf of x (B, I), else of the state: GRU.step's
    "state" (L, B, H) when stacked, GRUCell's "hx" (B, H) otherwise."""
    check_finite(x, name="input", axes=("b", "feature"))
    if stacked:
        check_finite(state, name="state", axes=("layer", "b", "unit"))
    else:
        check_finite(state, name="hx", axes=("b", "unit"))


def reference_layer(x, h0, w_ih, b_ih, w_hh, b_hh, lengths, *, reverse: bool, reset: Reset):
    """One layer and direction by the readable recurrence: x (T, B, I), h0 (B, H), lengths (B,) →
    (out (T, B, H), h_n (B, H)), zeros in out and the state held past each sequence's length —
    what the fused kernel computes, in differentiable torch ops (its create_graph backward)."""
    valid = torch.arange(x.shape[0])[:, None] < lengths[None, :]

    def step(gi, state):
        h, gates = gru_step(gi, state[0], w_hh, b_hh, reset=reset)
        return (h,), gates

    out, (h_n,), _ = scan(Direction(w_ih, b_ih, step, reverse=reverse), x, (h0,), valid=valid, record=False)
    return out, h_n
