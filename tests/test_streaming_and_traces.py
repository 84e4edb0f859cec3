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


@pytest.mark.parametrize(("backend", "reset"), [(b, r) for b in ("auto", "fused", "torch", "reference")
                                                 for r in ("after", "before") if (b, r) != ("torch", "before")])
def test_plain_streaming_call_equals_the_validated_path(monkeypatch, backend, reset):
    """GRUCell and GRU.step skip the validation for the plain call (batched CPU tensors of the
    module's dtype and shape, state given); the result is exactly the validated path's, and
    anything unusual is validated."""
    import grukit.nn.gru

    torch.manual_seed(0)  # (torch's op has no reset="before": GRUCell refuses that pair, tested elsewhere)
    cell = grukit.GRUCell(3, 4, reset=reset, backend=backend)
    gru = grukit.GRU(3, 4, 2, reset=reset, backend=backend)
    x, h, state = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 2, 4)
    seen = []
    real = grukit.nn.gru._is_plain
    monkeypatch.setattr(grukit.nn.gru, "_is_plain", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    with torch.no_grad():
        plain_cell, (plain_y, plain_state) = cell(x, h), gru.step(x, state)
        assert seen == [True, True]
        monkeypatch.setattr(grukit.nn.gru, "_is_plain", lambda *a, **k: False)
        torch.testing.assert_close(plain_cell, cell(x, h), rtol=0, atol=0)
        torch.testing.assert_close((plain_y, plain_state), gru.step(x, state), rtol=0, atol=0)
    plain = dict(input_size=3, hidden_size=4, layers=None)
    assert real(x, h, cell.weight_ih, **plain)  # the plain call qualifies, so each case below is what differs
    assert real(x, state, gru.weight_ih_l0, **{**plain, "layers": 2})
    for odd_x, odd_h, odd in ((x.double(), h, plain), (x, h.double(), plain), (x[0], h[0], plain),  # dtype, unbatched
                              (x, h[:, :3], plain), (x[:1], h, plain), (x, h, {**plain, "input_size": 5}),  # shapes
                              (x, state, plain), (x, state, {**plain, "layers": 3}),  # stack depth
                              (x, torch.nn.Parameter(h), plain)):  # a subclass
        assert not real(odd_x, odd_h, cell.weight_ih, **odd)
    with pytest.raises(grukit.InputError, match=r"input has a non-finite value \(nan\)"), torch.no_grad():
        cell(torch.full((2, 3), float("nan")), h)
    with pytest.raises(grukit.InputError, match=r"state has a non-finite value \(inf\)"), torch.no_grad():
        gru.step(x, torch.full((2, 2, 4), float("inf")))


@pytest.mark.parametrize("backend, grad, kind", [
    ("auto", False, "compiled"), ("auto", True, "torch"), ("fused", False, "compiled"), ("fused", True, "scan"),
    ("torch", False, "torch"), ("torch", True, "torch"), ("reference", False, "reference"),
])
def test_step_kind_per_backend(backend, grad, kind):
    """One choice for GRUCell and GRU.step alike; "auto" leaves the compiled cell past STEP_MAX_UNITS,
    and takes the reference for reset="before" where the compiled cell does not run (torch's cell
    is reset-after)."""
    from grukit.nn.gru import STEP_MAX_UNITS, step_kind

    cell, gru = grukit.GRUCell(3, 4, backend=backend), grukit.GRU(3, 4, 2, backend=backend)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    with torch.set_grad_enabled(grad):
        assert step_kind(x, h, (tuple(cell.parameters()),), reset="after", backend=backend) == kind
        layers = tuple(gru.layer_weights(layer) for layer in range(2))
        assert step_kind(x, h[None].expand(2, 2, 4), layers, reset="after", backend=backend) == kind
    wide = torch.randn(1, STEP_MAX_UNITS + 1)
    with torch.no_grad():
        assert step_kind(x[:1], wide, (), reset="after", backend="auto") == "torch"
        assert step_kind(x[:1], wide, (), reset="before", backend="auto") == "reference"
        assert step_kind(x[:1], wide, (), reset="after", backend="fused") == "compiled"
    with torch.enable_grad():
        assert step_kind(x, h, (tuple(cell.parameters()),), reset="before", backend="auto") == "reference"


def test_a_stack_whose_upper_layer_trains_streams_with_autograd():
    """The choice reads every layer's weights: a frozen first layer does not send a trainable
    second layer through the compiled cell (which has no gradient)."""
    gru = grukit.GRU(3, 4, 2)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        getattr(gru, name).requires_grad_(False)
    y, _ = gru.step(torch.randn(2, 3), torch.zeros(2, 2, 4))
    y.sum().backward()
    assert gru.weight_hh_l1.grad is not None and gru.weight_hh_l0.grad is None
