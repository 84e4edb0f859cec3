"""GRUCell equals torch.nn.GRUCell; GRU.step streams the same states as forward; traces are right."""

import pytest
import torch

import grukit


@pytest.mark.parametrize("backend", ["auto", "reference", "torch"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_equals_torch(backend, bias):
    peer = torch.nn.GRUCell(3, 4, bias=bias, dtype=torch.float64)
    cell = grukit.GRUCell(3, 4, bias=bias, backend=backend, dtype=torch.float64)
    cell.load_state_dict(peer.state_dict())
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    torch.testing.assert_close(cell(x, h), peer(x, h), rtol=0, atol=1e-12)
    torch.testing.assert_close(cell(x[0]), peer(x[0]), rtol=0, atol=1e-12)  # unbatched, zero state


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_step_streams_the_forward_pass(reset, backend):
    gru = grukit.GRU(3, 4, num_layers=3, reset=reset, backend=backend, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, h_n = gru(x)
    state = None
    for t in range(6):
        y, state = gru.step(x[t], state)
        torch.testing.assert_close(y, out[t], rtol=0, atol=1e-12)
    torch.testing.assert_close(state, h_n, rtol=0, atol=1e-12)
    y, s = gru.step(x[0, 0])  # unbatched
    assert y.shape == (4,) and s.shape == (3, 4)


@pytest.mark.parametrize("reset", ["after", "before"])
def test_trace_reproduces_the_states(reset):
    gru = grukit.GRU(3, 4, reset=reset, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 4])
    out, h_n, trace = gru(x, lengths=lengths, return_gates=True)
    for field in (trace.reset, trace.keep, trace.update, trace.candidate):
        assert field.shape == (1, 2, 6, 4)
    assert torch.isnan(trace.keep[0, 1, 4:]).all() and not torch.isnan(trace.keep[0, 1, :4]).any()
    # h_t = (1 − u) h_{t−1} + u ñ, step by step, from the trace alone
    h = torch.zeros(2, 4, dtype=torch.float64)
    for t in range(4):
        u, n = trace.update[0, :, t], trace.candidate[0, :, t]
        h = (1 - u) * h + u * n
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-12)
    # the gates equal those of a single cell step
    cell = grukit.GRUCell(3, 4, reset=reset, dtype=torch.float64)
    cell.load_state_dict({k[:-3]: v for k, v in gru.state_dict().items()})
    _, gates = cell.gates(x[0])
    torch.testing.assert_close(trace.reset[0, :, 0], gates.reset, rtol=0, atol=1e-14)
    torch.testing.assert_close(trace.keep[0, :, 0], gates.keep, rtol=0, atol=1e-14)


def test_timescale_of_a_constant_gate():
    # u = 1 − e^(−1/10) forgets a factor e in 10 steps; u = 1/2 halves each step: τ = 1/ln 2
    keep = torch.tensor([torch.e ** -0.1, 0.5], dtype=torch.float64)
    trace = grukit.GRUTrace(reset=keep, keep=keep, candidate=keep)
    torch.testing.assert_close(trace.timescale(), torch.tensor([10.0, 1 / 0.6931471805599453],
                                                                 dtype=torch.float64))


def test_trace_layout_stacked_bidirectional_unbatched():
    gru = grukit.GRU(3, 4, num_layers=2, bidirectional=True)
    _, _, trace = gru(torch.randn(5, 3), return_gates=True)
    assert trace.reset.shape == (4, 5, 4)
    out, _, batched = gru(torch.randn(5, 2, 3), return_gates=True)
    assert batched.candidate.shape == (4, 2, 5, 4)


def test_lstm_trace():
    lstm = grukit.LSTM(3, 4, num_layers=2)
    out, (h, c), trace = lstm(torch.randn(5, 2, 3), return_gates=True)
    assert trace.forget.shape == (2, 2, 5, 4) and set(trace.as_dict()) == {"input", "forget", "cell", "output"}


def test_dropout_between_layers_only_in_training():
    gru = grukit.GRU(3, 4, num_layers=2, dropout=0.5, backend="reference")
    x = torch.randn(5, 2, 3)
    gru.eval()
    assert torch.equal(gru(x)[0], gru(x)[0])
    gru.train()
    assert not torch.equal(gru(x)[0], gru(x)[0])
