"""grukit: faithful, fast and inspectable gated recurrent units for PyTorch.

Names are imported on first use (PEP 562), so `import grukit` and `grukit --help` stay instant
and torch is loaded only when a model is touched.

The package is layered, bottom to top (a module imports only from layers below its own; the
import contract in pyproject.toml is checked by the tests):

    errors, registry   the error type, argument checks, and the table of every model
    kernels            compiled CPU scans of the GRU and GRU-D (numba), BLAS, threads
    io                 save/load (safetensors + JSON), Keras interop, ONNX export, atomic writes
    nn                 cells, the reference loop, GRU, RNN, LSTM, GRU-D, traces, validation
    data               readers of users' files and of the shipped real data sets
    forecasting        forecast windows, scaling, classical baselines
    tasks              the benchmarks and applications: data, metric, baselines
    training           the task model, the Lightning trainer, comparisons
    analysis           gradient flow, Jacobians, timescales and the other analyses
    experiments        the literature's claims, each measured end to end (`grukit experiment`)
    app                the command line, the demo, the forecasting pipeline, inspect, benchmarks
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GRU": "grukit.nn.gru",
    "GRUCell": "grukit.nn.gru",
    "GRUConfig": "grukit.nn.gru",
    "GRUD": "grukit.nn.grud",
    "GRUDConfig": "grukit.nn.grud",
    "GRUDTrace": "grukit.nn.grud",
    "RNN": "grukit.nn.baselines",
    "LSTM": "grukit.nn.baselines",
    "MinGRU": "grukit.nn.mingru",
    "MinGRUTrace": "grukit.nn.trace",
    "mingru_scan": "grukit.kernels.mingru_scan",
    "RecurrentConfig": "grukit.nn.base",
    "count_parameters": "grukit.nn.base",
    "state_update": "grukit.nn.cells",
    "chrono_init_": "grukit.nn.init",
    "open_reset_gate_": "grukit.nn.init",
    "scale_candidate_": "grukit.nn.init",
    "GRUTrace": "grukit.nn.trace",
    "LSTMTrace": "grukit.nn.trace",
    "InputError": "grukit.errors",
    "load": "grukit.io.serialization",
    "save": "grukit.io.serialization",
    "torch_gru_to_keras": "grukit.io.keras",
    "keras_gru_to_torch": "grukit.io.keras",
    "gru_to_keras": "grukit.io.keras",
    "load_keras_weights": "grukit.io.keras",
    "gru_to_onnx": "grukit.io.onnx",
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
