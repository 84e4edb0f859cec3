"""GRU-D against its equations: the reductions the paper's model must satisfy, the gaps δ by hand,
gradcheck, and the input checks."""

import pytest
import torch

import grukit
from grukit.nn.grud import GRUD
from grukit.nn.time_gaps import last_observed, time_gaps

torch.manual_seed(0)


def test_gaps_match_a_hand_computed_irregular_example():
    """Two variables observed at different steps, timestamps 0, 0.5, 2, 3.5, 4 (Che et al. eq. 2)."""
    times = torch.tensor([[0.0, 0.5, 2.0, 3.5, 4.0]], dtype=torch.float64)
    mask = torch.tensor([[[1, 0], [0, 0], [1, 1], [0, 1], [1, 0]]], dtype=torch.float64)
    # δ_t = s_t − s_{t−1}, plus δ_{t−1} for a variable missing at step t − 1
    expected = torch.tensor([[[0.0, 0.0],  # t = 1
                              [0.5, 0.5],  # v0 seen at 1; v1 missing at 1: 0.5 + 0
                              [2.0, 2.0],  # both missing at 2: 1.5 + 0.5
                              [1.5, 1.5],  # both seen at 3
                              [2.0, 0.5]]], dtype=torch.float64)  # v0 missing at 4: 0.5 + 1.5; v1 seen
    torch.testing.assert_close(time_gaps(mask, times), expected, rtol=0, atol=0)
    values = torch.tensor([[[1.0, 9], [7, 9], [2, 3], [9, 4], [5, 9]]], dtype=torch.float64)
    mean = torch.tensor([10.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(last_observed(values, mask, mean)[0, :, 1],
                               torch.tensor([20.0, 20.0, 3.0, 4.0, 4.0], dtype=torch.float64), rtol=0, atol=0)


def _data(batch=3, steps=6, variables=2, *, missing=0.4, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(steps, batch, variables, generator=generator, dtype=dtype)
    mask = (torch.rand(steps, batch, variables, generator=generator) > missing).to(dtype)
    times = torch.cumsum(torch.rand(batch, steps, generator=generator, dtype=dtype) + 0.1, dim=1)
    return values.masked_fill(mask == 0, float("nan")), mask, times


def test_nothing_missing_and_no_decay_is_a_reset_before_gru_reading_the_mask():
    values, _, times = _data(missing=0.0)
    grud = GRUD(2, 5, imputation="forward", hidden_decay=False, dtype=torch.float64)
    gru = grukit.GRU(4, 5, reset="before", backend="reference", dtype=torch.float64)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.cat([grud.weight_ih, grud.weight_mh], 1))
        gru.weight_hh_l0.copy_(grud.weight_hh)
        gru.bias_ih_l0.copy_(grud.bias_ih)
        gru.bias_hh_l0.copy_(grud.bias_hh)
    mask = torch.ones_like(values)
    lengths = torch.tensor([6, 3, 1])
    out, h_n = grud(values, times=times, lengths=lengths)
    ref_out, ref_h = gru(torch.cat([values, mask], -1), lengths=lengths)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n, ref_h, rtol=0, atol=1e-12)


def test_unit_decay_imputes_by_forward_fill_and_long_gaps_by_the_mean():
    values, mask, times = _data()
    x, m = values.transpose(0, 1), mask.transpose(0, 1)
    mean = torch.tensor([3.0, -2.0], dtype=torch.float64)
    grud = GRUD(2, 4, empirical_mean=mean, dtype=torch.float64)
    with torch.no_grad():
        grud.decay_x_weight.zero_()
        grud.decay_x_bias.zero_()  # γ_x = exp(−max(0, 0)) = 1 for every δ
    gamma_x, _ = grud.decays(time_gaps(m, times))
    assert (gamma_x == 1).all()
    forward_fill = last_observed(torch.nan_to_num(x), m, mean)
    torch.testing.assert_close(grud.impute(x, m, gamma_x), forward_fill, rtol=0, atol=0)
    with torch.no_grad():
        grud.decay_x_weight.fill_(1.0)
        grud.decay_h_weight.fill_(1.0)
    gamma_x, gamma_h = grud.decays(time_gaps(m, times * 1e6))  # δ → ∞ (all but the first step)
    imputed = grud.impute(x, m, gamma_x)
    expected = torch.where(m == 0, mean.expand_as(imputed), torch.nan_to_num(x))
    torch.testing.assert_close(imputed[:, 1:], expected[:, 1:], rtol=0, atol=1e-12)
    assert gamma_h[:, 1:].abs().max() == 0  # ĥ = γ_h ⊙ h → 0
    _, _, trace = grud(values, times=times * 1e6, return_gates=True)
    torch.testing.assert_close(trace.hidden_decay[0], gamma_h, rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_gradcheck_float64_with_lengths_and_missing_values(backend):
    values, mask, times = _data(batch=2, steps=4)
    grud = GRUD(2, 3, backend=backend, dtype=torch.float64)
    with torch.no_grad():
        grud.decay_x_bias.fill_(0.1)  # keep the relu's kinks away from the evaluated points
        grud.decay_h_bias.fill_(0.1)
    filled = torch.nan_to_num(values).requires_grad_()
    h0 = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, h, *params):
        out, h_n = torch.func.functional_call(grud, dict(zip(names, params)), (x, h),
                                              {"mask": mask, "times": times, "lengths": torch.tensor([4, 2])})
        return out, h_n

    names = [name for name, _ in grud.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in grud.parameters()]
    assert torch.autograd.gradcheck(run, (filled, h0, *params))


VARIANTS = {
    "GRU-D": {},
    "GRU-D, gaps fed": dict(feed_gaps=True),
    "GRU-Mean": dict(imputation="mean", hidden_decay=False, feed_mask=False),
    "GRU-Forward, hidden decay": dict(imputation="forward"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("inputs_need_grad", [True, False], ids=["input-grads", "frozen-inputs"])
def test_fused_kernel_equals_the_reference_loop(variant, with_lengths, inputs_need_grad):
    """The fused layer (`grud_fused.GRUDFused`, its backward written by hand) against autograd through
    the reference's torch ops and Python loop over `cells.gru_step`, in float64: outputs, final
    state, the trace (gates and both decays), and the gradients of the values (NaN where missing),
    mask, gaps, h0 and every parameter, under a loss that also reads the decays; padded steps and
    rows split across threads included. With frozen inputs (data, as in training) the backward
    skips ∂x, ∂m and ∂δ; the parameters' gradients must not change."""
    from grukit.kernels.rows import can_split_rows, row_parts
    from grukit.nn.time_gaps import time_gaps

    batch, steps = 19, 9
    # the kernel runs two row ranges at once where MKL pins threads; one without (no MKL, plain path)
    assert len(row_parts(batch, 5, threads=2)) == (2 if can_split_rows() else 1)
    values, mask, times = _data(batch=batch, steps=steps, variables=3, seed=3)
    gaps = time_gaps(mask.transpose(0, 1), times).transpose(0, 1)
    lengths = torch.tensor([9, 4, 1, 9, 7, 2, 9, 5, 3, 9, 6, 8, 9, 1, 2, 9, 4, 9, 3]) if with_lengths else None
    reference = GRUD(3, 5, backend="reference", dtype=torch.float64, **VARIANTS[variant])
    reference.set_empirical_mean(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
    with torch.no_grad():  # raw decay weights of both signs: the layer uses their absolute values
        for name, parameter in reference.named_parameters():
            if name.startswith("decay"):
                parameter.uniform_(-0.5, 0.5)
    fused = GRUD(3, 5, backend="fused", dtype=torch.float64, **VARIANTS[variant])
    fused.load_state_dict(reference.state_dict())
    h0 = torch.randn(1, batch, 5, dtype=torch.float64)
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for module in (reference, fused):
            x, m, d = (t.clone().requires_grad_(inputs_need_grad) for t in (values, mask, gaps))
            h = h0.clone().requires_grad_()
            out, h_n, trace = module(x, h, mask=m, gaps=d, lengths=lengths, return_gates=True)
            loss = (out.sin().sum() + (h_n**2).sum() + torch.nan_to_num(trace.input_decay).pow(2).sum()
                    + torch.nan_to_num(trace.hidden_decay).sin().sum())
            loss.backward()
            d_grad = torch.zeros_like(d) if d.grad is None else d.grad  # GRU-Mean: δ reaches nothing
            inputs = [x.grad, m.grad, d_grad] if inputs_need_grad else []
            assert inputs_need_grad or all(t.grad is None for t in (x, m, d))
            results.append([out, h_n, trace.reset, trace.keep, trace.candidate, trace.input_decay,
                            trace.hidden_decay, *inputs, h.grad, *(p.grad for p in module.parameters())])
    finally:
        torch.set_num_threads(threads)
    for got, expected in zip(results[1], results[0]):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12, equal_nan=True)


def test_decays_fall_with_the_gap_and_keep_a_gradient_whatever_the_raw_weights_sign():
    """γ = exp(−max(0, |W| δ + b)): non-increasing in δ (the paper's "monotonically decreasing"), and
    a negative raw weight still decays — with W itself it would hold γ ≡ 1 with no gradient."""
    grud = GRUD(3, 4)
    with torch.no_grad():
        grud.decay_x_weight.copy_(torch.tensor([-0.5, 0.5, -2.0]))
        grud.decay_h_weight.fill_(-1.0)
        grud.decay_x_bias.zero_()
        grud.decay_h_bias.zero_()
    gaps = torch.linspace(0.0, 5.0, 11)[:, None].expand(11, 3)
    gamma_x, gamma_h = grud.decays(gaps)
    assert (gamma_x.diff(dim=0) <= 0).all() and (gamma_h.diff(dim=0) <= 0).all()
    torch.testing.assert_close(gamma_x[-1], torch.exp(-5.0 * torch.tensor([0.5, 0.5, 2.0])))
    (gamma_x.sum() + gamma_h.sum()).backward()
    assert (grud.decay_x_weight.grad != 0).all() and (grud.decay_h_weight.grad != 0).all()


def test_fused_backend_is_named_where_it_cannot_run(monkeypatch):
    """backend="fused" refuses with the kernel's reason; "auto" then runs the reference loop."""
    import grukit.kernels.gru_scan

    values, mask, times = _data()
    with pytest.raises(grukit.InputError, match="backend must be one of"):
        GRUD(2, 3, backend="cuda")
    fused = GRUD(2, 3, backend="fused", dtype=torch.float64)
    auto = GRUD(2, 3, backend="auto", dtype=torch.float64)
    reference = GRUD(2, 3, backend="reference", dtype=torch.float64)
    auto.load_state_dict(fused.state_dict())
    reference.load_state_dict(fused.state_dict())
    monkeypatch.setattr(grukit.kernels.gru_scan, "refusal", lambda x: "numba could not be imported (test)")
    with pytest.raises(grukit.InputError, match=r"backend='fused' cannot run here: numba could not be imported"):
        fused(values, mask=mask, times=times)
    torch.testing.assert_close(auto(values, mask=mask, times=times)[0], reference(values, mask=mask, times=times)[0],
                               rtol=0, atol=0)  # bit-equal: the same reference code ran


def test_trace_and_padding_follow_the_forward_contract():
    values, mask, times = _data()
    grud = GRUD(2, 4, batch_first=True, dtype=torch.float64)
    out, h_n, trace = grud(values.transpose(0, 1), mask=mask.transpose(0, 1), times=times,
                           lengths=torch.tensor([6, 2, 4]), return_gates=True)
    assert out.shape == (3, 6, 4) and h_n.shape == (1, 3, 4)
    assert (out[1, 2:] == 0).all() and torch.equal(h_n[0, 1], out[1, 1])
    assert trace.keep.shape == (1, 3, 6, 4) and trace.input_decay.shape == (1, 3, 6, 2)
    assert torch.isnan(trace.reset[0, 1, 2:]).all() and not torch.isnan(trace.reset[0, 1, :2]).any()
    torch.testing.assert_close(trace.update, 1 - trace.keep, equal_nan=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(times=torch.tensor([[0.0, 1, 1, 2, 3, 4]] * 3, dtype=torch.float64)), "repeats step t=1"),
    (dict(times=torch.tensor([[0.0, 2, 1, 3, 4, 5]] * 3, dtype=torch.float64)), "goes back from step t=1"),
    (dict(mask=torch.full((6, 3, 2), 0.5, dtype=torch.float64)), "only 0 .missing. and 1"),
    (dict(gaps=-torch.ones(6, 3, 2, dtype=torch.float64)), "finite and ≥ 0"),
])
def test_bad_inputs_are_named(kwargs, message):
    values, _, _ = _data()
    with pytest.raises(grukit.InputError, match=message):
        GRUD(2, 4, dtype=torch.float64)(values, **kwargs)
    with pytest.raises(grukit.InputError, match="values must be a"):
        GRUD(2, 4, dtype=torch.float64)(values[..., :1])


def test_the_papers_baselines_are_options_of_one_module():
    """GRU-Mean imputes x̄, GRU-Forward the last observation, GRU-Simple reads [x̂; m; δ]: with its
    δ weights zero it equals GRU-Forward plus the mask term."""
    from grukit.nn.grud import gru_forward, gru_mean, gru_simple

    values, mask, times = _data()
    mean = torch.tensor([3.0, -2.0], dtype=torch.float64)
    x, m = values.transpose(0, 1), mask.transpose(0, 1)
    for make, fill in ((gru_mean, mean.expand(3, 6, 2)), (gru_forward, last_observed(torch.nan_to_num(x), m, mean))):
        model = make(2, 4, empirical_mean=mean, dtype=torch.float64)
        gamma_x, gamma_h = model.decays(time_gaps(m, times))
        assert (gamma_h == 1).all() and model.weight_mh is None
        torch.testing.assert_close(model.impute(x, m, gamma_x), torch.where(m == 1, torch.nan_to_num(x), fill))
    simple = gru_simple(2, 4, empirical_mean=mean, dtype=torch.float64)
    forward_with_mask = GRUD(2, 4, imputation="forward", hidden_decay=False, empirical_mean=mean, dtype=torch.float64)
    state = {k: v for k, v in simple.state_dict().items() if k != "weight_dh"}
    forward_with_mask.load_state_dict(state)
    with torch.no_grad():
        simple.weight_dh.zero_()
    torch.testing.assert_close(simple(values, times=times)[0], forward_with_mask(values, times=times)[0])
    with torch.no_grad():
        simple.weight_dh.fill_(0.3)
    assert not torch.allclose(simple(values, times=times)[0], forward_with_mask(values, times=times)[0])
    with pytest.raises(grukit.InputError, match="imputation must be one of"):
        GRUD(2, 4, imputation="zero")


def _observations():
    import pandas as pd

    return pd.DataFrame({  # stay b's rows out of time order: rows carry their times
        "stay": ["a", "a", "a", "b", "b", "b", "a"],
        "hour": [0.0, 0.0, 2.5, 3.0, 1.0, 3.0, 4.0],
        "var": ["hr", "sbp", "hr", "hr", "sbp", "sbp", "sbp"],
        "value": [80, 120, 85, 90, 110, 100, 125],
        "died": [0, 0, 0, 1, 1, 1, 0],
    })


def test_long_observations_become_steps_with_gaps_means_and_batches():
    from grukit.data.irregular import IrregularDataset

    data = IrregularDataset.from_long(_observations(), id="stay", time="hour", variable="var", value="value",
                                      label="died")
    assert data.variables == ("hr", "sbp") and data.ids == ("a", "b") and data.labels.tolist() == [0.0, 1.0]
    nan = float("nan")
    torch.testing.assert_close(data.values[0], torch.tensor([[80, 120], [85, nan], [nan, 125]],
                                                            dtype=torch.float64), equal_nan=True)
    torch.testing.assert_close(data.times[1], torch.tensor([1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(data.values[1], torch.tensor([[nan, 110], [90, 100]], dtype=torch.float64),
                               equal_nan=True)
    torch.testing.assert_close(data.empirical_mean([0]), torch.tensor([82.5, 122.5], dtype=torch.float64))
    batch = data.collate([0, 1], dtype=torch.float64)
    assert batch.values.shape == (2, 3, 2) and batch.lengths.tolist() == [3, 2]
    # stay a: hr seen at 0 and 2.5, missing at 4 → δ = 0, 2.5, 1.5; sbp seen at 0, missing at 2.5 → 0, 2.5, 4
    torch.testing.assert_close(batch.gaps[0], torch.tensor([[0, 0], [2.5, 2.5], [1.5, 4.0]], dtype=torch.float64))
    model = GRUD(2, 3, batch_first=True, empirical_mean=data.empirical_mean([0]), dtype=torch.float64)
    out, h_n = model(batch.values, mask=batch.mask, gaps=batch.gaps, lengths=batch.lengths)
    assert out.shape == (2, 3, 3) and (out[1, 2] == 0).all() and torch.isfinite(h_n).all()
    via_times, _ = model(batch.values, mask=batch.mask, times=batch.times, lengths=batch.lengths)
    torch.testing.assert_close(via_times, out)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(value=f.value.astype(object).where(f.index != 2, "high")),
     "non-numeric or empty value 'high' at row 4"),
    (lambda f: f.assign(hour=f.hour.where(f.index != 5, 3.0), var=f["var"].where(f.index != 5, "hr")),
     "row 7 measures 'hr' of 'b' at time 3 again .first at row 5."),
    (lambda f: f.assign(died=f.died.where(f.index != 6, 1)), "sequence 'a' has 2 different labels"),
    (lambda f: f.drop(columns="hour"), "no column 'hour'"),
])
def test_malformed_long_observations_are_named(change, message):
    from grukit.data.irregular import IrregularDataset

    with pytest.raises(grukit.InputError, match=message):
        IrregularDataset.from_long(change(_observations()), id="stay", time="hour", variable="var", value="value",
                                   label="died")
    with pytest.raises(grukit.InputError, match="names the variable 'sbp', not one of hr"):
        IrregularDataset.from_long(_observations(), id="stay", time="hour", variable="var", value="value",
                                   variables=["hr"])


def test_arrays_with_unsorted_times_or_a_never_observed_variable_are_named():
    from grukit.data.irregular import IrregularDataset

    nan = float("nan")
    with pytest.raises(grukit.InputError, match="goes back from step t=0"):
        IrregularDataset.from_arrays([[[1.0, nan], [2.0, nan]]], [[5.0, 4.0]])
    data = IrregularDataset.from_arrays([[[1.0, nan], [2.0, nan]], [[nan, 3.0]]], [[0.0, 1.0], [0.0]],
                                        variables=["a", "b"])
    torch.testing.assert_close(data.empirical_mean(), torch.tensor([1.5, 3.0], dtype=torch.float64))
    with pytest.raises(grukit.InputError, match="variable 'b' is never observed"):
        data.empirical_mean([0])


def test_gaps_from_times_pass_gradients_to_the_mask_and_times_on_both_backends():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    times = torch.cumsum(torch.rand(2, 6, dtype=torch.float64) + 0.1, dim=1)
    grads = {}
    for backend in ("reference", "fused"):
        torch.manual_seed(1)
        model = grukit.GRUD(3, 4, batch_first=True, backend=backend, dtype=torch.float64)
        mask = (torch.rand(2, 6, 3, generator=torch.Generator().manual_seed(2)) > 0.3).double().requires_grad_()
        stamps = times.clone().requires_grad_()
        out, _ = model(x, mask=mask, times=stamps)
        out.sum().backward()
        grads[backend] = (mask.grad, stamps.grad)
    for a, b in zip(grads["reference"], grads["fused"], strict=True):
        assert a is not None and torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
