"""`grukit export`: a run's whole model as ONNX or a torch.export program, equal to grukit's output."""

import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from grukit.app.export import onnx_bytes
from grukit.errors import InputError
from grukit.training.model import ModelConfig, SequenceModel

CONFIGS = [dict(cell="gru", reset=reset, num_layers=layers, bidirectional=bidirectional, readout=readout)
           for reset in ("after", "before") for layers in (1, 2) for bidirectional in (False, True)
           for readout in ("last",)] + [
    dict(cell="gru", reset="before", num_layers=2, bidirectional=True, readout="sequence"),
    dict(cell="lstm", num_layers=2, bidirectional=True, readout="last"),
    dict(cell="lstm", readout="sequence"), dict(cell="rnn", num_layers=2, readout="last")]


def _model(settings):
    torch.manual_seed(0)
    return SequenceModel(ModelConfig(input_size=3, hidden_size=5, output_size=2, **settings)).eval()


@pytest.mark.parametrize("settings", CONFIGS, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_onnxruntime_runs_the_whole_model_with_dynamic_batch_and_steps(settings):
    model = _model(settings)
    session = onnxruntime.InferenceSession(onnx_bytes(model, torch.randn(4, 6, 3)), providers=["CPUExecutionProvider"])
    directions = 2 if settings.get("bidirectional") else 1
    for batch, steps in ((4, 6), (3, 11)):  # other sizes than traced with
        x = torch.randn(batch, steps, 3)
        states = {node.name: np.zeros((settings.get("num_layers", 1) * directions, batch, 5), np.float32)
                  for node in session.get_inputs()[1:]}
        got = session.run(["prediction"], {"input": x.numpy(), **states})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, model(x).numpy(), rtol=0, atol=1e-5)


def test_the_onnx_state_carries_a_stream_step_by_step():
    """Streaming: one step at a time, h_n fed back as hx, gives the whole-sequence state."""
    model = _model(dict(cell="gru", num_layers=2, readout="last"))
    session = onnxruntime.InferenceSession(onnx_bytes(model, torch.randn(2, 5, 3)), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 7, 3)
    state = np.zeros((2, 2, 5), np.float32)
    for t in range(7):
        prediction, state = session.run(["prediction", "h_n"], {"input": x[:, t : t + 1].numpy(), "hx": state})
    with torch.no_grad():
        np.testing.assert_allclose(prediction, model(x).numpy(), rtol=0, atol=1e-5)


def test_what_onnx_cannot_express_is_refused_by_name():
    with pytest.raises(InputError, match="no operator for the grud model's decays"):
        onnx_bytes(SequenceModel(ModelConfig(cell="grud", input_size=6, hidden_size=4)), torch.randn(2, 3, 6))
    with pytest.raises(InputError, match="reads symbol ids one-hot"):
        onnx_bytes(SequenceModel(ModelConfig(input_size=5, hidden_size=4, token_inputs=True)),
                   torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("settings", [CONFIGS[0], CONFIGS[7], dict(cell="grud", input_size=6)],
                         ids=["gru", "gru-before-2L-bi", "grud"])
def test_torch_export_round_trip(tmp_path, settings):
    from grukit.app.export import _program

    settings = dict(settings)
    size = settings.pop("input_size", 3)
    torch.manual_seed(0)
    model = SequenceModel(ModelConfig(input_size=size, hidden_size=5, output_size=2, **settings)).eval()
    def inputs(batch):  # GRU-D reads [values; mask; gaps]: a 0/1 mask, gaps ≥ 0
        if size == 3:
            return torch.randn(batch, 6, 3)
        return torch.cat([torch.randn(batch, 6, 2), (torch.rand(batch, 6, 2) > 0.3).float(), torch.rand(batch, 6, 2)],
                         dim=-1)

    torch.export.save(_program(model, inputs(4)), tmp_path / "model.pt2")
    loaded = torch.export.load(tmp_path / "model.pt2").module()
    other = inputs(7)  # another batch size
    with torch.no_grad():
        torch.testing.assert_close(loaded(other), model(other), rtol=1e-5, atol=1e-6)


def test_export_command_checks_its_own_files(tmp_path):
    grukit = [sys.executable, "-c", "from grukit.app.cli import main; main()"]
    subprocess.run([*grukit, "train", "adding", "--epochs", "1", "--run-dir", str(tmp_path / "run"), "--set",
                    "train_size=64"], check=True, capture_output=True, cwd=tmp_path)
    done = subprocess.run([*grukit, "export", str(tmp_path / "run"), "--onnx", str(tmp_path / "m.onnx"),
                           "--torch-export", str(tmp_path / "m.pt2")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all("differ from grukit's by at most" in line for line in lines)
    assert all(float(line.rsplit(" ", 1)[1]) < 1e-5 for line in lines)
    again = subprocess.run([*grukit, "export", str(tmp_path / "run"), "--onnx", str(tmp_path / "m.onnx")],
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode != 0 and "exists; pass --overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_an_exported_program_loads_without_grukit(tmp_path):
    from grukit.app.export import _program

    model = _model(dict(cell="gru", num_layers=2, readout="last"))
    x = torch.randn(4, 6, 3)
    torch.export.save(_program(model, x), tmp_path / "model.pt2")
    script = ("import sys, torch\n"
              f"program = torch.export.load({str(tmp_path / 'model.pt2')!r})\n"
              "assert not any(name.startswith('grukit') for name in sys.modules), 'grukit was imported'\n"
              "print(program.module()(torch.zeros(2, 6, 3)).shape)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch.Size([2, 2])"
