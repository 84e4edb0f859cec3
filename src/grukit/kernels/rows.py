"""Run a compiled kernel over disjoint ranges of batch rows, one range per torch thread.

A GRU's batch rows never interact: row b's recurrence reads only row b of h, gi, out. So the
fused kernels take a row range [first, last) and several ranges run at once, each on its own
thread with single-threaded products. On a few cores this beats one loop whose per-step product is
threaded: a threaded product ends in an OpenMP barrier every step, and the gate arithmetic between
products runs on one core; split rows synchronise once per chunk of steps, and the gate arithmetic
runs on every core.

The kernels are numba `nogil=True` functions, so several threads run them truly in parallel.
Which threads (`executor()`; `EXECUTOR` overrides it):

  * "openmp-team": torch's own OpenMP threads, through `GOMP_parallel` of the OpenMP runtime torch
    loaded (`native.OpenMPTeam`), the parts' Python glue called back on each team thread. After
    every parallel torch op torch's idle OpenMP threads spin for a while (the default
    OMP_WAIT_POLICY); a part on a thread of our own would then share its core with a spinning one.
    On the team, the spinning thread is the one that takes the part.
  * "threads": a pool of Python threads — on the plain path (`native`: GRUKIT_PLAIN_KERNELS=1,
    `native.use_plain_path(True)`), where torch has no OpenMP runtime or it failed the self-check,
    and in a forked child of the process that found it (libgomp's team does not survive a fork;
    nor do torch's own threaded ops, which hang there — one `a @ a` on 500² after a fork — so a
    child must run with torch.set_num_threads(1), as DataLoader workers do, and then there is a
    single part).

Both run the same kernel on the same rows, so their results are identical (tested).
Splitting needs MKL's per-thread thread count (`can_split_rows()`): without it each
part's product would start its own threads and oversubscribe the machine, so there is one part
(always, on the plain path). The pool is made per process (a forked data-loader worker gets a
fresh one, never the parent's dead threads).

The path (`kernel_path()`) is chosen once, at the first kernel call, by `native.choose`: the plain
path where requested (GRUKIT_PLAIN_KERNELS=1, `native.use_plain_path(True)`), else the fast path
after its self-check — `blas.check_gemm`, then `check_parts`: rows of a small product run as two
parts on the chosen executor must equal the same rows run as one part.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import torch

from grukit.kernels import native
from grukit.kernels.blas import check_gemm, gemm_threads, matmul_into
from grukit.kernels.native import KernelPath

MIN_ROWS = 8  # fewer rows per part and the hand-off costs more than the second core gives
WIDE_HIDDEN = 128  # above this many units a part needs WIDE_MIN_ROWS rows: a one-thread product of
WIDE_MIN_ROWS = 64  # fewer rows is slower than the whole batch's product on all threads (measured)
EXECUTORS = ("openmp-team", "threads")
EXECUTOR: str | None = None  # None: the chosen path's (`executor()`); tests set "threads" or "openmp-team"


def kernel_path() -> native.KernelPath:
    """The path the kernels take (`native.KernelPath`), chosen and self-checked at the first call."""
    path = native.chosen()
    return path if path is not None else native.choose(_checked_fast_path)


def can_split_rows() -> bool:
    """Whether the path has MKL's per-thread setting (`blas.gemm_threads`), which splitting rows needs."""
    return kernel_path().set_local_threads is not None


def executor(path: KernelPath | None = None) -> str:
    """EXECUTOR if set, else "openmp-team" where the path (the chosen one unless given) has torch's
    OpenMP runtime, else "threads"."""
    if EXECUTOR is not None:
        return EXECUTOR
    return "openmp-team" if (path or kernel_path()).team is not None else "threads"


def row_parts(batch: int, hidden: int, *, threads: int | None = None) -> list[tuple[int, int]]:
    """[first, last) ranges covering 0 … batch − 1: one per thread (torch.get_num_threads()), with
    enough rows each (MIN_ROWS, or WIDE_MIN_ROWS above WIDE_HIDDEN units), sizes differing by at most
    one; [(0, batch)] when no split pays or MKL's per-thread setting is missing (the plain path)."""
    threads = torch.get_num_threads() if threads is None else threads
    min_rows = MIN_ROWS if hidden <= WIDE_HIDDEN else WIDE_MIN_ROWS
    count = max(1, min(threads, batch // min_rows)) if can_split_rows() else 1
    bounds = [batch * part // count for part in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


def _pin_one_gemm_thread(path: KernelPath) -> None:
    gemm_threads(path, single=True).__enter__()  # the worker's products stay on one thread for its life


def _pool(workers: int, path: KernelPath) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] < workers:
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)  # more threads wanted now (torch.set_num_threads went up)
        _POOL = (os.getpid(), workers, ThreadPoolExecutor(workers, thread_name_prefix="grukit-rows",
                                                          initializer=_pin_one_gemm_thread, initargs=(path,)))
    return _POOL[2]


def run_rows(work, parts: list[tuple[int, int]]) -> None:
    """work(first, last) for every part. A single part runs here as it is. Several run at once,
    each with MKL pinned to one thread, on `executor()` ("openmp-team" or "threads"; "threads" in a
    forked child): `work` must do its products through MKL (torch.mm, addmm, F.linear, the
    kernels' gemm) and no other parallel torch op. Waits for all parts, even when one raises,
    before returning or raising: they write into shared arrays."""
    run_parts(work, parts, kernel_path())


def run_parts(work, parts: list[tuple[int, int]], path: KernelPath) -> None:
    """`run_rows` on a given path (the self-check runs the path it is checking)."""
    if len(parts) == 1:
        work(*parts[0])
        return
    chosen = executor(path)
    if chosen not in EXECUTORS:
        raise ValueError(f"rows.EXECUTOR must be None, 'openmp-team' or 'threads', got {chosen!r}")
    team = path.team
    if chosen == "openmp-team" and team is None:
        raise RuntimeError("rows.EXECUTOR is 'openmp-team' but the kernels' path has no OpenMP runtime of "
                           f"torch's ({path.plain_because or 'the plain path'}); set it to None or 'threads'")
    if chosen == "openmp-team" and team.pid == os.getpid():
        errors: list[BaseException | None] = [None] * len(parts)

        def body(me: int, size: int) -> None:  # a smaller team than asked for takes the parts round-robin
            with gemm_threads(path, single=True):
                for index in range(me, len(parts), size):
                    try:
                        work(*parts[index])
                    except BaseException as error:  # noqa: BLE001 - re-raised below, on this thread
                        errors[index] = error

        team.run(body, len(parts))
    else:
        futures = [_pool(len(parts) - 1, path).submit(work, *part) for part in parts[1:]]
        try:
            with gemm_threads(path, single=True):
                work(*parts[0])
        finally:
            errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error


def check_parts(path: KernelPath, *, corrupt: bool = False) -> str | None:
    """None if rows of c = a @ b (float64, through the path's gemm) computed as two parts on the
    path's executor equal the same rows computed as one part (to 1e-12 relative: a one-thread
    product of fewer rows may round differently), every row written once; else what went wrong.
    corrupt: move one value of the two-part result by 1 first (`native.simulate_self_check_failure`)."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((9, 5)), rng.standard_normal((5, 6))
    gemm = path.gemm[1]
    results = []
    for parts in ([(0, 9)], [(0, 4), (4, 9)]):
        c = np.full((9, 6), np.nan)

        def work(first: int, last: int, c=c) -> None:
            matmul_into(gemm, a[first:last], b, c[first:last], 0.0)

        run_parts(work, parts, path)
        results.append(c)
    if corrupt:
        results[1][0, 0] += 1.0
    error = float(np.max(np.abs(results[1] - results[0])) / np.max(np.abs(results[0])))
    if not error <= 1e-12:  # NaN (a row never written) included
        return f"rows run as two parts differ from one part (relative error {error:.3g})"
    return None


def _checked_fast_path(fault: str | None) -> tuple[KernelPath, list[str]]:
    """The fast path after the self-check, and the causes of every piece it left out (`native.choose`)."""
    causes = []
    path = KernelPath()
    try:
        found, cause = native.find_blas()
        if cause is not None:
            causes.append(cause)
        if found is not None:
            cause = check_gemm(found.gemm, found.set_local_threads, corrupt=fault == "gemm")
            if cause is None:
                path = replace(path, gemm=found.gemm, set_local_threads=found.set_local_threads)
            else:
                causes.append(f"{cause} (gemm of {found.where}); products use numba's np.dot, rows are not split")
        elif fault == "gemm":  # nothing native to check: the plain product's check sees the fault
            causes.append(f"{check_gemm((0, 0), None, corrupt=True)} (numba's np.dot)")
    except Exception as error:  # noqa: BLE001 - any failure means: the plain product
        causes.append(f"the BLAS self-check raised {type(error).__name__}: {error}")
        path = KernelPath()
    try:
        team, cause = native.find_team()
        if cause is not None:
            causes.append(cause)
        cause = check_parts(replace(path, team=team), corrupt=fault == "rows")
        if cause is None:
            path = replace(path, team=team)
        elif team is not None:
            causes.append(f"{cause} (on torch's OpenMP runtime {team.path}); row parts run on grukit's own threads")
        else:
            causes.append(f"{cause} (on grukit's threads); rows are not split")
            path = replace(path, set_local_threads=None)
    except Exception as error:  # noqa: BLE001 - any failure means: grukit's own threads
        causes.append(f"the row-parts self-check raised {type(error).__name__}: {error}")
    return path, causes
