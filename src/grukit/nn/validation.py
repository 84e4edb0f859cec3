"""Checks on what users pass to a sequence module, with messages that name the problem.

Every sequence module (GRU, RNN, LSTM) turns its arguments into one `SequenceBatch`
before any arithmetic runs, so shape, dtype, NaN and length errors surface here as an
`InputError` naming the offending value, never as a traceback from inside torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from grukit.errors import InputError


@dataclass(frozen=True)
class SequenceBatch:
    """A batch in the time-major layout the kernels use, plus how to give it back.

    data: (T, B, I).  lengths: (B,) int64 on the CPU, or None when every sequence has T steps.
    """

    data: torch.Tensor
    lengths: torch.Tensor | None
    batch_first: bool  # the caller's layout, restored on output
    unbatched: bool  # the caller passed (T, I); outputs drop the batch dimension
    packed: PackedSequence | None  # the caller's PackedSequence, to re-pack the output like it

    @property
    def steps(self) -> int:
        return self.data.shape[0]

    @property
    def batch_size(self) -> int:
        return self.data.shape[1]

    def valid_mask(self) -> torch.Tensor | None:
        """(T, B) bool, True at steps inside each sequence; None when all steps are valid."""
        if self.lengths is None:
            return None
        steps = torch.arange(self.steps, device=self.lengths.device)
        return (steps[:, None] < self.lengths[None, :]).to(self.data.device)


def functorch_active() -> bool:
    """Whether a torch.func transform (grad, jacrev, jacfwd, vmap) is running this call: the one
    place grukit asks torch's private flag for it."""
    return torch._C._are_functorch_transforms_active()


def transformed() -> bool:
    """Whether this call is being traced or transformed — torch.compile, torch.export, or a
    torch.func transform (grad, jacrev, jacfwd, vmap) — rather than run eagerly. Checks that read
    tensor values (NaN, lengths out of range) then do not run, since a traced value has none yet;
    and the compiled kernels, which compute outside torch, give way to code torch can trace."""
    return torch.compiler.is_compiling() or functorch_active()


TRANSFORMED_REFUSAL = ("the fused kernel runs eagerly or as the GRU's compiled custom op, not under a torch.func "
                       "transform or (GRUCell, GRU-D) torch.compile / torch.export (backend='auto' runs torch's op "
                       "or the reference code there)")


def _first_bad_index(bad: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in bad.nonzero()[0].tolist())


def check_finite(tensor: torch.Tensor, *, name: str, axes: Sequence[str]) -> None:
    """Raise InputError naming the first NaN or inf entry of `tensor`.

    axes: a name for each dimension, e.g. ("t", "b", "feature"), used in the message. Skipped
    where the call is traced or transformed (`transformed`): the values are not there to read.
    """
    if transformed():
        return
    finite = torch.isfinite(tensor)
    if bool(finite.all()):
        return
    index = _first_bad_index(~finite)
    value = tensor[index].item()
    where = ", ".join(f"{axis}={i}" for axis, i in zip(axes, index, strict=True))
    raise InputError(f"{name} has a non-finite value ({value}) at index ({where})")


def check_float_dtype(tensor: torch.Tensor, *, name: str, expected: torch.dtype) -> None:
    if tensor.dtype != expected:
        raise InputError(
            f"{name} has dtype {tensor.dtype} but the module's parameters are {expected}; "
            f"convert one of them, e.g. input.to({expected}) or module.to({tensor.dtype})"
        )


def check_device(tensor: torch.Tensor, *, name: str, expected: torch.device) -> None:
    if tensor.device.type != expected.type:
        raise InputError(
            f"{name} is on {tensor.device} but the module's parameters are on {expected}"
        )


def normalise_lengths(lengths, *, batch_size: int, steps: int) -> torch.Tensor:
    """lengths (B,) as int64 on the CPU, each in [1, T]."""
    if isinstance(lengths, torch.Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise InputError(f"lengths must hold integers, got dtype {lengths.dtype}")
        lengths = lengths.detach().to("cpu", torch.int64)
    else:
        try:
            lengths = torch.as_tensor(list(lengths))
        except (TypeError, ValueError) as error:
            raise InputError(f"lengths must be a 1-D sequence of integers: {error}") from None
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise InputError(f"lengths must hold integers, got {lengths.tolist()}")
        lengths = lengths.to(torch.int64)
    if lengths.dim() != 1:
        raise InputError(f"lengths must be 1-D of shape (batch,), got shape {tuple(lengths.shape)}")
    if lengths.numel() != batch_size:
        raise InputError(
            f"lengths has {lengths.numel()} entries but the batch has {batch_size} sequences"
        )
    out_of_range = (lengths < 1) | (lengths > steps)
    if not transformed() and bool(out_of_range.any()):
        b = int(out_of_range.nonzero()[0, 0])
        raise InputError(
            f"lengths[{b}] = {int(lengths[b])} is outside [1, {steps}] (the input has {steps} steps)"
        )
    return lengths


def sequence_batch(
    input,
    *,
    input_size: int,
    batch_first: bool,
    lengths,
    dtype: torch.dtype,
    device: torch.device,
) -> SequenceBatch:
    """Validate a module's input and bring it to the time-major layout (T, B, I)."""
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise InputError("pass either a PackedSequence or lengths=, not both")
        check_float_dtype(input.data, name="input", expected=dtype)
        check_device(input.data, name="input", expected=device)
        if input.data.dim() != 2 or input.data.shape[-1] != input_size:
            raise InputError(
                f"packed input has {input.data.shape[-1]} features per step, "
                f"expected input_size={input_size}"
            )
        check_finite(input.data, name="packed input data", axes=("row", "feature"))
        data, packed_lengths = pad_packed_sequence(input, batch_first=False)
        return SequenceBatch(data, packed_lengths.to(torch.int64), batch_first, False, input)

    if not isinstance(input, torch.Tensor):
        raise InputError(f"input must be a torch.Tensor or PackedSequence, got {type(input).__name__}")
    if not input.is_floating_point():
        raise InputError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    if input.dim() not in (2, 3):
        raise InputError(
            f"input must be 3-D {'(B, T, I)' if batch_first else '(T, B, I)'} or unbatched 2-D "
            f"(T, I), got shape {tuple(input.shape)}"
        )
    if input.shape[-1] != input_size:
        raise InputError(
            f"input has {input.shape[-1]} features (last dimension of shape "
            f"{tuple(input.shape)}), expected input_size={input_size}"
        )
    check_float_dtype(input, name="input", expected=dtype)
    check_device(input, name="input", expected=device)
    unbatched = input.dim() == 2
    if unbatched:
        if lengths is not None:
            raise InputError("lengths= needs batched input; unbatched (T, I) input has one sequence")
        data = input.unsqueeze(1)
    else:
        data = input.transpose(0, 1) if batch_first else input
    steps, batch_size = data.shape[0], data.shape[1]
    if steps == 0:
        raise InputError(f"input has no time steps (shape {tuple(input.shape)})")
    if batch_size == 0:
        raise InputError(f"input has an empty batch (shape {tuple(input.shape)})")
    if lengths is not None:
        lengths = normalise_lengths(lengths, batch_size=batch_size, steps=steps)
    batch = SequenceBatch(data, lengths, batch_first and not unbatched, unbatched, None)
    _check_finite_valid_steps(batch)
    return batch


def _check_finite_valid_steps(batch: SequenceBatch) -> None:
    """NaN/inf check over the valid steps only (padding may hold anything), indexed as the caller laid it out."""
    data = batch.data
    valid = batch.valid_mask()
    if valid is not None:
        data = torch.where(valid[..., None], data, torch.zeros((), dtype=data.dtype, device=data.device))
    if batch.unbatched:
        check_finite(data[:, 0], name="input", axes=("t", "feature"))
    elif batch.batch_first:
        check_finite(data.transpose(0, 1), name="input", axes=("b", "t", "feature"))
    else:
        check_finite(data, name="input", axes=("t", "b", "feature"))


def check_state(
    state: torch.Tensor,
    *,
    name: str,
    expected_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    axes: Sequence[str] | None = None,
    finite: bool = True,
) -> None:
    """An initial state (hx, or LSTM's c0) must match the module and the batch exactly
    (and hold no NaN or inf, unless finite=False: the caller checks that itself)."""
    if not isinstance(state, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(state).__name__}")
    if tuple(state.shape) != tuple(expected_shape):
        raise InputError(f"{name} has shape {tuple(state.shape)}, expected {tuple(expected_shape)}")
    check_float_dtype(state, name=name, expected=dtype)
    check_device(state, name=name, expected=device)
    if axes is None:
        axes = ("layer", "b", "unit") if state.dim() == 3 else ("layer", "unit")
    if finite:
        check_finite(state, name=name, axes=axes)
