"""torch.autograd.gradcheck in float64 through every differentiable input, with lengths."""

import pytest
import torch

import grukit


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradcheck_gru_with_lengths(reset, bidirectional, backend):
    gru = grukit.GRU(3, 4, num_layers=2, bidirectional=bidirectional, reset=reset,
                     backend=backend, dtype=torch.float64)
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(2 * gru.num_directions, 3, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 2, 3])
    params = list(gru.parameters())

    def fn(x, hx, *weights):
        state = dict(zip([n for n, _ in gru.named_parameters()], weights, strict=True))
        out, h_n = torch.func.functional_call(gru, state, (x, hx), {"lengths": lengths})
        return out, h_n

    assert torch.autograd.gradcheck(fn, (x, hx, *params), eps=1e-6, atol=1e-6)


def test_gradcheck_gru_cell_before():
    cell = grukit.GRUCell(3, 4, reset="before", dtype=torch.float64)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: cell(x, h), (x, h))
