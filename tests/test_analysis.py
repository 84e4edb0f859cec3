"""The analyses on known answers, and the same numbers on every backend."""

import math

import numpy as np
import pytest
import torch

import grukit
from grukit import analysis
from grukit.nn.init import chrono_init_, open_reset_gate_, scale_candidate_
from grukit.nn.trace import GRUTrace

DOUBLE = torch.float64
BACKENDS = ["reference", "torch", "fused"]


def gated_gru(keep: torch.Tensor, *, backend: str = "reference", inputs: int = 2) -> grukit.GRU:
    """A GRU whose state enters neither gates nor candidate (zero weights), keep gate z = keep (H,)."""
    hidden = keep.numel()
    gru = grukit.GRU(inputs, hidden, dtype=DOUBLE, backend=backend)
    with torch.no_grad():
        for p in gru.parameters():
            p.zero_()
        gru.bias_ih_l0[hidden : 2 * hidden] = torch.logit(keep.double())
        gru.weight_ih_l0[2 * hidden :] = torch.randn(hidden, inputs, dtype=DOUBLE)  # candidate reads x only
    return gru


def test_timescales_of_fixed_gates_are_the_formula_and_the_measured_decay():
    update = torch.tensor([0.5, 0.1, 0.05, 0.01], dtype=DOUBLE)
    gru = gated_gru(1 - update)
    x = torch.randn(60, 3, 2, dtype=DOUBLE)
    trace = gru(x, return_gates=True)[2]
    scales = analysis.memory_timescales(trace)
    expected = -1 / torch.log(1 - update)
    torch.testing.assert_close(scales.tau[0], expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(scales.half_life[0], math.log(2) * expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(analysis.memory_timescales(trace, convention="inverse").tau[0], 1 / update,
                               rtol=1e-12, atol=0)
    measured = analysis.impulse_response(gru, x, step=10, epsilon=1e-3)
    torch.testing.assert_close(measured.tau[0], expected, rtol=1e-6, atol=0)
    k = torch.arange(measured.response.shape[-1], dtype=DOUBLE)
    torch.testing.assert_close(measured.response[0], (1 - update)[:, None] ** k, rtol=1e-6, atol=1e-12)


def test_a_closed_update_gate_gives_identity_jacobians_and_flat_gradient_flow():
    gru = gated_gru(torch.ones(4))  # z = σ(∞) = 1: u ≡ 0
    with torch.no_grad():
        gru.weight_hh_l0.normal_()  # the state would now enter everything — but u = 0 keeps it out
        gru.bias_ih_l0[4:8] = 60.0
    x = torch.randn(30, 2, 2, dtype=DOUBLE)
    jac = analysis.step_jacobians(gru, x)
    assert torch.equal(jac.jacobians, torch.eye(4, dtype=DOUBLE).expand_as(jac.jacobians))
    assert float(jac.distance_from_identity.max()) <= 1e-3
    flow = analysis.gradient_flow(gru, x)
    torch.testing.assert_close(flow.loss_gradient, torch.full_like(flow.loss_gradient, 2.0))  # ‖1‖ over 4 units
    torch.testing.assert_close(flow.state_jacobian, torch.ones_like(flow.state_jacobian))


def test_rnn_step_jacobian_is_the_derivative_of_tanh_times_w():
    rnn = grukit.RNN(3, 5, dtype=DOUBLE)
    x = torch.randn(7, 2, 3, dtype=DOUBLE)
    output, _ = rnn(x)
    jac = analysis.step_jacobians(rnn, x).jacobians  # (B, T, H, H)
    for t in range(7):
        expected = (1 - output[t] ** 2)[:, :, None] * rnn.weight_hh_l0  # diag(1 − h_t²) W_hh
        torch.testing.assert_close(jac[:, t], expected, rtol=1e-12, atol=1e-14)


def test_gradient_flow_is_the_product_of_step_jacobians_and_respects_lengths():
    rnn = grukit.RNN(2, 3, dtype=DOUBLE)
    x = torch.randn(6, 2, 2, dtype=DOUBLE)
    lengths = torch.tensor([6, 4])
    flow = analysis.gradient_flow(rnn, x, lengths=lengths)
    jac = analysis.step_jacobians(rnn, x, lengths=lengths).jacobians
    for b, length in enumerate(lengths.tolist()):
        product = torch.eye(3, dtype=DOUBLE)
        for distance in range(length):
            t = length - distance  # s_t, 1-based
            expected = (product.T @ torch.ones(3, dtype=DOUBLE)).norm()  # (∂s_T/∂s_t)ᵀ ∂L/∂s_T, L = Σ s_T
            torch.testing.assert_close(flow.loss_gradient[0, b, distance], expected)
            torch.testing.assert_close(flow.state_jacobian[0, b, distance], torch.linalg.matrix_norm(product, ord=2))
            product = product @ jac[b, t - 1]
        assert torch.isnan(flow.loss_gradient[0, b, length:]).all()


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("layers", [1, 2])
def test_analyses_give_the_same_numbers_on_every_backend(reset, layers):
    torch.manual_seed(0)
    base = grukit.GRU(3, 4, layers, reset=reset, dtype=DOUBLE, batch_first=True)
    x = torch.randn(2, 9, 3, dtype=DOUBLE)
    lengths = torch.tensor([9, 5])
    results = {}
    for backend in BACKENDS if reset == "after" else ["reference", "fused"]:
        gru = grukit.GRU(3, 4, layers, reset=reset, dtype=DOUBLE, batch_first=True, backend=backend)
        gru.load_state_dict(base.state_dict())
        results[backend] = (analysis.step_jacobians(gru, x, lengths=lengths),
                            analysis.gradient_flow(gru, x, lengths=lengths),
                            analysis.impulse_response(gru, x, step=3))
    first = results["reference"]
    for other in results.values():
        torch.testing.assert_close(other[0].jacobians, first[0].jacobians, rtol=0, atol=1e-10)
        torch.testing.assert_close(other[0].mean_update, first[0].mean_update, rtol=0, atol=1e-10, equal_nan=True)
        torch.testing.assert_close(other[1].loss_gradient, first[1].loss_gradient, rtol=0, atol=1e-10, equal_nan=True)
        torch.testing.assert_close(other[2].tau, first[2].tau, rtol=1e-6, atol=0)


def test_lstm_state_includes_the_cell_and_refusals_name_the_problem():
    lstm = grukit.LSTM(2, 3, dtype=DOUBLE)
    jac = analysis.step_jacobians(lstm, torch.randn(4, 1, 2, dtype=DOUBLE))
    assert jac.jacobians.shape == (1, 4, 6, 6) and jac.mean_update is None
    with pytest.raises(grukit.InputError, match="bidirectional"):
        analysis.step_jacobians(grukit.GRU(2, 3, bidirectional=True), torch.randn(4, 1, 2))
    with pytest.raises(grukit.InputError, match=r"GRU, RNN, LSTM and GRU-D; got a torch\.nn\.modules\.rnn\.GRU"):
        analysis.gradient_flow(torch.nn.GRU(2, 3), torch.randn(4, 1, 2))
    with pytest.raises(grukit.InputError, match="lengths must be"):
        analysis.gradient_flow(grukit.GRU(2, 3), torch.randn(4, 2, 2), lengths=torch.tensor([5, 1]))


@pytest.mark.parametrize(("q", "gain"), [(1.0, 0.618), (0.1, 0.270), (0.01, 0.095)])
def test_steady_state_gain_formula_matches_statsmodels_converged_filter(q, gain):
    formula = analysis.steady_state_gain(q)
    assert formula == pytest.approx((-q + math.sqrt(q * q + 4 * q)) / 2, rel=1e-15)
    assert formula == pytest.approx(gain, abs=5e-4)
    y = np.random.default_rng(0).normal(size=(1, 400)).cumsum(axis=1)
    gains, _ = analysis.filter_gains(y, state_variance=q, observation_variance=1.0)
    assert gains[0, -1] == pytest.approx(formula, rel=1e-9)


def test_filter_gain_falls_where_observations_are_noisy():
    y = np.random.default_rng(1).normal(size=(1, 200))
    variance = np.where(np.arange(200) % 50 < 25, 0.25, 4.0)[None, :]
    gains, _ = analysis.filter_gains(y, state_variance=0.1, observation_variance=variance)
    assert gains[0, 30:50].mean() < 0.5 * gains[0, 5:25].mean()


def test_fixed_points_of_a_bistable_unit_and_their_stability():
    rnn = grukit.RNN(1, 1, dtype=DOUBLE)
    with torch.no_grad():
        rnn.weight_hh_l0.fill_(2.0)  # h = tanh(2h): fixed points 0 (slope 2) and ±0.9575 (slope 0.167)
        rnn.weight_ih_l0.fill_(1.0)
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
    x = torch.linspace(-2, 2, 40, dtype=DOUBLE).reshape(40, 1, 1).repeat(1, 3, 1)
    config = analysis.FixedPointConfig(initial_states=64, noise=0.3, iterations=3000, learning_rate=0.02,
                                       tolerance=1e-14, slow_tolerance=1e-12)
    points = analysis.fixed_points(rnn, x, config=config)
    order = points.states[:, 0].argsort()
    roots = points.states[order, 0]
    assert len(roots) == 3
    torch.testing.assert_close(roots, torch.tensor([-0.957504, 0.0, 0.957504], dtype=DOUBLE), atol=1e-5, rtol=0)
    assert points.stable[order].tolist() == [True, False, True]
    torch.testing.assert_close(points.eigenvalues[order][1, 0].real, torch.tensor(2.0, dtype=DOUBLE), atol=1e-6, rtol=0)


def test_chrono_biases_are_in_range_and_on_one_bias_vector_only():
    gru = grukit.GRU(3, 50, 2, bidirectional=True)
    chrono_init_(gru, 100, generator=torch.Generator().manual_seed(0))
    for name in ("l0", "l0_reverse", "l1", "l1_reverse"):
        keep = getattr(gru, f"bias_ih_{name}")[50:100].detach()
        assert float(keep.min()) >= 0.0 and float(keep.max()) <= math.log(99) + 1e-6
        assert float(keep.std()) > 0.5  # spread over the range, not one value
        assert torch.equal(getattr(gru, f"bias_hh_{name}")[50:100], torch.zeros(50))
    lstm = chrono_init_(grukit.LSTM(2, 8), 10)
    torch.testing.assert_close(lstm.bias_ih_l0[:8].detach(), -lstm.bias_ih_l0[8:16].detach())
    assert torch.equal(lstm.bias_hh_l0[:16], torch.zeros(16))
    with pytest.raises(grukit.InputError, match="t_max must be greater than 2"):
        chrono_init_(grukit.GRU(2, 3), 2)
    with pytest.raises(grukit.InputError, match="no gates"):
        chrono_init_(grukit.RNN(2, 3), 10)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("dtype", [torch.float32, DOUBLE])
def test_a_pinned_open_reset_gate_is_exactly_one_and_stays_so_under_training(reset, dtype):
    torch.manual_seed(0)
    gru = open_reset_gate_(grukit.GRU(3, 6, 2, bidirectional=True, reset=reset, dtype=dtype))
    optimiser = torch.optim.Adam(gru.parameters(), lr=0.1)
    before = {name: value.detach().clone() for name, value in gru.named_parameters()}
    for _ in range(3):
        optimiser.zero_grad()
        gru(torch.randn(5, 4, 3, dtype=dtype))[0].pow(2).sum().backward()
        optimiser.step()
    for name, value in gru.named_parameters():
        assert torch.equal(value[:6], before[name][:6]), name  # the reset rows did not move
        assert not torch.equal(value[6:], before[name][6:]), name  # the rest trained
    trace = gru(torch.randn(5, 4, 3, dtype=dtype), return_gates=True)[2]
    assert torch.equal(trace.reset, torch.ones_like(trace.reset))
    with pytest.raises(grukit.InputError, match="GRU and GRUCell"):
        open_reset_gate_(grukit.LSTM(2, 3))


def test_the_candidate_matrix_is_rescaled_to_the_spectral_norm_asked_for():
    gru = grukit.GRU(2, 8, 2, dtype=DOUBLE)
    gates = {name: gru.get_parameter(f"weight_hh_{name}")[:16].detach().clone() for name in ("l0", "l1")}
    scale_candidate_(gru, 16.0)
    for name in ("l0", "l1"):
        weight = gru.get_parameter(f"weight_hh_{name}")
        assert float(torch.linalg.matrix_norm(weight[16:].detach(), ord=2)) == pytest.approx(16.0, rel=1e-12)
        assert torch.equal(weight[:16], gates[name])  # the gates' rows untouched
    with pytest.raises(grukit.InputError, match="must be positive"):
        scale_candidate_(gru, 0.0)


def _trace(reset, update):
    return GRUTrace(reset=reset, keep=1 - update, candidate=torch.zeros_like(reset))


def test_gate_statistics_count_saturation_per_unit_ignoring_padding():
    update = torch.tensor([[0.05, 0.05, 0.95, 0.5], [0.95, 0.95, 0.95, float("nan")]]).T[None, None]  # (1, 1, 4, 2)
    stats = analysis.gate_statistics(_trace(torch.full_like(update, 0.5), update))
    torch.testing.assert_close(stats.left_saturated["update"][0], torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(stats.right_saturated["update"][0], torch.tensor([0.25, 1.0]))
    assert stats.step_mean["update"].shape == (1, 1, 4)


def test_gate_events_find_a_planted_reset_drop_and_update_spike():
    generator = torch.Generator().manual_seed(0)
    reset = 0.7 + 0.02 * torch.randn(1, 2, 50, 8, generator=generator)
    update = 0.2 + 0.02 * torch.randn(1, 2, 50, 8, generator=generator)
    reset[0, 1, 30] = 0.1
    update[0, 0, 12] = 0.9
    events = analysis.gate_events(_trace(reset, update))
    assert {(e.gate, e.sequence, e.step) for e in events} == {("reset", 1, 30), ("update", 0, 12)}


def _irregular(batch=3, steps=12, variables=2, *, missing=0.4, seed=0):
    """Time-major GRU-D inputs [values; mask; gaps δ] (T, B, 3V) with missing entries, float64."""
    from grukit.nn.time_gaps import time_gaps

    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, steps, variables, generator=generator, dtype=DOUBLE)
    mask = (torch.rand(batch, steps, variables, generator=generator) > missing).to(DOUBLE)
    times = torch.cumsum(torch.rand(batch, steps, generator=generator, dtype=DOUBLE) + 0.2, dim=1)
    gaps = time_gaps(mask, times)
    return torch.cat([values * mask, mask, gaps], dim=-1).transpose(0, 1)


def _grud(backend="reference", **options):
    torch.manual_seed(0)
    grud = grukit.GRUD(2, 5, dtype=DOUBLE, backend=backend, **options)
    grud.set_empirical_mean(torch.tensor([0.3, -0.2]))
    return grud


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_the_grud_step_map_gives_the_module_s_own_states_on_every_backend(backend):
    from grukit.analysis.step_map import run_states, step_map, valid_steps

    inputs = _irregular()
    grud = _grud(backend)
    step = step_map(grud)
    lengths = torch.tensor([12, 7, 1])
    states = run_states(step, step.drive(inputs), valid=valid_steps(lengths, 12, 3))
    values, mask, gaps = inputs.chunk(3, dim=-1)
    output, h_n = grud(values, mask=mask, gaps=gaps, lengths=lengths)
    valid = valid_steps(lengths, 12, 3)[..., None]
    torch.testing.assert_close(torch.stack(states[1:]) * valid, output, rtol=0, atol=1e-12)
    torch.testing.assert_close(states[-1], h_n[0], rtol=0, atol=1e-12)


def test_grud_analyses_equal_those_of_its_equivalent_gru():
    """Nothing missing, no decays: GRU-D is a reset-before GRU reading [x; m] (tested in test_grud),
    so every step-map analysis must give the GRU's numbers."""
    inputs = _irregular(missing=0.0)
    grud = _grud(imputation="forward", hidden_decay=False)
    gru = grukit.GRU(4, 5, reset="before", backend="reference", dtype=DOUBLE)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.cat([grud.weight_ih, grud.weight_mh], 1))
        gru.weight_hh_l0.copy_(grud.weight_hh)
        gru.bias_ih_l0.copy_(grud.bias_ih)
        gru.bias_hh_l0.copy_(grud.bias_hh)
    values, mask, _ = inputs.chunk(3, dim=-1)
    plain = torch.cat([values, mask], dim=-1)
    ours, theirs = analysis.step_jacobians(grud, inputs), analysis.step_jacobians(gru, plain)
    torch.testing.assert_close(ours.jacobians, theirs.jacobians, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.mean_update, theirs.mean_update, rtol=0, atol=1e-12)
    lengths = torch.tensor([12, 5, 9])
    torch.testing.assert_close(analysis.gradient_flow(grud, inputs, lengths=lengths).loss_gradient,
                               analysis.gradient_flow(gru, plain, lengths=lengths).loss_gradient, rtol=0, atol=1e-12,
                               equal_nan=True)
    torch.testing.assert_close(analysis.impulse_response(grud, inputs).response,
                               analysis.impulse_response(gru, plain).response, rtol=0, atol=1e-8)
    config = analysis.FixedPointConfig(initial_states=16, iterations=300)
    held = torch.tensor([0.5, -0.5, 1.0, 1.0, 0.0, 0.0], dtype=DOUBLE)  # observed values, mask 1, δ 0
    ours_points = analysis.fixed_points(grud, inputs, constant_input=held, config=config)
    theirs_points = analysis.fixed_points(gru, plain, constant_input=held[:4], config=config)
    torch.testing.assert_close(ours_points.states, theirs_points.states, rtol=0, atol=1e-10)


def test_grud_analyses_are_the_same_on_the_reference_and_fused_backends():
    inputs = _irregular(seed=1)
    lengths = torch.tensor([12, 4, 10])
    results = {}
    for backend in ("reference", "fused"):
        grud = _grud(backend)
        flow = analysis.gradient_flow(grud, inputs, lengths=lengths)
        trace = analysis.step_map.gate_trace(grud, inputs, lengths=lengths)
        results[backend] = (flow.loss_gradient, flow.state_jacobian, analysis.step_jacobians(grud, inputs).jacobians,
                            analysis.memory_timescales(trace).tau, analysis.gate_statistics(trace).left_saturated)
    for ours, theirs in zip(results["reference"], results["fused"], strict=True):
        if isinstance(ours, dict):
            for name in ours:
                torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-10)
        else:
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10, equal_nan=True)
    assert torch.isfinite(results["reference"][0][0, 1, :4]).all()  # the short sequence's own distances
