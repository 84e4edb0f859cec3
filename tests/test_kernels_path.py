"""The compiled kernels' native path (grukit.kernels.native): the plain path forced by its switch,
the one-shot self-check and its warning, the libraries found, the 32-bit BLAS sizes, and the
bundles the compiled loops take."""

import inspect
import os
import re
import sys
import warnings

import pytest
import torch

import grukit
from grukit.kernels import blas, gru_scan, grud_scan, native, rows
from grukit.nn.grud import GRUD
from grukit.nn.time_gaps import time_gaps


@pytest.fixture
def plain_path():
    previous = native.use_plain_path(True)
    yield rows.kernel_path()
    native.use_plain_path(previous)


@pytest.fixture
def fresh_path():
    """The fast path chosen anew (self-check included) by the test; the previous setting after it."""
    previous = native.use_plain_path(False)
    yield
    native.simulate_self_check_failure(None)
    native.use_plain_path(previous)


def _gru_matches_reference(reset: str, lengths) -> None:
    torch.manual_seed(2)
    ref = grukit.GRU(3, 4, 2, bidirectional=True, reset=reset, backend="reference", dtype=torch.float64)
    fused = grukit.GRU(3, 4, 2, bidirectional=True, reset=reset, backend="fused", dtype=torch.float64)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(9, 20, 3, dtype=torch.float64)
    h0 = torch.randn(4, 20, 4, dtype=torch.float64)
    results = []
    for module in (ref, fused):
        xi, hi = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, h_n = module(xi, hi, lengths=lengths)
        (out.sin().sum() + (h_n * torch.arange(4.0, dtype=torch.float64)).sum()).backward()
        results.append([out, h_n, xi.grad, hi.grad] + [p.grad for p in module.parameters()])
    for mine, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10)


def _grud_matches_reference(lengths) -> None:
    generator = torch.Generator().manual_seed(4)
    batch, steps = 20, 7
    values = torch.randn(steps, batch, 3, generator=generator, dtype=torch.float64)  # T-major, as GRUD takes
    mask = (torch.rand(steps, batch, 3, generator=generator) > 0.4).to(torch.float64)
    times = torch.cumsum(torch.rand(batch, steps, generator=generator, dtype=torch.float64) + 0.1, dim=1)
    reference = GRUD(3, 5, backend="reference", feed_gaps=True, dtype=torch.float64)
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if name.startswith("decay"):
                parameter.uniform_(-0.5, 0.5)
    fused = GRUD(3, 5, backend="fused", feed_gaps=True, dtype=torch.float64)
    fused.load_state_dict(reference.state_dict())
    gaps = time_gaps(mask.transpose(0, 1), times).transpose(0, 1)
    results = []
    for module in (reference, fused):
        x, m = values.clone().requires_grad_(), mask.clone().requires_grad_()
        out, h_n, trace = module(x, mask=m, gaps=gaps, lengths=lengths, return_gates=True)
        (out.sin().sum() + (h_n**2).sum() + trace.hidden_decay.sin().sum()).backward()
        results.append([out, h_n, trace.reset, trace.keep, trace.candidate, trace.input_decay, trace.hidden_decay,
                        x.grad, m.grad, *(p.grad for p in module.parameters())])
    for mine, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10, equal_nan=True)


LENGTHS = {"full": None, "lengths": torch.tensor([9, 4, 1, 7, 9, 2, 5, 9, 3, 8, 6, 9, 1, 2, 7, 7, 4, 9, 5, 3])}


@pytest.mark.parametrize("lengths", sorted(LENGTHS))
def test_plain_path_gives_the_reference_gru_and_grud(plain_path, lengths, monkeypatch):
    """Acceptance: forced through the public switch, the plain path (no OpenMP team, no MKL
    pinning, numba's np.dot) runs the fused GRU and GRU-D kernels to the reference backend's values
    and gradients in float64 (1e-10), with and without lengths."""
    assert plain_path == native.KernelPath()  # (0, 0) gemm, no pinning, no team, nothing to report
    assert blas.gemm_for(plain_path, torch.zeros(0, dtype=torch.float64).numpy().dtype) == 0
    assert not rows.can_split_rows() and rows.executor() == "threads"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # even with threads to spare: one part
    assert rows.row_parts(64, 32) == [(0, 64)]
    team_calls = []
    monkeypatch.setattr(native.OpenMPTeam, "run", lambda *args: team_calls.append(args))
    for reset in ("after", "before"):
        _gru_matches_reference(reset, LENGTHS[lengths])
    grud_lengths = None if LENGTHS[lengths] is None else LENGTHS[lengths].clamp(max=7)
    _grud_matches_reference(grud_lengths)
    assert team_calls == []


def test_the_environment_variable_forces_the_plain_path_at_first_use(monkeypatch):
    previous = native.use_plain_path(None)  # follow the environment
    try:
        monkeypatch.setenv(native.ENVIRONMENT_VARIABLE, "1")
        assert native.plain_path_requested()
        native.use_plain_path(None)  # chosen anew at the next use: the variable is read then
        assert rows.kernel_path() == native.KernelPath()
        for off in ("", "0", "false", "No"):
            monkeypatch.setenv(native.ENVIRONMENT_VARIABLE, off)
            assert not native.plain_path_requested()
        monkeypatch.setenv(native.ENVIRONMENT_VARIABLE, "1")
        native.use_plain_path(False)  # code overrides the environment
        assert not native.plain_path_requested()
    finally:
        native.use_plain_path(previous)
    with pytest.raises(grukit.InputError, match="True, False or None, got 'yes'"):
        native.use_plain_path("yes")


@pytest.mark.parametrize("stage", native.FAULT_STAGES)
def test_a_failed_self_check_warns_once_naming_the_cause_and_the_numbers_stay_right(fresh_path, stage):
    """A self-check that finds wrong numbers (simulated through the testing hook) sends that piece
    to the plain path with one KernelPathWarning naming the cause; the kernels still give the
    reference's values and gradients, and later calls do not warn again."""
    native.simulate_self_check_failure(stage)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _gru_matches_reference("after", LENGTHS["lengths"])
        _grud_matches_reference(None)
    kernel_warnings = [w for w in caught if issubclass(w.category, native.KernelPathWarning)]
    assert len(kernel_warnings) == 1, [str(w.message) for w in kernel_warnings]
    message = str(kernel_warnings[0].message)
    cause = "product came back wrong" if stage == "gemm" else "two parts differ from one part"
    assert cause in message and cause in rows.kernel_path().plain_because
    path = rows.kernel_path()
    if stage == "gemm":
        assert path.gemm == (0, 0) and path.set_local_threads is None
    else:
        assert path.team is None


def test_the_testing_hook_names_its_stages():
    with pytest.raises(grukit.InputError, match="stage must be one of"):
        native.simulate_self_check_failure("blas")


def test_an_exception_in_the_self_check_is_named(fresh_path, monkeypatch):
    def broken():
        raise OSError("simulated: threadpoolctl cannot read the process")

    monkeypatch.setattr(native, "loaded_libraries", broken)
    with pytest.warns(native.KernelPathWarning, match="raised OSError: simulated"):
        path = rows.kernel_path()
    assert path.team is None
    _gru_matches_reference("before", None)


def test_the_libraries_are_the_ones_torch_loaded():
    """The OpenMP runtime is one threadpoolctl lists; MKL's gemm comes from torch's CPU library
    where torch has MKL; a library the process has not loaded is refused, not loaded."""
    team, cause = native.find_team()
    listed = [lib["filepath"] for lib in native.loaded_libraries() if lib["internal_api"] == "openmp"]
    assert (team is not None and team.path in listed) or team is None and (
        cause is not None or "OpenMP" not in torch.__config__.parallel_info().split("ATen parallel backend:")[-1])
    found, cause = native.find_blas()
    assert found is not None or cause is not None or not torch.backends.mkl.is_available()
    if found is not None:
        assert all(found.gemm) and os.path.exists(found.where)
    if sys.platform.startswith("linux"):
        import importlib.util

        spec = importlib.util.find_spec("_lzma") or importlib.util.find_spec("_bz2")
        if spec is not None and spec.name not in sys.modules:
            with pytest.raises(OSError):
                native.open_loaded(spec.origin)  # RTLD_NOLOAD: not loaded, so not opened
            with open("/proc/self/maps") as maps:
                assert spec.origin not in maps.read()


def test_sizes_past_the_32_bit_blas_are_refused_before_any_product(monkeypatch):
    with pytest.raises(grukit.InputError, match=r"batch_size = 2147483648 exceeds 2147483647"):
        blas.check_blas_sizes(batch_size=2**31)
    blas.check_blas_sizes(batch_size=2**31 - 1)
    monkeypatch.setattr(blas, "INT32_MAX", 16)  # a small limit stands in for 2³¹ − 1
    with pytest.raises(grukit.InputError, match="batch_size = 32 exceeds 16"):
        grukit.GRU(3, 4, backend="fused")(torch.randn(5, 32, 3))
    with pytest.raises(grukit.InputError, match="gate_units = 18 exceeds 16"):
        GRUD(2, 6, backend="fused")(torch.randn(5, 2, 2), mask=torch.ones(5, 2, 2),
                                    times=torch.arange(5.0).expand(2, 5))


KERNELS = {
    gru_scan._forward: {"inputs": gru_scan.ScanInputs, "weights": gru_scan.ForwardWeights,
                        "gates": gru_scan.Gates, "block": gru_scan.Block},
    gru_scan._backward: {"inputs": gru_scan.ScanInputs, "weights": gru_scan.BackwardWeights,
                         "gates": gru_scan.Gates, "grads": gru_scan.ChunkGradients, "block": gru_scan.Block},
    grud_scan._forward: {"steps_in": grud_scan.Steps, "weights": grud_scan.RecurrentWeights,
                         "biases": grud_scan.Biases, "gates": grud_scan.GRUDGates, "rows_in": grud_scan.Rows},
    grud_scan._backward: {"steps_in": grud_scan.Steps, "weights": grud_scan.RecurrentWeights,
                          "gates": grud_scan.GRUDGates, "incoming": grud_scan.Incoming,
                          "grads": grud_scan.StepGradients, "rows_in": grud_scan.Rows},
}


@pytest.mark.parametrize("kernel", list(KERNELS), ids=lambda k: f"{k.py_func.__module__}.{k.__name__}")
def test_each_bundle_is_unpacked_under_its_field_names_in_order(kernel):
    """The compiled loops take plain tuples; each unpacks its bundle once, naming the fields as the
    NamedTuple does, in its order (`_ALIASES`: the loop's older names for a few; `_` one it skips)."""
    source = inspect.getsource(kernel.py_func)
    for argument, bundle in KERNELS[kernel].items():
        unpacks = re.findall(rf"^\s+([\w, ]+) = {argument}$", source, flags=re.M)
        assert len(unpacks) == 1, f"{kernel.__name__} unpacks {argument} {len(unpacks)} times"
        names = [name.strip() for name in unpacks[0].split(",")]
        assert len(names) == len(bundle._fields), (argument, names, bundle._fields)
        for name, field in zip(names, bundle._fields):
            assert name in ("_", field, _ALIASES.get((bundle, field))), (argument, name, field)


_GATE_ALIASES = {"r": "r_all", "z": "z_all", "n": "n_all", "ghn": "ghn_all", "h_hat": "h_hat_all"}
_ALIASES = {
    (gru_scan.ForwardWeights, "w_hh_t"): "w_t", (gru_scan.BackwardWeights, "w_hh"): "w",
    **{(gru_scan.Gates, field): name for field, name in _GATE_ALIASES.items()},
    **{(grud_scan.GRUDGates, field): name for field, name in _GATE_ALIASES.items()},
    (grud_scan.StepGradients, "rh"): "rh_all",
    (grud_scan.RecurrentWeights, "w_rz"): "w_rz_t", (grud_scan.RecurrentWeights, "w_n"): "w_n_t",  # the forward's
}


def test_every_compiled_loop_uses_numpys_error_model():
    """numba's default (Python) error model tests every float division for zero, which keeps the
    compiler from vectorising σ and tanh over the hidden units (a tenth of the speed, measured on
    the minGRU scan): every compiled loop of the scan kernels is built with numpy's. Exempt: the
    BLAS call and the row copy, which do not divide."""
    pytest.importorskip("numba")
    from numba.core.registry import CPUDispatcher

    from grukit.kernels import mingru_scan

    loops = {f"{value.py_func.__module__}.{name}": value for module in (gru_scan, grud_scan, mingru_scan)
             for name, value in vars(module).items() if isinstance(value, CPUDispatcher)}
    exempt = {"grukit.kernels.blas.matmul_into", "grukit.kernels.gru_scan._put_rows"}
    assert exempt < set(loops) and len(loops) >= 10, sorted(loops)
    assert {name for name, loop in loops.items()
            if loop.targetoptions.get("error_model") != "numpy"} - exempt == set()
