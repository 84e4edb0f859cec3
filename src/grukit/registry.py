"""Every model grukit knows, registered once: saving and loading, the task model, the command
line's `--model` help and the test matrix all read these two tables.

    MODULES  class name (as `config.json` records it) → "module:attribute" of the class
    MODELS   `--model` name → ModelEntry: which class, the constructor keywords the name fixes,
             what inputs it reads, whether it stacks, and which task-model settings it takes

The module is torch-free (classes are named, and imported on first use by `module_class`), so the
command line lists the models without loading torch. Adding a model is one file under
`grukit/nn/` plus an entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from grukit.errors import InputError

MODULES: dict[str, str] = {
    "GRU": "grukit.nn.gru:GRU",
    "GRUCell": "grukit.nn.gru:GRUCell",
    "RNN": "grukit.nn.baselines:RNN",
    "LSTM": "grukit.nn.baselines:LSTM",
    "GRUD": "grukit.nn.grud:GRUD",
    "MinGRU": "grukit.nn.mingru:MinGRU",
}


@dataclass(frozen=True)
class ModelEntry:
    """One `--model` choice of the task model (`grukit.training.model.SequenceModel`)."""

    name: str  # the --model name
    module: str  # a key of MODULES: the class built
    summary: str  # one line for the command line's help
    inputs: Literal["sequence", "irregular"] = "sequence"  # irregular: [values; mask; gaps δ], 3V features
    stacks: bool = True  # takes num_layers, bidirectional and dropout between layers
    settings: tuple[str, ...] = ()  # task-model settings passed on (ModelConfig fields: reset, backend)
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # keywords the name fixes


def _fixed(**options) -> MappingProxyType:
    return MappingProxyType(options)


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry("gru", "GRU", "grukit.GRU, reset gate after (torch, cuDNN) or before (Cho et al.) the product",
                   settings=("reset", "backend")),
        ModelEntry("lstm", "LSTM", "grukit.LSTM, the comparison baseline"),
        ModelEntry("rnn", "RNN", "grukit.RNN, the vanilla tanh RNN"),
        ModelEntry("mingru", "MinGRU", "grukit.MinGRU (Feng et al. 2024): gates that do not read h, trained as a scan"),
        ModelEntry("grud", "GRUD", "GRU-D (Che et al. 2018): decays toward the mean, mask fed to the gates",
                   inputs="irregular", stacks=False),
        ModelEntry("gru-mean", "GRUD", "GRU-Mean: missing inputs replaced by the empirical mean",
                   inputs="irregular", stacks=False,
                   options=_fixed(imputation="mean", hidden_decay=False, feed_mask=False)),
        ModelEntry("gru-forward", "GRUD", "GRU-Forward: missing inputs carried forward",
                   inputs="irregular", stacks=False,
                   options=_fixed(imputation="forward", hidden_decay=False, feed_mask=False)),
        ModelEntry("gru-simple", "GRUD", "GRU-Simple: input [x̂ carried forward; mask; gaps δ]",
                   inputs="irregular", stacks=False,
                   options=_fixed(imputation="forward", hidden_decay=False, feed_mask=True, feed_gaps=True)),
    )
}


def model_entry(name: str) -> ModelEntry:
    """The entry of `--model name`; an InputError listing the names when there is none."""
    entry = MODELS.get(name)
    if entry is None:
        raise InputError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return entry


def module_class(name: str) -> type:
    """The class registered as `name` in MODULES (imported now)."""
    target = MODULES.get(name)
    if target is None:
        raise InputError(f"unknown module class {name!r}: grukit saves and loads {', '.join(sorted(MODULES))}")
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def model_help() -> str:
    """The `--model` choices as one line each, for help texts."""
    return "; ".join(f"{e.name}: {e.summary}" for e in MODELS.values())
