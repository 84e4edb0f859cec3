"""Run a compiled kernel over disjoint ranges of batch rows, one range per torch thread.

A GRU's batch rows never interact: row b's recurrence reads only row b of h, gi, out. So the
fused kernels take a row range [first, last) and several ranges run at once, each on its own
thread with single-threaded products. On 2 cores this beats one loop whose per-step product is
threaded: a threaded product ends in an OpenMP barrier every step, and the gate arithmetic between
products runs on one core; split rows synchronise once per chunk of steps, and the gate arithmetic
runs on both (measured at B = 32, H = 128: see the README's performance section).

The kernels are numba `nogil=True` functions, so several threads run them truly in parallel.
Which threads (`EXECUTOR`):

  * "openmp-team": torch's own OpenMP threads, through `GOMP_parallel` of the OpenMP runtime torch
    ships (libgomp in the Linux wheels), the parts' Python glue called back on each team thread.
    After every parallel torch op torch's idle OpenMP threads spin for milliseconds (the default
    OMP_WAIT_POLICY); a part on a thread of our own then shares its core with a spinning one. On
    the team, the spinning thread is the one that takes the part. Measured on 2 cores, a training
    step (forward and backward), medians of 15 interleaved repeats: GRU-D B 128, H 128: 98.1 →
    81.3 ms; GRU B 64, T 100, H 128: 72.1 → 55.7 ms; GRU-D B 64, H 64: 24.8 → 19.8 ms; with
    OMP_WAIT_POLICY=PASSIVE the two executors are level (83.1 / 80.8 ms, 56.6 / 54.6, 18.6 / 19.0).
  * "threads": a pool of Python threads — where torch ships no libgomp, and in a forked child of
    the process that loaded it (libgomp's team does not survive a fork; nor do torch's own threaded
    ops, which hang there — checked: one `a @ a` on 500² after a fork — so a child must run with
    torch.set_num_threads(1), as DataLoader workers do, and then there is a single part).

Both run the same kernel on the same rows, so their results are identical (tested).
Splitting needs MKL's per-thread thread count (`blas.CAN_PIN_GEMM_THREADS`): without it each
part's product would start its own threads and oversubscribe the machine, so there is one part.
The pool is made per process (a forked data-loader worker gets a fresh one, never the parent's
dead threads).
"""

from __future__ import annotations

import ctypes
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from grukit.kernels.blas import CAN_PIN_GEMM_THREADS, gemm_threads

MIN_ROWS = 8  # fewer rows per part and the hand-off costs more than the second core gives
WIDE_HIDDEN = 128  # above this many units a part needs WIDE_MIN_ROWS rows: a one-thread product of
WIDE_MIN_ROWS = 64  # fewer rows is slower than the whole batch's product on all threads (measured:
# B = 32, H = 512: split 1.10× the time of one threaded loop; B = 256, H = 512: 0.93×; H ≤ 128: 0.56–0.88×)


def row_parts(batch: int, hidden: int, *, threads: int | None = None) -> list[tuple[int, int]]:
    """[first, last) ranges covering 0 … batch − 1: one per thread (torch.get_num_threads()), with
    enough rows each (MIN_ROWS, or WIDE_MIN_ROWS above WIDE_HIDDEN units), sizes differing by at most
    one; [(0, batch)] when no split pays or MKL's per-thread setting is missing."""
    threads = torch.get_num_threads() if threads is None else threads
    min_rows = MIN_ROWS if hidden <= WIDE_HIDDEN else WIDE_MIN_ROWS
    count = max(1, min(threads, batch // min_rows)) if CAN_PIN_GEMM_THREADS else 1
    bounds = [batch * part // count for part in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


def _pin_one_gemm_thread() -> None:
    gemm_threads(single=True).__enter__()  # the worker's products stay on one thread for its life


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] < workers:
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)  # more threads wanted now (torch.set_num_threads went up)
        _POOL = (os.getpid(), workers, ThreadPoolExecutor(workers, thread_name_prefix="grukit-rows",
                                                          initializer=_pin_one_gemm_thread))
    return _POOL[2]


class _OpenMPTeam:
    """GOMP_parallel and the thread queries of the OpenMP runtime in torch's library folder."""

    CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)  # the copy torch already loaded: same file, same handle
        lib.GOMP_parallel.argtypes = [self.CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        lib.GOMP_parallel.restype = None
        lib.omp_get_thread_num.restype = lib.omp_get_num_threads.restype = ctypes.c_int
        self.lib, self.pid = lib, os.getpid()

    def run(self, work, parts: list[tuple[int, int]]) -> list[BaseException | None]:
        """work(*part) for every part on a team of len(parts) threads (this thread one of them); a
        smaller team than asked for takes the parts round-robin. ctypes releases the GIL for the call
        and takes it back for each callback."""
        errors: list[BaseException | None] = [None] * len(parts)

        def body(_data) -> None:
            me, team = self.lib.omp_get_thread_num(), self.lib.omp_get_num_threads()
            with gemm_threads(single=True):
                for index in range(me, len(parts), team):
                    try:
                        work(*parts[index])
                    except BaseException as error:  # noqa: BLE001 - re-raised by run_rows, on this thread
                        errors[index] = error

        self.lib.GOMP_parallel(self.CALLBACK(body), None, len(parts), 0)
        return errors


def _find_team() -> _OpenMPTeam | None:
    import torch

    if "OpenMP" not in torch.__config__.parallel_info().split("ATen parallel backend:")[-1]:
        return None
    found = sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*.so*")))
    try:
        return _OpenMPTeam(found[0]) if found else None
    except (OSError, AttributeError):  # unreadable, or a runtime without these symbols
        return None


_TEAM = _find_team()
EXECUTOR = "openmp-team" if _TEAM is not None else "threads"


def run_rows(work, parts: list[tuple[int, int]]) -> None:
    """work(first, last) for every part. A single part runs here as it is. Several run at once,
    each with MKL pinned to one thread, on EXECUTOR ("openmp-team" or "threads"; "threads" in a
    forked child): `work` must do its products through MKL (torch.mm, addmm, F.linear, the
    kernels' gemm) and no other parallel torch op. Waits for all parts, even when one raises,
    before returning or raising: they write into shared arrays."""
    if len(parts) == 1:
        work(*parts[0])
        return
    if EXECUTOR not in ("openmp-team", "threads"):
        raise ValueError(f"rows.EXECUTOR must be 'openmp-team' or 'threads', got {EXECUTOR!r}")
    if EXECUTOR == "openmp-team" and _TEAM is None:
        raise RuntimeError("no OpenMP runtime of torch's to run row parts on (rows.EXECUTOR must be 'threads')")
    if EXECUTOR == "openmp-team" and _TEAM.pid == os.getpid():
        errors = _TEAM.run(work, parts)
    else:
        futures = [_pool(len(parts) - 1).submit(work, *part) for part in parts[1:]]
        try:
            with gemm_threads(single=True):
                work(*parts[0])
        finally:
            errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error
