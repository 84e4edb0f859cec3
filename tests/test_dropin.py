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


def _gru(backend, *, reset="after", layers=1, bidirectional=False, dtype=torch.float64):
    torch.manual_seed(0)
    return grukit.GRU(2, 3, num_layers=layers, bidirectional=bidirectional, reset=reset, backend=backend,
                      batch_first=True, dtype=dtype)


def _accepts(backend, reset):
    return not (backend == "torch" and reset == "before")


GRU_CASES = [(backend, reset, layers, bidirectional, lengths)
             for backend in ("auto", "reference", "torch", "fused") for reset in ("after", "before")
             for layers, bidirectional in ((1, False), (2, True)) for lengths in (None, (4, 2))
             if _accepts(backend, reset)]
CASE_IDS = [f"{b}-{r}-{layer}L-{'bi' if d else 'uni'}-{'lengths' if n else 'full'}" for b, r, layer, d, n in GRU_CASES]
QUICK = {"auto-after-1L-uni-full", "auto-before-2L-bi-lengths", "torch-after-2L-bi-lengths", "fused-after-1L-uni-full",
         "reference-before-1L-uni-full"}  # compile and export cases in `make test`; every case in `make test-all`
COMPILE_CASES = [pytest.param(*case, id=name, marks=() if name in QUICK else pytest.mark.slow)
                 for case, name in zip(GRU_CASES, CASE_IDS, strict=True)]


def _loss_of(model, lengths):
    names = [name for name, _ in model.named_parameters()]

    def loss(x, *params):
        out, h_n = torch.func.functional_call(model, dict(zip(names, params, strict=True)), (x,),
                                              {"lengths": None if lengths is None else torch.tensor(lengths)})
        return out.pow(2).sum() + h_n.sin().sum()

    return loss


@pytest.mark.parametrize("backend,reset,layers,bidirectional,lengths", GRU_CASES, ids=CASE_IDS)
def test_double_backward_matches_the_reference_on_every_backend(backend, reset, layers, bidirectional, lengths):
    """gradgradcheck in float64, and a Hessian-vector product equal to the reference path's."""
    model = _gru(backend, reset=reset, layers=layers, bidirectional=bidirectional)
    reference = _gru("reference", reset=reset, layers=layers, bidirectional=bidirectional)
    reference.load_state_dict(model.state_dict())
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    params = tuple(p.detach().requires_grad_() for p in model.parameters())
    assert torch.autograd.gradgradcheck(_loss_of(model, lengths), (x, *params), atol=1e-6, fast_mode=True)

    def hvp(of):
        grads = torch.autograd.grad(_loss_of(of, lengths)(x, *params), (x, *params), create_graph=True)
        return torch.autograd.grad(sum((g * g).sum() for g in grads), (x, *params))

    for got, expected in zip(hvp(model), hvp(reference), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend,reset", [(b, r) for b in ("auto", "reference", "torch", "fused")
                                           for r in ("after", "before") if _accepts(b, r)])
def test_gru_cell_double_backward_on_every_backend(backend, reset):
    torch.manual_seed(0)
    cell = grukit.GRUCell(2, 3, backend=backend, reset=reset, dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, h: cell(x, h).sin(), (x, h), fast_mode=True)


@pytest.mark.parametrize("backend,reset,layers,bidirectional,lengths", GRU_CASES, ids=CASE_IDS)
def test_torch_func_transforms_agree_with_finite_differences_and_a_loop(backend, reset, layers, bidirectional,
                                                                        lengths):
    model = _gru(backend, reset=reset, layers=layers, bidirectional=bidirectional)
    given = None if lengths is None else torch.tensor(lengths)
    x = torch.randn(2, 4, 2, dtype=torch.float64)
    if backend in ("fused", "torch"):  # they compute outside torch.func's reach: refused by name
        with pytest.raises(InputError, match="torch.func"):
            torch.func.jacrev(lambda x: model(x, lengths=given)[1])(x)
        return

    def final(x):
        return model(x, lengths=given)[1]

    jacobian = torch.func.jacrev(final)(x)
    torch.testing.assert_close(torch.func.jacfwd(final)(x), jacobian, rtol=1e-9, atol=1e-10)
    step, probe = 1e-6, torch.zeros_like(x)
    probe[1, 1, 0] = step
    finite = (final(x + probe) - final(x - probe)) / (2 * step)
    torch.testing.assert_close(jacobian[..., 1, 1, 0], finite, rtol=1e-6, atol=1e-8)
    grad = torch.func.grad(lambda x: model(x, lengths=given)[0].sum())(x)
    torch.testing.assert_close(grad, torch.autograd.functional.jacobian(lambda x: model(x, lengths=given)[0].sum(), x),
                               rtol=1e-10, atol=1e-12)
    many = torch.randn(5, 2, 4, 2, dtype=torch.float64)
    torch.testing.assert_close(torch.func.vmap(lambda x: model(x, lengths=given)[0])(many),
                               torch.stack([model(one, lengths=given)[0] for one in many]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend,reset,layers,bidirectional,lengths", COMPILE_CASES)
def test_compile_fullgraph_and_export_match_eager(backend, reset, layers, bidirectional, lengths):
    model = _gru(backend, reset=reset, layers=layers, bidirectional=bidirectional, dtype=torch.float32)
    given = None if lengths is None else torch.tensor(lengths)
    x = torch.randn(2, 4, 2)
    if backend == "torch" and lengths is not None:  # torch's op needs packing, which does not trace
        with pytest.raises(Exception, match="cannot run this call"):  # dynamo wraps what the module raises
            torch.compile(lambda x: model(x, lengths=given), fullgraph=True)(x)
        return
    x.requires_grad_()
    eager = model(x, lengths=given)
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: model(x, lengths=given), fullgraph=True)(x)
    program = torch.export.export(model, (x.detach(),), {} if given is None else {"lengths": given})
    exported = program.module()(x.detach(), **({} if given is None else {"lengths": given}))
    for got in (compiled, exported):
        torch.testing.assert_close(got[0], eager[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got[1], eager[1], rtol=1e-5, atol=1e-6)
    if backend == "fused":  # the compiled kernel, kept whole as grukit's custom op, forward and backward
        assert "grukit.gru_scan" in str(program.graph)
        with torch.no_grad():  # inference keeps one step's gates, as the eager path does
            torch._dynamo.reset()
            inferred = torch.compile(lambda x: model(x, lengths=given), fullgraph=True)(x)
        torch.testing.assert_close(inferred[0], eager[0], rtol=1e-5, atol=1e-6)
    expected = torch.autograd.grad(eager[0].sum() + eager[1].sum(), (x, model.weight_hh_l0))
    got = torch.autograd.grad(compiled[0].sum() + compiled[1].sum(), (x, model.weight_hh_l0))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_the_custom_op_passes_torch_library_s_checks():
    from grukit.kernels.gru_scan import gru_scan_op

    torch.manual_seed(0)
    x, h0 = torch.randn(4, 2, 3, requires_grad=True), torch.randn(2, 5, requires_grad=True)
    weights = [torch.randn(15, 3), torch.randn(15), torch.randn(15, 5), torch.randn(15)]
    for w in weights:
        w.requires_grad_()
    for reset_after in (True, False):  # whole lengths: the gates' NaN at padded steps would compare unequal
        torch.library.opcheck(gru_scan_op, (x, h0, *weights[:2], *weights[2:], torch.tensor([4, 4]), False,
                                            reset_after, True))


@pytest.mark.parametrize("backend", ["auto", "reference", "fused"])
def test_gru_cell_and_gru_d_under_transforms_compile_and_export(backend):
    torch.manual_seed(0)
    cell = grukit.GRUCell(3, 4, backend=backend)
    x = torch.randn(2, 3)
    grud = grukit.GRUD(3, 4, backend=backend)
    values, gaps = torch.randn(2, 5, 3), torch.rand(2, 5, 3)
    mask = (torch.rand(2, 5, 3) > 0.3).float()
    if backend == "fused":
        for call in (lambda: torch.func.vmap(cell)(x[None]), lambda: torch.func.vmap(
                lambda v: grud(v, mask=mask, gaps=gaps)[0])(values[None])):
            with pytest.raises(InputError, match="runs eagerly"):
                call()
        return
    torch.testing.assert_close(torch.func.vmap(cell)(x[None].expand(3, -1, -1)), cell(x).expand(3, -1, -1))
    torch.testing.assert_close(torch.compile(cell, fullgraph=True)(x), cell(x))
    torch.testing.assert_close(torch.export.export(cell, (x,)).module()(x), cell(x))
    eager = grud(values, mask=mask, gaps=gaps)[0]
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(lambda v: grud(v, mask=mask, gaps=gaps)[0], fullgraph=True)(values),
                               eager)
    program = torch.export.export(grud, (values,), {"mask": mask, "gaps": gaps})
    torch.testing.assert_close(program.module()(values, mask=mask, gaps=gaps)[0], eager)
    jacobian = torch.func.jacrev(lambda v: grud(v, mask=mask, gaps=gaps)[1].sum())(values)
    torch.testing.assert_close(jacobian, torch.autograd.functional.jacobian(
        lambda v: grud(v, mask=mask, gaps=gaps)[1].sum(), values))


def test_gru_d_second_derivatives_run_on_the_reference_and_the_compiled_backward_says_so():
    torch.manual_seed(0)
    values, gaps = torch.randn(2, 4, 2, dtype=torch.float64), torch.rand(2, 4, 2, dtype=torch.float64)
    mask = torch.ones_like(values)
    reference = grukit.GRUD(2, 3, backend="reference", dtype=torch.float64)
    x = values.clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda v: reference(v, mask=mask, gaps=gaps)[1], (x,))
    fused = grukit.GRUD(2, 3, backend="fused", dtype=torch.float64)
    (grad,) = torch.autograd.grad(fused(x, mask=mask, gaps=gaps)[1].sum(), x)  # a first derivative: compiled
    with pytest.raises(InputError, match="backend='reference'"):
        torch.autograd.grad(fused(x, mask=mask, gaps=gaps)[1].sum(), x, create_graph=True)


@pytest.mark.parametrize("route", ["script", "trace"])
def test_torchscript_is_refused_with_the_routes_that_work(route):
    model = grukit.GRU(3, 4)
    with pytest.raises(InputError, match=r"use module.to_torch\(\) .* or torch.export.export"):
        torch.jit.script(model) if route == "script" else torch.jit.trace(model, (torch.randn(5, 2, 3),))
