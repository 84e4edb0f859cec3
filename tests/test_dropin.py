"""grukit.GRU where torch.nn.GRU goes: every dtype torch runs, and the RNNBase methods user code calls."""

import pytest
import torch

import grukit
from grukit.errors import InputError

HALF_DTYPES = {torch.float16: 2e-2, torch.bfloat16: 8e-2}  # tolerances: a few units of their last digit


@pytest.mark.parametrize("dtype", list(HALF_DTYPES), ids=str)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("lengths", [None, [5, 3]])
def test_half_precision_runs_on_auto_and_matches_torch(dtype, layers, bidirectional, lengths):
    torch.manual_seed(0)
    peer = torch.nn.GRU(3, 8, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(2, 5, 3)
    expected = grukit.GRU.from_torch(peer, backend="reference").double()(x.double(), lengths=lengths)
    for backend in ("auto", "reference", "torch"):
        model = grukit.GRU.from_torch(peer, backend=backend).to(dtype)
        output, h_n = model(x.to(dtype), lengths=None if lengths is None else torch.tensor(lengths))
        assert output.dtype == h_n.dtype == dtype
        torch.testing.assert_close(output.double(), expected[0], atol=HALF_DTYPES[dtype], rtol=0)
        torch.testing.assert_close(h_n.double(), expected[1], atol=HALF_DTYPES[dtype], rtol=0)
    if lengths is None:  # torch.nn.GRU itself, at its own precision
        torch.testing.assert_close(peer.to(dtype)(x.to(dtype))[0].double(), expected[0], atol=HALF_DTYPES[dtype],
                                   rtol=0)


@pytest.mark.parametrize("dtype", list(HALF_DTYPES), ids=str)
def test_the_fused_kernel_refuses_half_precision_by_name(dtype):
    model = grukit.GRU(3, 4, backend="fused").to(dtype)
    with pytest.raises(InputError, match=rf"fused kernel computes in float32 or float64, the module is "
                                         rf"{str(dtype).removeprefix('torch.')}; use backend='reference' or "
                                         "backend='auto'"):
        model(torch.randn(5, 2, 3, dtype=dtype))
    cell = grukit.GRUCell(3, 4).to(dtype)  # auto: torch's cell op
    assert cell(torch.randn(2, 3, dtype=dtype)).dtype == dtype
    with pytest.raises(InputError, match="float32 or float64"):
        grukit.GRUCell(3, 4, backend="fused").to(dtype)(torch.randn(2, 3, dtype=dtype))
    grud = grukit.GRUD(3, 4).to(dtype)
    values = torch.randn(2, 5, 3, dtype=dtype)
    assert grud(values, mask=torch.ones_like(values), gaps=torch.ones_like(values))[0].dtype == dtype


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("module", ["GRU", "LSTM", "RNN"])
def test_all_weights_and_flatten_parameters_as_torch(module, bias):
    model = getattr(grukit, module)(3, 4, num_layers=2, bidirectional=True, bias=bias)
    peer = model.to_torch()
    assert [[name for name in names] for names in peer._all_weights] == [
        [name for name, p in model.named_parameters() if any(p is w for w in ws)] for ws in model.all_weights]
    assert all(p is getattr(model, name) for ws, names in zip(model.all_weights, peer._all_weights, strict=True)
               for p, name in zip(ws, names, strict=True))
    x = torch.randn(4, 2, 3)
    before, pointers = model(x)[0], [p.data_ptr() for p in model.parameters()]
    assert model.flatten_parameters() is None  # common in code written for cuDNN; nothing to compact here
    assert [p.data_ptr() for p in model.parameters()] == pointers
    torch.testing.assert_close(model(x)[0], before, rtol=0, atol=0)
