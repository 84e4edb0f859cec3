"""grukit: faithful, fast and inspectable gated recurrent units for PyTorch.

Names are imported on first use (PEP 562), so `import grukit` and `grukit --help` stay instant
and torch is loaded only when a model is touched.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GRU": "grukit.gru",
    "GRUCell": "grukit.gru",
    "GRUConfig": "grukit.gru",
    "GRUD": "grukit.grud",
    "GRUDTrace": "grukit.grud",
    "RNN": "grukit.baselines",
    "LSTM": "grukit.baselines",
    "RecurrentConfig": "grukit.base",
    "count_parameters": "grukit.base",
    "state_update": "grukit.cells",
    "GRUTrace": "grukit.trace",
    "LSTMTrace": "grukit.trace",
    "InputError": "grukit.validation",
    "load": "grukit.serialization",
    "save": "grukit.serialization",
    "torch_gru_to_keras": "grukit.interop",
    "keras_gru_to_torch": "grukit.interop",
    "gru_to_keras": "grukit.interop",
    "load_keras_weights": "grukit.interop",
    "gru_to_onnx": "grukit.onnx_export",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grukit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
