"""Recurrent backbone + linear read-out: the model that every task and the trainer share.

    SequenceModel(ModelConfig(cell="gru", input_size=I, hidden_size=H, output_size=O, ...))
      input (B, T, I) batch-first, lengths (B,) optional
      readout="last":     (B, O)     from the top layer's final state (both directions' when
                                     bidirectional: [h_fwd(T_b); h_bwd(0)]), lengths respected
      readout="sequence": (B, T, O)  from every step's output (D·H features)
      readout="ahead":    (B, O)     from each of the last `ahead` steps' outputs, O / ahead values
                                     each, step by step (a forecast whose known-future inputs are the
                                     window's last h steps: step k's values read where step k's
                                     inputs were just seen); full-length sequences only
      head_dropout p:     dropout on the features the head reads, while training
      token_inputs:       input (B, T) symbol ids instead, read one-hot over I symbols

The backbone is grukit's GRU, LSTM or RNN with one forward contract, so a comparison swaps the
`cell` name and nothing else. The GRU-D family ("grud", and the paper's baselines "gru-mean",
"gru-forward", "gru-simple") reads inputs laid out as [values; mask; gaps δ] (3V features, as the
`clinical` task builds them), standardised so that the empirical mean x̄ is 0; one layer, one
direction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from grukit.errors import InputError
from grukit.nn.init import chrono_init_, open_reset_gate_, scale_candidate_
from grukit.registry import model_entry, module_class

Readout = Literal["last", "sequence", "ahead"]


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "gru"  # which recurrence: a name in grukit.registry.MODELS (gru, lstm, rnn, grud, …)
    input_size: int = 1  # I, features per step (set from the task)
    hidden_size: int = 64  # H, units per layer and direction
    output_size: int = 1  # O, read-out features (set from the task)
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers
    head_dropout: float = 0.0  # on the features the linear head reads (training only); the GRU-D
    #                            authors' code drops 0.3 there for GRU-D and its baselines alike
    readout: Readout = "last"  # one prediction per sequence, one per step, or one from each of the last `ahead`
    ahead: int = 0  # readout="ahead": the steps read out
    reset: Literal["after", "before"] = "after"  # GRU only: where the reset gate acts
    backend: str = "auto"  # grukit kernel backend (GRU: auto/reference/torch/fused)
    token_inputs: bool = False  # inputs are symbol ids (B, T), read one-hot over input_size symbols
    chrono: float = 0.0  # > 0: chrono initialisation of the gate biases with this T_max (grukit.chrono_init_)
    candidate_norm: float = 0.0  # > 0, GRU only: W_hn (U_h) rescaled to this spectral norm at initialisation
    open_reset: bool = False  # GRU only: the reset gate pinned open, r ≡ 1, and not trained

    def __post_init__(self) -> None:
        entry = model_entry(self.cell)
        if self.readout not in ("last", "sequence", "ahead"):
            raise InputError(f"readout must be 'last', 'sequence' or 'ahead', got {self.readout!r}")
        if self.readout == "ahead" and (self.ahead < 1 or self.output_size % self.ahead):
            raise InputError(f"readout='ahead' reads the last `ahead` ≥ 1 steps, each output_size / ahead values: "
                             f"got ahead={self.ahead}, output_size={self.output_size}")
        if not entry.stacks and (self.num_layers != 1 or self.bidirectional):
            raise InputError(f"the {self.cell} model has one layer and one direction (the paper's)")
        if (self.candidate_norm or self.open_reset) and entry.module != "GRU":
            raise InputError(f"candidate_norm and open_reset apply to the GRU's gates; the {self.cell} model has "
                             "other ones")
        if not 0.0 <= self.head_dropout < 1.0:
            raise InputError(f"head_dropout must be in [0, 1), got {self.head_dropout}")

    def as_dict(self) -> dict:
        return asdict(self)


class SequenceModel(nn.Module):
    """A grukit recurrent backbone with a linear head; see the module docstring for shapes."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        entry = model_entry(config.cell)
        self.irregular = entry.inputs == "irregular"
        make = module_class(entry.module)
        settings = {name: getattr(config, name) for name in entry.settings}
        if self.irregular:
            if config.input_size % 3:
                raise InputError(f"the {config.cell} model reads [values; mask; gaps]: input_size must be 3·V, "
                                 f"got {config.input_size}")
            self.recurrent = make(config.input_size // 3, config.hidden_size, batch_first=True, **entry.options,
                                  **settings)
        else:
            self.recurrent = make(config.input_size, config.hidden_size, num_layers=config.num_layers,
                                  batch_first=True, dropout=config.dropout, bidirectional=config.bidirectional,
                                  **entry.options, **settings)
        if config.chrono:
            chrono_init_(self.recurrent, config.chrono)
        if config.candidate_norm:
            scale_candidate_(self.recurrent, config.candidate_norm)
        if config.open_reset:
            open_reset_gate_(self.recurrent)
        directions = 2 if config.bidirectional else 1
        self.drop = nn.Dropout(config.head_dropout)
        per_step = config.output_size // config.ahead if config.readout == "ahead" else config.output_size
        self.head = nn.Linear(directions * config.hidden_size, per_step)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """What the backbone reads: the inputs, or their one-hot rows (B, T, I) for token inputs (B, T)."""
        if not self.config.token_inputs:
            return inputs
        if inputs.dtype not in (torch.int32, torch.int64) or inputs.dim() != 2:
            raise InputError(f"this model reads symbol ids (B, T) as integers, got {inputs.dtype} of shape "
                             f"{tuple(inputs.shape)}")
        return F.one_hot(inputs, self.config.input_size).to(self.head.weight.dtype)

    def gate_trace(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None):
        """The backbone's gate trace on these inputs (GRUTrace, LSTMTrace or GRUDTrace), or None for a
        backbone without gates (the RNN). No gradients."""
        if getattr(self.recurrent, "trace_class", True) is None:
            return None
        inputs = self.features(inputs)
        with torch.no_grad():
            if self.irregular:
                values, mask, gaps = inputs.chunk(3, dim=-1)
                return self.recurrent(values, mask=mask, gaps=gaps, lengths=lengths, return_gates=True)[2]
            return self.recurrent(inputs, lengths=lengths, return_gates=True)[2]

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        inputs = self.features(inputs)
        if self.irregular:
            values, mask, gaps = inputs.chunk(3, dim=-1)
            output, final = self.recurrent(values, mask=mask, gaps=gaps, lengths=lengths)
        else:
            output, final = self.recurrent(inputs, lengths=lengths)  # (B, T, D·H); (L·D, B, H)
        if self.config.readout == "sequence":
            return self.head(self.drop(output))  # (B, T, O)
        if self.config.readout == "ahead":
            if lengths is not None:
                raise InputError("readout='ahead' reads the last steps of full-length sequences: no lengths")
            return self.head(self.drop(output[:, -self.config.ahead :])).flatten(1)  # (B, ahead · O/ahead)
        h_n = final[0] if isinstance(final, tuple) else final  # the LSTM's (h_n, c_n)
        directions = 2 if self.config.bidirectional else 1
        top = h_n[-directions:]  # (D, B, H): the top layer's final state per direction
        return self.head(self.drop(torch.cat(list(top), dim=-1)))  # (B, O)
