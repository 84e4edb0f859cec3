"""The ONNX graph of a GRU computes what the module does, in ONNX Runtime, for every variant."""

import numpy as np
import pytest
import torch

import grukit

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from grukit.io.onnx import gru_to_onnx  # noqa: E402


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("bias", [True, False])
def test_onnxruntime_equals_the_module(reset, layers, bidirectional, bias):
    torch.manual_seed(0)
    gru = grukit.GRU(5, 7, layers, bias=bias, bidirectional=bidirectional, reset=reset)
    session = ort.InferenceSession(gru_to_onnx(gru), providers=["CPUExecutionProvider"])
    for steps, batch in ((6, 3), (11, 1)):  # T and B are dynamic
        x = torch.randn(steps, batch, 5)
        hx = torch.randn(layers * (2 if bidirectional else 1), batch, 7)
        output, h_n = session.run(None, {"input": x.numpy(), "hx": hx.numpy()})
        with torch.no_grad():
            expected_output, expected_h_n = gru(x, hx)
        np.testing.assert_allclose(output, expected_output.numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(h_n, expected_h_n.numpy(), rtol=0, atol=1e-5)
