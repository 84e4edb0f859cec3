"""minGRU: three scans of one recurrence agree, both modes are one function of one state, and the
module keeps grukit's forward contract."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import grukit
from grukit.errors import InputError
from grukit.kernels.mingru_scan import candidate, mingru_scan

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def _operands(steps=6, batch=3, hidden=4, *, dtype=torch.float64, seed=0, sign=1.0):
    torch.manual_seed(seed)
    k, c = (torch.randn(steps, batch, hidden, dtype=dtype, requires_grad=True) for _ in range(2))
    h0 = (sign * torch.rand(batch, hidden, dtype=dtype) + 0.1 * sign).requires_grad_()
    return k, c, h0


def _everything(k, c, h0, lengths, scan):
    out, h_n = mingru_scan(k, c, h0, lengths, scan=scan)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    grads = torch.autograd.grad((out * weights).sum() + h_n.cos().sum(), (k, c, h0))
    return out, h_n, *grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["h0>0", "h0<0"])
@pytest.mark.parametrize("lengths", [None, (6, 3, 1)], ids=["full", "lengths"])
@pytest.mark.parametrize("scan", ["log", "compiled"])
def test_scans_equal_the_sequential_reference(scan, lengths, sign, dtype):
    k, c, h0 = _operands(dtype=dtype, sign=sign)
    given = None if lengths is None else torch.tensor(lengths)
    for got, expected in zip(_everything(k, c, h0, given, scan), _everything(k, c, h0, given, "sequential"),
                             strict=True):
        torch.testing.assert_close(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_the_compiled_scan_split_over_threads_equals_one_loop():
    k, c, h0 = _operands(9, 64, 16)  # 64 rows: one part per thread where rows split (`kernels.rows.row_parts`)
    lengths = torch.arange(64) % 9 + 1
    for got, expected in zip(_everything(k, c, h0, lengths, "compiled"), _everything(k, c, h0, lengths, "sequential"),
                             strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("scan", ["sequential", "log", "compiled"])
def test_gradcheck_in_float64(scan):
    k, c, h0 = _operands(5, 2, 3)
    assert torch.autograd.gradcheck(lambda k, c, h: mingru_scan(k, c, h, torch.tensor([5, 3]), scan=scan),
                                    (k, c, h0))


def test_the_sequential_scan_is_the_equation():
    k, c, h0 = _operands(3, 2, 2)
    out, h_n = mingru_scan(k, c, h0, scan="sequential")
    h = h0
    for t in range(3):
        u = torch.sigmoid(k[t])
        h = (1 - u) * h + u * torch.where(c[t] >= 0, c[t] + 0.5, torch.sigmoid(c[t]))
        torch.testing.assert_close(out[t], h, rtol=0, atol=0)
    torch.testing.assert_close(h_n, h, rtol=0, atol=0)
    assert torch.equal(candidate(torch.tensor([-1.0, 0.0, 2.0])), torch.tensor([torch.sigmoid(torch.tensor(-1.0)),
                                                                               0.5, 2.5]))


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(1, 12), batch=st.integers(1, 4), hidden=st.integers(1, 5), seed=st.integers(0, 10_000),
       scale=st.floats(0.1, 8.0))
def test_log_space_scan_stays_exact_for_saturated_gates(steps, batch, hidden, seed, scale):
    """Large pre-activations (u → 0 or 1) do not overflow the log-space scan."""
    k, c, h0 = _operands(steps, batch, hidden, seed=seed)
    with torch.no_grad():
        k, c = k * scale, c * scale
    for scan in ("log", "compiled"):
        out, h_n = mingru_scan(k, c, h0, scan=scan)
        expected = mingru_scan(k, c, h0, scan="sequential")
        torch.testing.assert_close(out, expected[0], rtol=1e-9, atol=1e-9)


MODULE_CASES = [(layers, batch_first, lengths, unbatched) for layers in (1, 2) for batch_first in (False, True)
                for lengths in (False, True) for unbatched in (False, True) if not (lengths and unbatched)]


@pytest.mark.parametrize("layers,batch_first,lengths,unbatched", MODULE_CASES)
def test_both_modes_and_every_scan_are_one_function_of_one_state(layers, batch_first, lengths, unbatched):
    torch.manual_seed(0)
    models = {(mode, scan): grukit.MinGRU(3, 4, num_layers=layers, batch_first=batch_first, mode=mode, scan=scan,
                                           dtype=torch.float64)
              for mode, scan in (("sequential", "auto"), ("parallel", "log"), ("parallel", "compiled"))}
    first = next(iter(models.values()))
    for model in models.values():
        model.load_state_dict(first.state_dict())
    x = torch.randn(*((6, 3) if unbatched else (2, 6, 3) if batch_first else (6, 2, 3)), dtype=torch.float64)
    hx = torch.randn(*((layers, 4) if unbatched else (layers, 2, 4)), dtype=torch.float64)  # any sign
    given = torch.tensor([6, 4]) if lengths else None
    results = [model(x, hx, lengths=given, return_gates=True) for model in models.values()]
    for output, h_n, trace in results[1:]:
        torch.testing.assert_close(output, results[0][0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(h_n, results[0][1], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(trace.update, results[0][2].update, equal_nan=True)
    output, h_n, trace = results[0]
    assert h_n.shape == hx.shape and output.shape[-1] == 4
    assert trace.update.shape[-1] == 4 and trace.update.shape[0] == layers
    if lengths:
        assert torch.isnan(trace.update[:, 1, 4:]).all() and not torch.isnan(trace.update[:, 1, :4]).any()
        step_outputs = output[1, 4:] if batch_first else output[4:, 1]
        assert torch.equal(step_outputs, torch.zeros_like(step_outputs))


def test_streaming_one_step_at_a_time_gives_the_whole_sequence():
    torch.manual_seed(0)
    model = grukit.MinGRU(3, 5, num_layers=2, batch_first=True)
    x = torch.randn(2, 9, 3)
    state = torch.zeros(2, 2, 5)
    for t in range(9):
        _, state = model(x[:, t : t + 1], state)
    torch.testing.assert_close(state, model(x)[1], rtol=1e-5, atol=1e-6)


def test_parameters_save_load_and_the_registry():
    model = grukit.MinGRU(3, 5, num_layers=2)
    assert grukit.count_parameters(model) == 2 * 5 * (3 + 1) + 2 * 5 * (5 + 1)  # 2H(I + 1) a layer
    from grukit.training.model import ModelConfig, SequenceModel

    task_model = SequenceModel(ModelConfig(cell="mingru", input_size=3, hidden_size=5, output_size=2, num_layers=2))
    assert task_model(torch.randn(4, 7, 3)).shape == (4, 2)


def test_save_load_round_trip(tmp_path):
    model = grukit.MinGRU(3, 5, num_layers=2, mode="sequential")
    model.save(tmp_path / "m")
    loaded = grukit.load(tmp_path / "m")
    assert type(loaded) is grukit.MinGRU and loaded.mode == "sequential"
    x = torch.randn(7, 2, 3)
    torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="mode must be 'parallel' or 'sequential'"):
        grukit.MinGRU(3, 4, mode="fast")
    with pytest.raises(InputError, match="one direction"):
        grukit.MinGRU(3, 4, bidirectional=True)
    with pytest.raises(InputError, match="input has 2 features"):
        grukit.MinGRU(3, 4)(torch.randn(5, 2, 2))
    with pytest.raises(InputError, match="non-finite"):
        grukit.MinGRU(3, 4)(torch.full((5, 2, 3), float("nan")))
    with pytest.raises(InputError, match="float32 or float64"):
        grukit.MinGRU(3, 4, scan="compiled").half()(torch.randn(5, 2, 3).half())


def test_the_analyses_step_through_it_as_its_own_forward():
    """The step map runs the module one step at a time; its Jacobian is diag(1 − u_t) per layer."""
    from grukit.analysis.step_map import run_states, step_map, valid_steps

    torch.manual_seed(0)
    model = grukit.MinGRU(2, 3, dtype=torch.float64)
    x = torch.randn(5, 2, 2, dtype=torch.float64)
    step = step_map(model)
    states = run_states(step, x, valid=valid_steps(None, 5, 2))
    torch.testing.assert_close(states[-1], model(x)[1][0], rtol=1e-12, atol=1e-12)
    state = states[2][:1].clone().requires_grad_()
    jacobian = torch.autograd.functional.jacobian(lambda s: step(s, x[2, :1]), state)[0, :, 0, :]
    k, _ = torch.nn.functional.linear(x[2, :1], model.weight_ih_l0, model.bias_ih_l0).chunk(2, -1)
    torch.testing.assert_close(jacobian, torch.diag(1 - torch.sigmoid(k[0])), rtol=1e-12, atol=1e-12)


def test_onnx_export_is_refused_with_the_route_that_works():
    from grukit.app.export import onnx_bytes
    from grukit.training.model import ModelConfig, SequenceModel

    model = SequenceModel(ModelConfig(cell="mingru", input_size=3, hidden_size=4, output_size=1))
    with pytest.raises(InputError, match="export the mingru model with --torch-export"):
        onnx_bytes(model, torch.randn(2, 5, 3))


def test_torch_func_runs_the_log_scan_and_refuses_the_compiled_one():
    torch.manual_seed(0)
    model = grukit.MinGRU(2, 3, num_layers=2, dtype=torch.float64)  # scan="auto"
    x = torch.randn(5, 2, 2, dtype=torch.float64)
    jacobian = torch.func.jacrev(lambda x: model(x)[1])(x)
    torch.testing.assert_close(jacobian, torch.autograd.functional.jacobian(lambda x: model(x)[1], x))
    many = torch.randn(4, 5, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(torch.func.vmap(lambda x: model(x)[0])(many), torch.stack([model(m)[0] for m in many]))
    compiled = grukit.MinGRU(2, 3, scan="compiled", dtype=torch.float64)
    with pytest.raises(InputError, match="runs eagerly"):
        torch.func.vmap(lambda x: compiled(x)[0])(many)


def test_chrono_initialisation_spreads_the_update_gate_over_one_to_t_max_steps():
    """b_u = −log U(1, T_max − 1) on every layer's update rows, the candidate rows untouched: at
    zero input u = 1/(1 + U) lies in [1/T_max, 1/2], memories of 2 … T_max steps."""
    from grukit.nn.init import chrono_init_
    from grukit.training.model import ModelConfig, SequenceModel

    model = grukit.MinGRU(3, 64, num_layers=2)
    candidate_rows = [getattr(model, f"bias_ih_l{layer}")[64:].detach().clone() for layer in (0, 1)]
    chrono_init_(model, 100, generator=torch.Generator().manual_seed(0))
    for layer in (0, 1):
        bias = getattr(model, f"bias_ih_l{layer}").detach()
        update = torch.sigmoid(bias[:64])
        assert float(update.min()) >= 1 / 100 - 1e-6 and float(update.max()) <= 0.5 + 1e-6
        assert float((1 / update).std()) > 10  # memories spread over the range, not one value
        assert torch.equal(bias[64:], candidate_rows[layer])
    _, _, trace = model(torch.zeros(5, 2, 3), return_gates=True)
    torch.testing.assert_close(trace.update[0, :, 0], torch.sigmoid(model.bias_ih_l0[:64].detach()).expand(2, -1))
    built = SequenceModel(ModelConfig(cell="mingru", chrono=50.0, hidden_size=8, input_size=2))
    assert float(torch.sigmoid(built.recurrent.bias_ih_l0[:8]).max()) <= 0.5
    with pytest.raises(InputError, match="has none"):
        chrono_init_(grukit.MinGRU(2, 3, bias=False), 10)


def test_the_compiled_loops_on_caller_buffers_equal_the_scan():
    """`compiled_forward_into` / `compiled_backward_into` (what `grukit bench --mingru` times as the
    scan kernel) give the scan's own states and gradients, bit for bit."""
    from grukit.kernels.mingru_scan import compiled_backward_into, compiled_forward_into

    k, c, h0 = _operands(steps=7, batch=5, hidden=6, dtype=torch.float32)
    lengths = torch.tensor([7, 2, 5, 1, 7])
    out, h_n = mingru_scan(k, c, h0, lengths, scan="compiled")
    d_out = torch.randn_like(out)
    d_k, d_c, d_h0 = torch.autograd.grad((out * d_out).sum() + h_n.sum(), (k, c, h0))
    mine_out, mine_h = torch.empty_like(out), h0.detach().clone()
    compiled_forward_into(k, c, mine_h, lengths, mine_out)
    assert torch.equal(mine_out, out) and torch.equal(mine_h, h_n)
    d_h, mine_k, mine_c = torch.ones_like(mine_h), torch.empty_like(out), torch.empty_like(out)
    compiled_backward_into(k, c, h0, mine_out, lengths, d_out, d_h, mine_k, mine_c)
    assert torch.equal(mine_k, d_k) and torch.equal(mine_c, d_c) and torch.equal(d_h, d_h0)


def test_the_bench_reports_every_scan_and_the_bytes_each_moves():
    from grukit.app.bench import SCAN_BYTES, mingru_training

    rows = mingru_training((16,), batch=2, hidden=8, repeats=1, sequential_up_to=16)
    names = [row.model for row in rows]
    assert names[:4] == ["torch.nn.GRU", "grukit.GRU (auto)", "minGRU compiled", "minGRU log"]
    assert {"minGRU sequential", "input projection alone", *SCAN_BYTES} <= set(names)
    for row in rows:
        moved = SCAN_BYTES.get(row.model)
        if moved is None:
            assert row.scan_gb_per_s is None
        else:
            assert row.scan_gb_per_s == pytest.approx(moved * 16 * 2 * 8 / row.seconds / 1e9)
