"""`grukit export RUN_DIR`: a trained run's whole model — recurrent backbone and read-out, as
`grukit evaluate` rebuilds it — as a file other runtimes load, checked on the run's own test data.

    --onnx FILE          ONNX (opset 14): inputs "input" (B, T, I) and "hx" (L·D, B, H), outputs
                         "prediction" and "h_n"; B and T dynamic. GRU (both reset variants: ONNX's
                         GRU operator with linear_before_reset 1 or 0, `io.onnx`), stacked and
                         bidirectional, by grukit's own graph builder; LSTM ("hx" then "cx") and RNN
                         through torch.onnx from their torch.nn equivalents. GRU-D and minGRU have
                         no ONNX operator and are refused; token-input models (text) too, their
                         one-hot reading being a lookup ONNX's recurrent operators do not take.
    --torch-export FILE  a torch.export program (`torch.export.save`), batch size dynamic, the
                         number of steps that of the run's test sequences; its backbone is torch's
                         recurrent op (the reference recurrence for GRU reset="before" and GRU-D),
                         so it loads wherever torch does, without grukit.

Both read whole sequences (no lengths). The command runs each file it wrote — onnxruntime,
`torch.export.load` — on up to 64 of the run's test sequences and reports the largest difference
from grukit's output. Files are written atomically; an existing one only with overwrite.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grukit.errors import InputError
from grukit.io.atomic import write_atomic
from grukit.nn.gru import GRU
from grukit.nn.mingru import MinGRU
from grukit.training.runs import load_run

CHECKED_SEQUENCES = 64


@dataclass(frozen=True)
class Exported:
    path: Path
    kind: str  # "ONNX" or "torch.export"
    sequences: int  # test sequences it was run on
    largest_difference: float  # max |exported − grukit| over their predictions


def export_run(run_dir, *, onnx_path=None, torch_export_path=None, overwrite: bool = False) -> list[Exported]:
    """Write the files asked for (see the module docstring) and check each; returns what was written."""
    if onnx_path is None and torch_export_path is None:
        raise InputError("name a file to write: --onnx FILE and/or --torch-export FILE")
    for path in (onnx_path, torch_export_path):
        if path is not None and Path(path).exists() and not overwrite:
            raise InputError(f"{path} exists; pass --overwrite to replace it")
    run = load_run(run_dir)
    model = run.model.eval()
    data = run.task.build(seed=run.seed)
    inputs = data.test.inputs[:CHECKED_SEQUENCES]
    with torch.no_grad():
        expected = model(inputs).numpy()
    written = []
    if onnx_path is not None:
        blob = onnx_bytes(model, inputs)
        write_atomic(onnx_path, lambda stream: stream.write(blob), mode="wb")
        got = _run_onnx(Path(onnx_path), model, inputs.numpy())
        written.append(Exported(Path(onnx_path), "ONNX", len(inputs), float(np.abs(got - expected).max())))
    if torch_export_path is not None:
        program = _program(model, inputs)
        write_atomic(torch_export_path, lambda stream: torch.export.save(program, stream), mode="wb")
        loaded = torch.export.load(str(torch_export_path)).module()
        with torch.no_grad():
            got = loaded(inputs).numpy()
        written.append(Exported(Path(torch_export_path), "torch.export", len(inputs),
                                float(np.abs(got - expected).max())))
    return written


def onnx_bytes(model, example: torch.Tensor) -> bytes:
    """The serialised ONNX model of a SequenceModel (see the module docstring)."""
    config = model.config
    if config.token_inputs:
        raise InputError("this run's model reads symbol ids one-hot, which ONNX's recurrent operators do not take: "
                         "export it with --torch-export")
    if model.irregular:
        raise InputError(f"ONNX has no operator for the {config.cell} model's decays and imputation: export it "
                         "with --torch-export")
    if config.readout not in ("last", "sequence"):
        raise InputError(f"readout={config.readout!r} has no ONNX export; use --torch-export")
    recurrent = model.recurrent
    if isinstance(recurrent, MinGRU):
        raise InputError("ONNX has no operator for minGRU's scan: export the mingru model with --torch-export")
    if isinstance(recurrent, GRU):
        from grukit.io.onnx import gru_model_to_onnx

        return gru_model_to_onnx(recurrent, model.head.weight, model.head.bias, readout=config.readout)
    return _torch_onnx(model, example)


class _TorchPeer(torch.nn.Module):
    """A SequenceModel's LSTM or RNN as its torch.nn equivalent + the same head, with the state as
    inputs and outputs (what torch.onnx traces)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.recurrent, self.head = model.recurrent.to_torch(), model.head
        self.readout, self.directions = model.config.readout, 2 if model.config.bidirectional else 1

    def forward(self, inputs, *state):
        output, final = self.recurrent(inputs, state if len(state) > 1 else state[0])
        h_n = final[0] if isinstance(final, tuple) else final
        if self.readout == "sequence":
            prediction = self.head(output)
        else:
            prediction = self.head(torch.cat(list(h_n[-self.directions :]), dim=-1))
        return (prediction, *(final if isinstance(final, tuple) else (final,)))


def _torch_onnx(model, example: torch.Tensor) -> bytes:
    peer = _TorchPeer(model).eval()
    states = _zero_states(model, len(example))
    names = ["hx", "cx"][: len(states)]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(peer, (example, *states), buffer, dynamo=False, input_names=["input", *names],
                          output_names=["prediction", "h_n", *(["c_n"] if len(states) > 1 else [])],
                          dynamic_axes={"input": {0: "B", 1: "T"}, **{n: {1: "B"} for n in names},
                                        "prediction": {0: "B"}}, opset_version=14)
    return buffer.getvalue()


def _zero_states(model, batch: int) -> tuple[torch.Tensor, ...]:
    config = model.config
    shape = (config.num_layers * (2 if config.bidirectional else 1), batch, config.hidden_size)
    count = 2 if config.cell == "lstm" else 1
    return tuple(torch.zeros(shape) for _ in range(count))


def _run_onnx(path: Path, model, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input": inputs.astype(np.float32)}
    for node, state in zip(session.get_inputs()[1:], _zero_states(model, len(inputs)), strict=True):
        feeds[node.name] = state.numpy()
    return session.run(["prediction"], feeds)[0]


def _program(model, example: torch.Tensor):
    """The torch.export program of a copy of the model whose backbone runs torch's op (or, where it
    has none, the reference recurrence), so the file loads wherever torch does, without grukit's
    custom operator."""
    import copy

    from torch.export import Dim

    portable = copy.deepcopy(model)
    recurrent = portable.recurrent
    native = not portable.irregular and getattr(recurrent, "_native_refusal", lambda: "none")() is None
    recurrent.backend = "torch" if native else "reference"
    if isinstance(recurrent, MinGRU):  # its log-space scan is torch ops
        recurrent.scan = "log"
    try:
        return torch.export.export(portable, (example,), dynamic_shapes={"inputs": {0: Dim("batch")}})
    except Exception as error:  # noqa: BLE001 - any tracing failure is this model's
        raise InputError(f"torch.export cannot trace this run's {model.config.cell} model: "
                         f"{type(error).__name__}: {str(error).splitlines()[0]}") from None
