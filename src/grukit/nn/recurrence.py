"""The reference time loop: any cell, stacked and bidirectional, with per-sequence lengths.

This is the readable specification of the forward contract; the fast kernels are tested
against it. Cells stay apart from the loop (flax's design): a `Direction` knows how to project
the whole input once and how to take one step; `run_stack` drives layers × directions × time.

Lengths: at a step t ≥ length_b the state of sequence b is left untouched and its output is 0,
so h_n is the state after each sequence's last valid step. The reverse direction walks
t = T−1 … 0 under the same rule, so it starts from the initial state at t = length_b − 1,
exactly as a PackedSequence would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

State = tuple[torch.Tensor, ...]  # (h,) for GRU/RNN, (h, c) for LSTM; each (B, H)
Step = Callable[[torch.Tensor, State], tuple[State, tuple | None]]


@dataclass(frozen=True)
class Direction:
    """One layer in one direction: x (T, B, I) → gi = W_ih x + b_ih (T, B, G·H), then steps."""

    w_ih: torch.Tensor
    b_ih: torch.Tensor | None
    step: Step  # (gi_t (B, G·H), state) → (state', gates or None)
    reverse: bool


def scan(
    direction: Direction,
    x: torch.Tensor,
    state: State,
    *,
    valid: torch.Tensor | None,
    record: bool,
) -> tuple[torch.Tensor, State, list[torch.Tensor] | None]:
    """Run one direction over time.

    x (T, B, I), valid (T, B) bool or None → output (T, B, H), final state, and, when
    `record`, one (B, T, H) tensor per gate with NaN at invalid steps.
    """
    steps = x.shape[0]
    gi = F.linear(x, direction.w_ih, direction.b_ih)  # (T, B, G·H), all steps in one product
    outputs: list[torch.Tensor | None] = [None] * steps
    gate_steps: list[tuple | None] = [None] * steps
    order = range(steps - 1, -1, -1) if direction.reverse else range(steps)
    for t in order:
        new_state, gates = direction.step(gi[t], state)
        if valid is not None:
            keep_old = ~valid[t][:, None]  # (B, 1)
            new_state = tuple(torch.where(keep_old, old, new) for old, new in zip(state, new_state))
            outputs[t] = new_state[0].masked_fill(keep_old, 0.0)
            if record:
                gates = tuple(g.masked_fill(keep_old, float("nan")) for g in gates)
        else:
            outputs[t] = new_state[0]
        state = new_state
        gate_steps[t] = gates
    output = torch.stack(outputs)  # (T, B, H)
    if not record:
        return output, state, None
    per_gate = [torch.stack(g, dim=1) for g in zip(*gate_steps)]  # each (B, T, H)
    return output, state, per_gate


ScanDirection = Callable[[int, int, torch.Tensor, State], tuple[torch.Tensor, State, list | None]]


def run_stack(
    x: torch.Tensor,
    initial: Sequence[State],
    scan_direction: ScanDirection,
    *,
    num_layers: int,
    num_directions: int,
    dropout: float,
    training: bool,
) -> tuple[torch.Tensor, list[State], list[list[torch.Tensor] | None]]:
    """Drive a stack: each layer reads the concatenated outputs of the one below.

    x (T, B, I); initial: one state per layer × direction (layer-major).
    scan_direction(layer, direction, x, state) runs one direction over the whole sequence and
    returns its output (T, B, H), final state and gates (a list of (B, T, H) tensors, or None);
    any kernel fits here (`scan` for the reference, the fused kernel, …).
    Returns output (T, B, D·H), final states and gates, both layer-major. Dropout with probability
    `dropout` is applied to every layer's output but the last, in training only, as torch.nn.
    """
    finals: list[State] = []
    gates: list[list[torch.Tensor] | None] = []
    for layer in range(num_layers):
        if layer > 0 and dropout > 0 and training:
            x = F.dropout(x, p=dropout, training=True)
        outputs = []
        for direction in range(num_directions):
            out, final, layer_gates = scan_direction(layer, direction, x, initial[layer * num_directions + direction])
            outputs.append(out)
            finals.append(final)
            gates.append(layer_gates)
        x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (T, B, D·H)
    return x, finals, gates


def stack_layers(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack per layer × direction tensors on a new first axis; a view when there is only one."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)
