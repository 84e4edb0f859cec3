"""Which kernel backend="auto" picks, and what happens when the fused kernel is unavailable."""

import pytest
import torch

import grukit
import grukit.fused


def pick(gru, *, batch=1, gates=False):
    return gru._resolve_backend(return_gates=gates, batch_size=batch)


def test_auto_follows_the_measured_crossover():
    small = grukit.GRU(8, 32)
    assert pick(small) == "fused"
    with torch.no_grad():
        assert pick(grukit.GRU(64, 128), batch=32) == "fused"  # inference up to B·H = 131072, H ≤ 512
        assert pick(grukit.GRU(256, 512), batch=256) == "fused"
        assert pick(grukit.GRU(256, 512), batch=512) == "torch"  # and beyond it torch
        assert pick(grukit.GRU(64, 1024), batch=1) == "torch"
    assert pick(grukit.GRU(64, 128), batch=256) == "fused"  # training up to B·H = 65536, H ≤ 512
    assert pick(grukit.GRU(64, 512), batch=1) == "fused"
    assert pick(grukit.GRU(64, 512), batch=256) == "torch"
    assert pick(grukit.GRU(64, 1024), batch=1) == "torch"
    assert pick(grukit.GRU(256, 512), batch=256, gates=True) == "fused"  # torch has no traces
    assert pick(grukit.GRU(256, 512, reset="before"), batch=256) == "fused"  # nor reset="before"
    assert pick(grukit.LSTM(8, 32)) == "torch"


def test_unavailable_fused_kernel_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(grukit.fused, "_IMPORT_ERROR", "numba could not be imported (test)")
    gru = grukit.GRU(3, 4, reset="before", dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="fused kernel is unavailable"):
        out, _ = gru(torch.randn(5, 2, 3, dtype=torch.float64))
    reference = grukit.GRU(3, 4, reset="before", backend="reference", dtype=torch.float64)
    reference.load_state_dict(gru.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with pytest.warns(RuntimeWarning):
        torch.testing.assert_close(gru(x)[0], reference(x)[0], rtol=0, atol=0)
    with pytest.raises(grukit.InputError, match="numba could not be imported"), pytest.warns(RuntimeWarning):
        grukit.GRU(3, 4, backend="fused")(torch.randn(5, 2, 3))


def test_compiled_kernels_are_cached_on_disk():
    from pathlib import Path

    gru = grukit.GRU(3, 4, backend="fused")
    out, _ = gru(torch.randn(4, 2, 3))
    out.sum().backward()
    for kernel in (grukit.fused._forward, grukit.fused._backward):
        cache_dir = Path(kernel._cache._cache_path)
        assert any(cache_dir.glob(f"*{kernel.__name__}*.nbi")), f"no on-disk cache for {kernel.__name__}"


def test_import_does_not_load_numba():
    import subprocess
    import sys

    code = "import sys, grukit; grukit.GRU; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kernels_use_torchs_blas_where_torch_exports_it():
    import grukit.blas

    if torch.backends.mkl.is_available():  # x86-64 wheels: MKL's sgemm_/dgemm_ are exported
        assert all(grukit.blas.GEMM_ADDRESSES), "torch has MKL but its gemm symbols were not found"


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_blas_fallback_equals_torchs_blas(monkeypatch, reset, dtype):
    """Where torch exports no gemm, the kernels use numba's np.dot: same values and gradients."""
    import grukit.blas

    torch.manual_seed(0)
    gru = grukit.GRU(3, 5, 2, bidirectional=True, reset=reset, backend="fused", dtype=dtype)
    x = torch.randn(7, 4, 3, dtype=dtype)
    lengths = torch.tensor([7, 3, 5, 1])
    results = []
    for addresses in (grukit.blas.GEMM_ADDRESSES, (0, 0)):
        monkeypatch.setattr(grukit.blas, "GEMM_ADDRESSES", addresses)
        gru.zero_grad()
        out, h_n = gru(x, lengths=lengths)
        (out.square().sum() + h_n.sum()).backward()
        results.append([out.detach(), h_n.detach()] + [p.grad.clone() for p in gru.parameters()])
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    for mkl, fallback in zip(*results):
        torch.testing.assert_close(mkl, fallback, rtol=0, atol=atol)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("chunk_values", [1, 40, 10_000])  # 1 step per chunk, a few steps, all steps
def test_chunked_projection_equals_the_reference(monkeypatch, reset, chunk_values):
    """The fused kernel cuts the input projection into chunks of steps: any cut gives the same values
    and gradients (float64), both directions, with lengths, with and without biases."""
    import grukit.fused

    monkeypatch.setattr(grukit.fused, "CHUNK_VALUES", chunk_values)
    for bias in (True, False):
        torch.manual_seed(1)
        ref = grukit.GRU(3, 4, 2, bias=bias, bidirectional=True, reset=reset, backend="reference",
                         dtype=torch.float64)
        fused = grukit.GRU(3, 4, 2, bias=bias, bidirectional=True, reset=reset, backend="fused",
                           dtype=torch.float64)
        fused.load_state_dict(ref.state_dict())
        x = torch.randn(9, 3, 3, dtype=torch.float64)
        lengths = torch.tensor([9, 4, 1])
        results = []
        for module in (ref, fused):
            xi = x.clone().requires_grad_()
            out, h_n = module(xi, lengths=lengths)
            (out.square().sum() + (h_n * torch.arange(4.0, dtype=torch.float64)).sum()).backward()
            results.append([out, h_n, xi.grad] + [p.grad for p in module.parameters()])
        for mine, theirs in zip(*results):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10)
