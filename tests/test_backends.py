"""Which kernel backend="auto" picks, and what happens when the fused kernel is unavailable."""

import numpy as np
import pytest
import torch

import grukit
import grukit.kernels.blas
import grukit.kernels.gru_scan
import grukit.kernels.rows
from grukit.kernels import native

EXECUTORS = ["threads"] + ["openmp-team"] * (grukit.kernels.rows.executor() == "openmp-team")  # rows.run_rows's


@pytest.fixture(params=[False, True], ids=["fast-path", "plain-path"])
def kernel_path(request):
    """Each test run on the fast path (where this machine has it) and on the plain path."""
    previous = native.use_plain_path(request.param)
    yield grukit.kernels.rows.kernel_path()
    native.use_plain_path(previous)


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
    assert pick(grukit.GRU(64, 128), batch=256) == "fused"  # training up to B·H = 131072, H ≤ 512
    assert pick(grukit.GRU(64, 512), batch=1) == "fused"
    assert pick(grukit.GRU(64, 512), batch=256) == "fused"
    assert pick(grukit.GRU(64, 512), batch=512) == "torch"
    assert pick(grukit.GRU(64, 1024), batch=1) == "torch"
    assert pick(grukit.GRU(256, 512), batch=256, gates=True) == "fused"  # torch has no traces
    assert pick(grukit.GRU(256, 512, reset="before"), batch=256) == "fused"  # nor reset="before"
    assert pick(grukit.LSTM(8, 32)) == "torch"


def test_unavailable_fused_kernel_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(grukit.kernels.gru_scan, "NUMBA_ERROR", "numba could not be imported (test)")
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


@pytest.mark.slow  # two fresh processes, one compiling every kernel: 25 s
def test_compiled_kernels_are_cached_on_disk(tmp_path):
    """A fresh cache directory (so no file from an earlier run can stand in): the first process compiles
    and writes the kernels' cache, a second one loads them from it instead of compiling."""
    import os
    import subprocess
    import sys

    code = """
import sys, torch, grukit, grukit.kernels.gru_scan as scan
gru = grukit.GRU(3, 4, backend="fused")
out, _ = gru(torch.randn(4, 2, 3))
out.sum().backward()
hits = sum(sum(k.stats.cache_hits.values()) for k in (scan._forward, scan._backward))
misses = sum(sum(k.stats.cache_misses.values()) for k in (scan._forward, scan._backward))
print(hits, misses)
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["0", "2"], first.stdout  # compiled both, found nothing cached
    for name in ("_forward", "_backward"):
        assert list(tmp_path.rglob(f"*{name}*.nbi")), f"no on-disk cache for {name}"
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert second.stdout.split() == ["2", "0"], second.stdout  # both loaded from the cache


def test_import_does_not_load_numba():
    import subprocess
    import sys

    code = "import sys, grukit; grukit.GRU; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kernels_use_torchs_blas_where_torch_exports_it(kernel_path):
    """With MKL (x86-64 wheels) the fast path calls its sgemm_/dgemm_ and pins threads; without MKL,
    and on the plain path, the products are numba's np.dot, unpinned, and rows are not split."""
    if torch.backends.mkl.is_available() and not native.plain_path_requested():
        assert all(kernel_path.gemm), "torch has MKL but its gemm symbols were not found"
        assert kernel_path.set_local_threads is not None and kernel_path.plain_because is None
        assert grukit.kernels.blas.gemm_for(kernel_path, np.dtype(np.float64)) == kernel_path.gemm[1]
    else:
        assert kernel_path.set_local_threads is None
        assert grukit.kernels.rows.row_parts(64, 32, threads=2) == [(0, 64)]
    if native.plain_path_requested():
        assert kernel_path == native.KernelPath()  # np.dot, no pinning, no team, nothing to report


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_kernels_equal_the_reference_on_either_blas(kernel_path, reset, dtype):
    """Torch's gemm (fast path, where torch exports it) and numba's np.dot (plain path) each give
    the reference backend's values and gradients."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 5, 2, bidirectional=True, reset=reset, backend="fused", dtype=dtype)
    reference = grukit.GRU(3, 5, 2, bidirectional=True, reset=reset, backend="reference", dtype=dtype)
    reference.load_state_dict(gru.state_dict())
    x = torch.randn(7, 4, 3, dtype=dtype)
    lengths = torch.tensor([7, 3, 5, 1])
    results = []
    for module in (gru, reference):
        out, h_n = module(x, lengths=lengths)
        (out.square().sum() + h_n.sum()).backward()
        results.append([out.detach(), h_n.detach()] + [p.grad.clone() for p in module.parameters()])
    atol = 2e-5 if dtype == torch.float32 else 1e-12  # float32: the kernels' rational tanh (3.4e-7)
    for mine, theirs in zip(*results):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=atol)


def _fused_matches_reference(reset: str, *, batch: int = 3) -> None:
    """Values and gradients of a 2-layer bidirectional fused GRU equal the reference (float64),
    with lengths, with and without biases."""
    for bias in (True, False):
        torch.manual_seed(1)
        ref = grukit.GRU(3, 4, 2, bias=bias, bidirectional=True, reset=reset, backend="reference",
                         dtype=torch.float64)
        fused = grukit.GRU(3, 4, 2, bias=bias, bidirectional=True, reset=reset, backend="fused",
                           dtype=torch.float64)
        fused.load_state_dict(ref.state_dict())
        x = torch.randn(9, batch, 3, dtype=torch.float64)
        lengths = torch.tensor([9, 4, 1, 7, 9, 2, 5][:batch])
        results = []
        for module in (ref, fused):
            xi = x.clone().requires_grad_()
            out, h_n = module(xi, lengths=lengths)
            (out.square().sum() + (h_n * torch.arange(4.0, dtype=torch.float64)).sum()).backward()
            results.append([out, h_n, xi.grad] + [p.grad for p in module.parameters()])
        for mine, theirs in zip(*results):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("chunk_values", [1, 40, 10_000])  # 1 step per chunk, a few steps, all steps
def test_chunked_projection_equals_the_reference(monkeypatch, reset, chunk_values):
    """The fused kernel cuts the input projection into chunks of steps: any cut gives the same values
    and gradients (float64), both directions, with lengths, with and without biases."""
    import grukit.kernels.gru_scan

    monkeypatch.setattr(grukit.kernels.gru_scan, "CHUNK_VALUES", chunk_values)
    _fused_matches_reference(reset)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_rows_split_across_threads_equal_the_reference(monkeypatch, reset, threads, executor):
    """Batch rows split into concurrent parts (uneven ones: 7 rows in 2 or 3 parts, and chunks of
    a few steps) give the reference's values and gradients: the parts' weight gradients are summed.
    On torch's OpenMP team and on grukit's own threads alike. Without MKL's per-thread setting
    (no MKL, or the plain path) rows are not split: one part, still equal to the reference."""
    import grukit.kernels.gru_scan
    import grukit.kernels.rows

    monkeypatch.setattr(grukit.kernels.rows, "EXECUTOR", executor)
    monkeypatch.setattr(grukit.kernels.rows, "MIN_ROWS", 1)
    monkeypatch.setattr(grukit.kernels.gru_scan, "CHUNK_VALUES", 200)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    split = grukit.kernels.rows.can_split_rows()
    assert len(grukit.kernels.rows.row_parts(7, 4)) == (threads if split else 1)
    _fused_matches_reference(reset, batch=7)


def test_row_parts_cover_the_batch_once():
    import grukit.kernels.rows

    for batch in range(1, 300, 7):
        for hidden in (32, 512):
            for threads in (1, 2, 5):
                parts = grukit.kernels.rows.row_parts(batch, hidden, threads=threads)
                assert parts[0][0] == 0 and parts[-1][1] == batch
                assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
                sizes = [last - first for first, last in parts]
                assert max(sizes) - min(sizes) <= 1 and len(parts) <= threads
                if len(parts) > 1:
                    assert min(sizes) >= (grukit.kernels.rows.MIN_ROWS if hidden <= grukit.kernels.rows.WIDE_HIDDEN
                                          else grukit.kernels.rows.WIDE_MIN_ROWS)


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("failing", [0, 2])
def test_a_failing_part_raises_after_every_part_finished(monkeypatch, executor, failing):
    import threading

    import grukit.kernels.rows

    monkeypatch.setattr(grukit.kernels.rows, "EXECUTOR", executor)
    done = []

    def work(first, last):
        if first == failing:
            raise ValueError(f"part {failing} failed")
        threading.Event().wait(0.05)
        done.append(first)

    with pytest.raises(ValueError, match=f"part {failing} failed"):
        grukit.kernels.rows.run_rows(work, [(0, 1), (1, 2), (2, 3)])
    assert sorted(done) == sorted({0, 1, 2} - {failing})


def test_parts_run_on_torchs_openmp_team_in_the_loading_process_and_on_own_threads_after_a_fork(monkeypatch):
    """Every part runs once, on as many threads as parts; in a process other than the one that
    loaded the runtime (a forked child: libgomp's team does not survive a fork) on grukit's threads.
    Where the path has no team (torch's threads are not OpenMP's, or it was left out with a named
    cause) the parts run on grukit's threads."""
    import threading

    import grukit.kernels.rows

    def names():
        seen = []
        grukit.kernels.rows.run_rows(lambda first, last: seen.append((first, threading.current_thread().name)),
                                     [(0, 1), (1, 2), (2, 3)])
        return sorted(seen)

    def on_own_threads(seen):
        assert [first for first, _ in seen] == [0, 1, 2]
        assert sum(name.startswith("grukit-rows") for _, name in seen) == 2  # and this thread

    path = grukit.kernels.rows.kernel_path()
    if path.team is None:
        openmp = "OpenMP" in torch.__config__.parallel_info().split("ATen parallel backend:")[-1]
        assert (not openmp or native.plain_path_requested() or torch.get_num_threads() == 1
                or "OpenMP" in (path.plain_because or ""))
        assert grukit.kernels.rows.executor() == "threads"
        on_own_threads(names())
        return
    team = names()
    assert [first for first, _ in team] == [0, 1, 2] and len({name for _, name in team}) == 3
    assert not any(name.startswith("grukit-rows") for _, name in team)
    monkeypatch.setattr(path.team, "pid", -1)
    on_own_threads(names())


def test_an_unknown_or_missing_executor_is_named(monkeypatch):
    import grukit.kernels.rows

    monkeypatch.setattr(grukit.kernels.rows, "EXECUTOR", "processes")
    with pytest.raises(ValueError, match="EXECUTOR must be"):
        grukit.kernels.rows.run_rows(lambda first, last: None, [(0, 1), (1, 2)])
    monkeypatch.setattr(grukit.kernels.rows, "EXECUTOR", "openmp-team")
    previous = native.use_plain_path(True)  # the plain path has no team
    try:
        with pytest.raises(RuntimeError, match="no OpenMP runtime"):
            grukit.kernels.rows.run_rows(lambda first, last: None, [(0, 1), (1, 2)])
    finally:
        native.use_plain_path(previous)
