"""The step map s_t = F(s_{t−1}, d_t) of a sequence module, with its whole state as one vector.

Every analysis that looks inside the recurrence (Jacobians, gradient flow, impulse responses,
fixed points) runs a module one step at a time. The GRU, RNN and LSTM step through their own
forward contract, `module(x_t, hx)`, so the analysis sees exactly what the module computes on
whichever backend it runs; their drive d_t is the input x_t.

    state s (B, S):  GRU, RNN, MinGRU   S = L·H, the layers' h side by side, layer 0 first
                     LSTM       S = 2·L·H, [h of every layer; c of every layer]
                     GRU-D      S = H

GRU-D reads its inputs as [values; mask; gaps δ] (3V features, the layout of the task model and
the `clinical` task). Its imputation x̂_t carries the last observations, which depend on the data
alone, so the recurrence in h is h_t = GRU-step(gi_t, γ_h,t ⊙ h_{t−1}) with the drive
d_t = [gi_t; γ_h,t] (4H) computed once from the whole sequence (`GRUD.step_drive`); the step is
GRU-D's reference step (`GRUD.recurrence_step`), and the states it gives equal the module's own
output on every backend (tested).

Unidirectional modules only: a reverse direction reads the future, so it has no step map.
"""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass, replace

import torch

from grukit.errors import InputError
from grukit.nn.base import RecurrentBase
from grukit.nn.baselines import LSTM
from grukit.nn.grud import GRUD
from grukit.nn.mingru import MinGRU


@dataclass(frozen=True)
class StepMap:
    """F(s, x_t) for `module`; `layers`, `hidden` and `cells` (1, or 2 for the LSTM's (h, c)) size S."""

    module: RecurrentBase
    layers: int  # L
    hidden: int  # H
    cells: int  # state tensors per layer: 1 (h), or 2 for the LSTM (h, c)

    @property
    def size(self) -> int:
        """S, the length of the flattened state."""
        return self.cells * self.layers * self.hidden

    def initial(self, batch: int, *, like: torch.Tensor) -> torch.Tensor:
        """The zero state (B, S) the module starts from when hx is None."""
        return torch.zeros(batch, self.size, dtype=like.dtype, device=like.device)

    def unflatten(self, state: torch.Tensor):
        """(B, S) → the module's hx: (L, B, H), or the LSTM's pair of them."""
        parts = state.reshape(state.shape[0], self.cells, self.layers, self.hidden).permute(1, 2, 0, 3)
        return parts[0].contiguous() if self.cells == 1 else (parts[0].contiguous(), parts[1].contiguous())

    @staticmethod
    def flatten(hx) -> torch.Tensor:
        """The module's h_n (L, B, H), or (h_n, c_n), → (B, S)."""
        parts = hx if isinstance(hx, tuple) else (hx,)
        return torch.cat([p.permute(1, 0, 2).reshape(p.shape[1], -1) for p in parts], dim=1)

    def layer_slice(self, layer: int) -> slice:
        """Where layer `layer`'s h sits in the flattened state."""
        return slice(layer * self.hidden, (layer + 1) * self.hidden)

    def drive(self, x: torch.Tensor) -> torch.Tensor:
        """The per-step drive d (T, B, D) of time-major inputs x (T, B, I): x itself."""
        return x

    def __call__(self, state: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """s_t (B, S) from s_{t−1} (B, S) and the drive d_t (B, D), here x_t (B, I)."""
        step = x_t[:, None] if self.module.batch_first else x_t[None]  # one step, in the module's layout
        _, h_n = self.module(step, self.unflatten(state))
        return self.flatten(h_n)


@dataclass(frozen=True)
class GRUDStepMap(StepMap):
    """GRU-D's h_t = F(h_{t−1}, d_t), d_t = [gi_t; γ_h,t] (4H) from inputs [values; mask; gaps δ]."""

    def drive(self, x: torch.Tensor) -> torch.Tensor:
        """d (T, B, 4H) from time-major x (T, B, 3V) laid out [values; mask; gaps δ], without a graph."""
        values, mask, gaps = x.transpose(0, 1).chunk(3, dim=-1)  # each (B, T, V)
        layout = (lambda t: t) if self.module.batch_first else (lambda t: t.transpose(0, 1))
        with torch.no_grad():  # the analyses differentiate with respect to the state, not the weights
            gi, gamma_h = self.module.step_drive(layout(values), mask=layout(mask), gaps=layout(gaps))
        return torch.cat([gi, gamma_h], dim=-1).transpose(0, 1)

    def __call__(self, state: torch.Tensor, d_t: torch.Tensor) -> torch.Tensor:
        gi, gamma_h = d_t.split([3 * self.hidden, self.hidden], dim=-1)
        return self.module.recurrence_step(state, gi, gamma_h)[0]


def step_map(module) -> StepMap:
    """The step map of a unidirectional grukit GRU, RNN, LSTM or MinGRU, or of a GRU-D."""
    if isinstance(module, GRUD):
        return GRUDStepMap(module, 1, module.hidden_size, 1)
    if isinstance(module, MinGRU):  # its gates read x only: s_t = (1 − u_t) ⊙ s_{t−1} + u_t ⊙ h̃_t per layer
        return StepMap(module, module.num_layers, module.hidden_size, 1)
    if not isinstance(module, RecurrentBase):
        raise InputError(f"the analyses step through grukit's GRU, RNN, LSTM and GRU-D; got a "
                         f"{type(module).__module__}.{type(module).__qualname__}")
    if module.bidirectional:
        raise InputError("a bidirectional module has no step map (its reverse direction reads the future): "
                         "analyse each direction as its own unidirectional module")
    return StepMap(module, module.num_layers, module.hidden_size, 2 if isinstance(module, LSTM) else 1)


def time_major(module, inputs: torch.Tensor) -> torch.Tensor:
    """inputs in the module's layout ((T, B, I), or (B, T, I) with batch_first) → (T, B, I)."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        raise InputError(f"inputs must be a batched 3-d tensor, got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)}")
    return inputs.transpose(0, 1) if getattr(module, "batch_first", False) else inputs


def valid_steps(lengths: torch.Tensor | None, steps: int, batch: int) -> torch.Tensor:
    """(T, B) bool: step t of sequence b is inside its length."""
    if lengths is None:
        return torch.ones(steps, batch, dtype=torch.bool)
    lengths = torch.as_tensor(lengths).cpu()
    if lengths.shape != (batch,) or (lengths < 1).any() or (lengths > steps).any():
        raise InputError(f"lengths must be {batch} values in 1…{steps}, got {lengths.tolist()}")
    return torch.arange(steps)[:, None] < lengths[None, :]


def run_states(step: StepMap, x: torch.Tensor, *, valid: torch.Tensor, start: torch.Tensor | None = None,
               keep_graph: bool = False) -> list[torch.Tensor]:
    """States s_0 … s_T (each (B, S)) over the time-major drive x (T, B, D) (`StepMap.drive`); past a
    sequence's length the state stays as it was (the forward contract's rule). With keep_graph every
    s_t is a graph node whose gradient is retained."""
    state = step.initial(x.shape[1], like=x) if start is None else start
    if keep_graph:
        state = state.detach().requires_grad_(True)
    states = [state]
    for t in range(x.shape[0]):
        new = step(state, x[t])
        state = torch.where(valid[t, :, None].to(new.device), new, state)
        if keep_graph:
            state.retain_grad()
        states.append(state)
    return states


def gate_trace(module, inputs: torch.Tensor, *, lengths: torch.Tensor | None = None):
    """The module's gate trace on `inputs`, or None for a module without one (the RNN). A module on
    the "torch" backend (whose native op hides the gates) is traced by a reference twin with the
    same weights: the same numbers, as the equivalence tests hold."""
    if isinstance(module, GRUD):  # inputs [values; mask; gaps δ]
        values, mask, gaps = inputs.chunk(3, dim=-1)
        with torch.no_grad():
            return module(values, mask=mask, gaps=gaps, lengths=lengths, return_gates=True)[2]
    if getattr(module, "trace_class", None) is None:
        return None
    if getattr(module, "backend", None) == "torch":
        module = twin(module, backend="reference")
    with torch.no_grad():
        return module(inputs, lengths=lengths, return_gates=True)[2]


def twin(module, *, dtype: torch.dtype | None = None, **changes):
    """A copy of a grukit GRU, RNN, LSTM or GRU-D with the same weights and buffers (cast to `dtype`,
    if given) and its config changed by `changes` (e.g. backend="reference"), in the same training mode."""
    weight = next(module.parameters())
    config = replace(module.config, **changes) if is_dataclass(module.config) else {**module.config, **changes}
    copy = type(module).from_config(config, device=weight.device, dtype=dtype or weight.dtype)
    copy.load_state_dict({name: value.to(dtype or value.dtype) for name, value in module.state_dict().items()})
    return copy.train(module.training)


def float64_copy(module):
    """A float64 twin (same weights, same backend), for analyses whose small perturbations or long
    products need the precision."""
    return twin(module, dtype=torch.float64)
