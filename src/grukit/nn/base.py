"""What GRU, RNN and LSTM share: torch.nn's parameter layout and the one forward contract.

    module(input, hx=None, *, lengths=None, return_gates=False)
      input   (T, B, I), (B, T, I) with batch_first=True, unbatched (T, I), or a PackedSequence
      returns (output, h_n), or (output, h_n, trace) with return_gates=True
      output  (T, B, D·H) / (B, T, D·H) / (T, D·H), or a PackedSequence for packed input
      h_n     (L·D, B, H), as torch.nn (a pair (h_n, c_n) for the LSTM)
      lengths (B,) valid steps per sequence: later steps give zeros and leave the state alone

Parameters carry torch.nn's names, shapes, gate order and initialisation U(−1/√H, 1/√H), so a
state_dict moves between a grukit module and its torch.nn peer unchanged.

Backends: "reference" runs the readable per-step code (`recurrence.run_stack` over `cells`);
"torch" calls the native op torch.nn uses (cuDNN on CUDA); "auto" picks the native op when it
can do what was asked and the reference otherwise. A backend asked for by name never falls
back: it refuses with an error that says why.

Traced or transformed calls (torch.compile, torch.export, torch.func's grad / jacrev / jacfwd /
vmap: `validation.transformed`) skip the checks that read values (NaN, lengths in range).
Under compile and export the GRU's fused kernel is the registered custom operator
grukit::gru_scan (`kernels.gru_scan`), which the graph keeps whole; under torch.func transforms
"auto" runs the reference (neither the native op nor the fused kernel has a batching rule) and
the fused backend refuses. TorchScript is refused with the routes that work (`to_torch`,
torch.export).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from grukit.errors import InputError, check_positive
from grukit.io.serialization import save
from grukit.nn.recurrence import Direction, ScanDirection, run_stack, scan, stack_layers
from grukit.nn.validation import (
    TRANSFORMED_REFUSAL,
    SequenceBatch,
    check_state,
    functorch_active,
    sequence_batch,
    transformed,
)

Backend = Literal["auto", "reference", "torch", "fused"]
TORCHSCRIPT_ROUTES = ("grukit.{name} does not compile to TorchScript (torch.jit.script / torch.jit.trace): use "
                      "module.to_torch() for the torch.nn module with these weights, or torch.export.export(module, "
                      "(input,)) for a traced program")
BACKENDS = ("auto", "reference", "torch", "fused")


@dataclass(frozen=True)
class RecurrentConfig:
    """Constructor arguments shared with torch.nn.RNNBase."""

    input_size: int  # I, features per step
    hidden_size: int  # H, units per layer and direction
    num_layers: int = 1  # L, stacked layers
    bias: bool = True  # b_ih and b_hh
    batch_first: bool = False  # (B, T, I) instead of (T, B, I); h_n stays (L·D, B, H)
    dropout: float = 0.0  # on each layer's output but the last, in training
    bidirectional: bool = False  # D = 2 when True
    backend: Backend = "auto"  # which kernel runs the recurrence

    def __post_init__(self) -> None:
        check_positive(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers)
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout <= 1.0):
            raise InputError(f"dropout must be a probability in [0, 1], got {self.dropout!r}")
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


def uniform_reset_(module: nn.Module, hidden_size: int) -> None:
    """Every parameter of `module` drawn from U(−1/√H, 1/√H): torch.nn's recurrent initialisation."""
    bound = 1.0 / math.sqrt(hidden_size)
    for weight in module.parameters():
        nn.init.uniform_(weight, -bound, bound)


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters (GRU: 3H(I+H) + 6H per layer and direction with bias)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class RecurrentBase(nn.Module):
    """A stack of recurrent layers with torch.nn's layout and grukit's forward contract."""

    gate_count: ClassVar[int]  # G: rows of W_ih per unit (GRU 3, RNN 1, LSTM 4)
    state_names: ClassVar[tuple[str, ...]] = ("hx",)  # ("h0", "c0") for the LSTM
    torch_class: ClassVar[type[nn.RNNBase]]
    trace_class: ClassVar[type | None] = None  # GRUTrace, LSTMTrace; None: no gates to trace

    def __init__(self, config: RecurrentConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        self.config = config
        self.input_size = config.input_size
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers
        self.bias = config.bias
        self.batch_first = config.batch_first
        self.dropout = float(config.dropout)
        self.bidirectional = config.bidirectional
        self.backend = config.backend
        if config.dropout > 0 and config.num_layers == 1:
            # torch.nn warns here too: dropout acts only between stacked layers
            import warnings

            warnings.warn(
                f"dropout={config.dropout} has no effect with num_layers=1: it is applied "
                "between stacked layers only",
                stacklevel=3,
            )
        factory = {"device": device, "dtype": dtype}
        hidden, gates = config.hidden_size, self.gate_count * config.hidden_size
        self._flat_weight_names: list[str] = []
        for layer in range(self.num_layers):
            layer_input = config.input_size if layer == 0 else hidden * self.num_directions
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {"weight_ih": (gates, layer_input), "weight_hh": (gates, hidden)}
                if config.bias:
                    shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
                for stem, shape in shapes.items():
                    self.register_parameter(stem + suffix, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weight_names.append(stem + suffix)
        self.reset_parameters()

    # -- layout -------------------------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """U(−1/√H, 1/√H) for every weight and bias, as torch.nn."""
        uniform_reset_(self, self.hidden_size)

    def _flat_weights(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self._flat_weight_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Each layer-direction's [w_ih, w_hh, b_ih, b_hh] (without biases: [w_ih, w_hh]), in
        torch.nn.RNNBase's order."""
        per = 4 if self.bias else 2
        weights = self._flat_weights()
        return [weights[i : i + per] for i in range(0, len(weights), per)]

    def flatten_parameters(self) -> None:
        """A no-op, for code written against torch.nn.RNNBase: torch compacts its weights into one
        buffer for cuDNN; grukit's kernels read the parameters where they are."""

    def layer_weights(self, layer: int, direction: int = 0) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh) of one layer and direction; biases None without bias."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        return tuple(
            getattr(self, stem + suffix, None) for stem in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = RecurrentConfig(1, 1)
        for name, value in asdict(self.config).items():
            if name in ("input_size", "hidden_size"):
                continue
            if not hasattr(defaults, name) or getattr(defaults, name) != value:
                s += f", {name}={value!r}"
        return s

    # -- what subclasses provide ----------------------------------------------------------------
    def _step(self, layer: int, direction: int):
        """The per-step function for `recurrence.Direction` (reference backend)."""
        raise NotImplementedError

    def _native_op(self):
        """The torch op torch.nn uses for this module, or None when it cannot run the config."""
        raise NotImplementedError

    def _native_refusal(self) -> str | None:
        """Why the native op cannot run this module's configuration, or None when it can."""
        return None

    def _fused_refusal(self) -> str | None:
        """Why grukit's fused CPU kernel cannot run this module, or None when it can."""
        return f"the fused kernel implements the GRU only, not {type(self).__name__}"

    def _prefer_fused(self, *, batch_size: int) -> bool:
        """For backend="auto": whether the fused kernel is the faster choice for this call."""
        return False

    # -- TorchScript --------------------------------------------------------------------------
    def __prepare_scriptable__(self):
        """torch.jit.script calls this first: grukit's modules are not TorchScript (keyword-only
        flags, the input checks, the compiled kernels), so it says which routes are."""
        raise InputError(TORCHSCRIPT_ROUTES.format(name=type(self).__name__))

    # -- forward ------------------------------------------------------------------------------
    def _resolve_backend(self, *, return_gates: bool, batch_size: int = 1, lengths: bool = False) -> str:
        if return_gates and self.trace_class is None:
            raise InputError(f"{type(self).__name__} has no gates to trace (return_gates=True)")
        if self.backend == "reference":
            return "reference"
        native_refusal = self._native_refusal()
        if return_gates and native_refusal is None:
            native_refusal = "the native op does not expose gate values (return_gates=True)"
        if native_refusal is None and functorch_active():
            native_refusal = "torch's recurrent op has no rule for torch.func's transforms (vmap, jacrev)"
        if native_refusal is None and lengths and transformed():
            native_refusal = "packing by lengths, which the native op needs, cannot be traced"
        if self.backend == "torch":
            return self._refuse_if("torch", native_refusal)
        fused_refusal = TRANSFORMED_REFUSAL if functorch_active() else self._fused_refusal()
        if self.backend == "fused":
            return self._refuse_if("fused", fused_refusal)
        if fused_refusal is None and (native_refusal is not None or self._prefer_fused(batch_size=batch_size)):
            return "fused"
        return "torch" if native_refusal is None else "reference"

    @staticmethod
    def _refuse_if(backend: str, refusal: str | None) -> str:
        """A backend asked for by name runs, or raises saying why it cannot: it never falls back."""
        if refusal is not None:
            raise InputError(
                f"backend={backend!r} cannot run this call: {refusal}; use backend='reference' or backend='auto'"
            )
        return backend

    def _initial_state(self, hx, batch: SequenceBatch) -> tuple[torch.Tensor, ...]:
        """hx as a tuple of (L·D, B, H) tensors, zeros when not given."""
        weight = self.weight_ih_l0
        shape = (self.num_layers * self.num_directions, batch.batch_size, self.hidden_size)
        if hx is None:
            zeros = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
            return (zeros,) * len(self.state_names)
        parts = (hx,) if len(self.state_names) == 1 else hx
        if not isinstance(parts, (tuple, list)) or len(parts) != len(self.state_names):
            raise InputError(f"hx must be a tuple {self.state_names} for {type(self).__name__}")
        expected = (shape[0], shape[2]) if batch.unbatched else shape
        for name, part in zip(self.state_names, parts, strict=True):
            check_state(part, name=name, expected_shape=expected, dtype=weight.dtype, device=weight.device)
        return tuple(part.unsqueeze(1) if batch.unbatched else part for part in parts)

    def forward(self, input, hx=None, *, lengths=None, return_gates: bool = False):
        """The forward contract of the module docstring, by the backend `_resolve_backend` picks.

        Raises InputError for an input, hx or lengths that does not fit (shape, dtype, device, NaN
        or inf in a valid step, a length outside [1, T]), for return_gates=True on a module without
        gates, and for a backend asked for by name that cannot run the call (it never falls back).
        """
        if torch.jit.is_tracing():
            raise InputError(TORCHSCRIPT_ROUTES.format(name=type(self).__name__))
        weight = self.weight_ih_l0
        batch = sequence_batch(
            input,
            input_size=self.input_size,
            batch_first=self.batch_first,
            lengths=lengths,
            dtype=weight.dtype,
            device=weight.device,
        )
        state = self._initial_state(hx, batch)
        backend = self._resolve_backend(return_gates=return_gates, batch_size=batch.batch_size,
                                        lengths=batch.lengths is not None)
        if backend == "torch":
            output, finals = self._forward_native(batch, state)
            trace = None
        elif backend == "fused":
            output, finals, trace = self._forward_fused(batch, state, record=return_gates)
        else:
            output, finals, trace = self._forward_reference(batch, state, record=return_gates)
        return self._format(batch, output, finals, trace, return_gates=return_gates)

    def _forward_reference(self, batch: SequenceBatch, state, *, record: bool):
        valid = batch.valid_mask()

        def scan_direction(layer, direction, x, initial):
            w_ih, _, b_ih, _ = self.layer_weights(layer, direction)
            step = Direction(w_ih, b_ih, self._step(layer, direction), reverse=direction == 1)
            return scan(step, x, initial, valid=valid, record=record)

        return self._run_stack(scan_direction, batch, state, record=record)

    def _forward_fused(self, batch: SequenceBatch, state, *, record: bool):
        raise NotImplementedError  # only modules whose _fused_refusal() can be None implement it

    def _run_stack(self, scan_direction: ScanDirection, batch: SequenceBatch, state, *, record: bool):
        """Run `scan_direction` over layers × directions; finals (L·D, B, H) and the trace."""
        initial = [tuple(s[i] for s in state) for i in range(state[0].shape[0])]
        output, finals, gates = run_stack(
            batch.data, initial, scan_direction, num_layers=self.num_layers,
            num_directions=self.num_directions, dropout=self.dropout, training=self.training,
        )
        finals = tuple(torch.stack(part) for part in zip(*finals))  # each (L·D, B, H)
        trace = None
        if record:  # each gate (L·D, B, T, H); with one layer and direction a view, no copy
            trace = self.trace_class(*(stack_layers(g) for g in zip(*gates)))
        return output, finals, trace

    def _forward_native(self, batch: SequenceBatch, state):
        op = self._native_op()
        hx = state[0] if len(state) == 1 else state
        args = (self._flat_weights(), self.bias, self.num_layers, self.dropout, self.training,
                self.bidirectional)
        if batch.lengths is None:
            result = op(batch.data, hx, *args, False)  # time-major: batch_first=False
            return result[0], tuple(result[1:])
        packed = pack_padded_sequence(batch.data, batch.lengths, enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        hx = tuple(s.index_select(1, order) for s in state)
        result = op(packed.data, packed.batch_sizes, hx[0] if len(hx) == 1 else hx, *args)
        output_packed = PackedSequence(result[0], packed.batch_sizes, order, unorder)
        output, _ = pad_packed_sequence(output_packed, total_length=batch.steps)
        return output, tuple(s.index_select(1, unorder) for s in result[1:])

    def _format(self, batch: SequenceBatch, output, finals, trace, *, return_gates: bool):
        if batch.packed is not None:
            output = _repack_like(output, batch.lengths, batch.packed)
        elif batch.unbatched:
            output = output.squeeze(1)
        elif batch.batch_first:
            output = output.transpose(0, 1)
        if batch.unbatched:
            finals = tuple(s.squeeze(1) for s in finals)
            if trace is not None:
                trace = trace.map(lambda gate: gate.squeeze(1))
        h_n = finals[0] if len(finals) == 1 else finals
        return (output, h_n, trace) if return_gates else (output, h_n)

    # -- interop and persistence ----------------------------------------------------------------
    @classmethod
    def from_config(cls, config: RecurrentConfig, *, device=None, dtype=None):
        """Build from a config (the constructor's arguments, as `module.config` holds them)."""
        return cls(**asdict(config), device=device, dtype=dtype)

    @classmethod
    def from_torch(cls, module: nn.RNNBase, *, backend: Backend = "auto"):
        """The grukit module computing exactly what the torch.nn `module` computes (weights copied)."""
        if type(module) is not cls.torch_class:
            raise InputError(
                f"{cls.__name__}.from_torch expects a torch.nn.{cls.torch_class.__name__}, "
                f"got {type(module).__name__}"
            )
        weight = module.weight_ih_l0
        converted = cls(**cls._config_from_torch(module), device=weight.device, dtype=weight.dtype,
                        backend=backend)
        converted.load_state_dict(module.state_dict())
        return converted.train(module.training)

    @classmethod
    def _config_from_torch(cls, module: nn.RNNBase) -> dict:
        if getattr(module, "proj_size", 0):
            raise InputError("torch modules with proj_size > 0 have no grukit equivalent")
        return {
            "input_size": module.input_size,
            "hidden_size": module.hidden_size,
            "num_layers": module.num_layers,
            "bias": module.bias,
            "batch_first": module.batch_first,
            "dropout": float(module.dropout),
            "bidirectional": module.bidirectional,
        }

    def to_torch(self) -> nn.RNNBase:
        """The equivalent torch.nn module, with these weights copied in."""
        refusal = self._native_refusal()
        if refusal is not None:
            raise InputError(f"no torch.nn equivalent: {refusal}")
        weight = self.weight_ih_l0
        kwargs = self._torch_kwargs()
        peer = self.torch_class(**kwargs, device=weight.device, dtype=weight.dtype)
        peer.load_state_dict(self.state_dict())
        return peer.train(self.training)

    def _torch_kwargs(self) -> dict:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
        }

    def save(self, directory, *, overwrite: bool = False):
        """Write `model.safetensors` and `config.json` into `directory`, atomically."""
        return save(self, directory, overwrite=overwrite)


def _repack_like(output: torch.Tensor, lengths: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a time-major (T, B, ·) output with the batch order of the caller's PackedSequence."""
    if like.sorted_indices is not None:
        output = output.index_select(1, like.sorted_indices.to(output.device))
        lengths = lengths.index_select(0, like.sorted_indices.cpu())
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


