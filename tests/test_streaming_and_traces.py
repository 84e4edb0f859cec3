"""GRUCell equals torch.nn.GRUCell; GRU.step streams the same states as forward; traces are right."""

import pytest
import torch

import grukit

CELL_BACKENDS = ["auto", "reference", "torch", "fused"]
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.mark.parametrize("backend", CELL_BACKENDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("grad", [False, True])
def test_cell_equals_torch(backend, bias, dtype, grad):
    """Every path of GRUCell — compiled cell (no grad), T = 1 kernel (fused, grad), torch op,
    reference — gives torch.nn.GRUCell's h' and, with autograd, its gradients."""
    peer = torch.nn.GRUCell(3, 4, bias=bias, dtype=dtype)
    cell = grukit.GRUCell(3, 4, bias=bias, backend=backend, dtype=dtype)
    cell.load_state_dict(peer.state_dict())
    x, h = torch.randn(2, 3, dtype=dtype), torch.randn(2, 4, dtype=dtype)
    atol = TOLERANCE[dtype]
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(cell(x, h), peer(x, h), rtol=0, atol=atol)
        torch.testing.assert_close(cell(x[0]), peer(x[0]), rtol=0, atol=atol)  # unbatched, zero state
    if grad:
        xs, hs = (x.clone().requires_grad_(), h.clone().requires_grad_()), (x.clone().requires_grad_(),
                                                                             h.clone().requires_grad_())
        (cell(*xs) ** 2).sum().backward()
        (peer(*hs) ** 2).sum().backward()
        for mine, theirs in [*zip(xs, hs), *zip(cell.parameters(), peer.parameters())]:
            torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=10 * atol)


@pytest.mark.parametrize("backend", ["fused", "auto"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_cell_equals_the_reference_for_reset_before(backend, dtype, batch):
    ref = grukit.GRUCell(5, 7, reset="before", backend="reference", dtype=dtype)
    cell = grukit.GRUCell(5, 7, reset="before", backend=backend, dtype=dtype)
    cell.load_state_dict(ref.state_dict())
    x, h = torch.randn(batch, 5, dtype=dtype), torch.randn(batch, 7, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h), ref(x, h), rtol=0, atol=TOLERANCE[dtype])


def test_compiled_cell_is_what_runs_without_grad(monkeypatch):
    """Guards the equality tests above: they must exercise the compiled cell, not a fallback."""
    import grukit.kernels.gru_scan

    calls = []
    real = grukit.kernels.gru_scan._cell_step
    monkeypatch.setattr(grukit.kernels.gru_scan, "_cell_step", lambda *args: calls.append(1) or real(*args))
    cell, gru = grukit.GRUCell(3, 4), grukit.GRU(3, 4, 2)
    with torch.no_grad():
        cell(torch.randn(1, 3))
        gru.step(torch.randn(1, 3))
    assert len(calls) == 3  # one cell, two layers


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("backend", ["auto", "reference", "fused"])
@pytest.mark.parametrize("grad", [True, False])
def test_step_streams_the_forward_pass(reset, backend, grad):
    gru = grukit.GRU(3, 4, num_layers=3, reset=reset, backend=backend, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, h_n = gru(x)
    state = None
    with torch.set_grad_enabled(grad):
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


def test_compiled_cell_sees_every_change_of_the_weights():
    """Its prepared (transposed) weights follow in-place updates, load_state_dict and .data swaps."""
    cell, peer = grukit.GRUCell(3, 4), torch.nn.GRUCell(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)

    def check():
        peer.load_state_dict(cell.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(cell(x, h), peer(x, h), rtol=0, atol=1e-5)

    check()
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.5)
    cell(x, h).sum().backward()
    optimizer.step()  # in place
    check()
    cell.load_state_dict(grukit.GRUCell(3, 4).state_dict())  # copied in place
    check()
    cell.weight_hh.data = torch.randn(12, 4)  # new storage
    check()


@pytest.mark.parametrize("reset", ["after", "before"])
def test_lean_streaming_call_equals_the_validated_path(monkeypatch, reset):
    """GRUCell and GRU.step take a lean path for the plain streaming call (contiguous, no grad, state
    given); it gives exactly what the validated path gives, and anything unusual leaves it."""
    import grukit.nn.gru

    torch.manual_seed(0)
    cell, gru = grukit.GRUCell(3, 4, reset=reset), grukit.GRU(3, 4, 2, reset=reset)
    x, h, state = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 2, 4)
    taken = []
    real = grukit.nn.gru._lean_step_kernel
    monkeypatch.setattr(grukit.nn.gru, "_lean_step_kernel", lambda *a, **k: taken.append(real(*a, **k)) or taken[-1])
    with torch.no_grad():
        lean_cell, (lean_y, lean_state) = cell(x, h), gru.step(x, state)
        assert all(kernel is not None for kernel in taken) and len(taken) == 2
        monkeypatch.setattr(grukit.nn.gru, "_lean_step_kernel", lambda *a, **k: None)
        torch.testing.assert_close(lean_cell, cell(x, h), rtol=0, atol=0)
        y, s = gru.step(x, state)
        torch.testing.assert_close((lean_y, lean_state), (y, s), rtol=0, atol=0)
    monkeypatch.setattr(grukit.nn.gru, "_lean_step_kernel", real)
    plain = dict(input_size=3, hidden_size=4, backend="auto")
    with torch.no_grad():
        assert real(x, h, cell._parameters, **plain) is not None  # the plain call qualifies, so each case below
        for odd_x, odd_h, odd in ((x.double(), h, plain), (x.t().contiguous().t(), h, plain),  # dtype, layout
                                  (x, h[:, :3], plain), (x, h, {**plain, "backend": "reference"})):  # shape, backend
            assert real(odd_x, odd_h, cell._parameters, **odd) is None
    assert real(x, h, cell._parameters, **plain) is None  # grad enabled, weights requiring it: autograd's path
    with pytest.raises(grukit.InputError, match="input has a non-finite value"), torch.no_grad():
        cell(torch.full((2, 3), float("nan")), h)
    with pytest.raises(grukit.InputError, match="state has a non-finite value"), torch.no_grad():
        gru.step(x, torch.full((2, 2, 4), float("inf")))
