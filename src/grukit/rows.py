"""Run a compiled kernel over disjoint ranges of batch rows, one range per torch thread.

A GRU's batch rows never interact: row b's recurrence reads only row b of h, gi, out. So the
fused kernels take a row range [first, last) and several ranges run at once, each on its own
thread with single-threaded products. On 2 cores this beats one loop whose per-step product is
threaded: a threaded product ends in an OpenMP barrier every step, and the gate arithmetic between
products runs on one core; split rows synchronise once per chunk of steps, and the gate arithmetic
runs on both (measured at B = 32, H = 128: see the README's performance section).

The kernels are numba `nogil=True` functions, so Python threads run them truly in parallel.
Splitting needs MKL's per-thread thread count (`blas.CAN_PIN_GEMM_THREADS`): without it each
part's product would start its own threads and oversubscribe the machine, so there is one part.
The pool is made per process (a forked data-loader worker gets a fresh one, never the parent's
dead threads).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch

from grukit.blas import CAN_PIN_GEMM_THREADS, gemm_threads

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


def run_rows(work, parts: list[tuple[int, int]]) -> None:
    """work(first, last) for every part. A single part runs here as it is. Several run at once (this
    thread takes the first), each with MKL pinned to one thread, so torch's OpenMP pool stays idle:
    `work` must do its products through MKL (torch.mm, addmm, F.linear, the kernels' gemm) and no
    other parallel torch op. Waits for all parts, even when one raises, before returning or raising:
    they write into shared arrays."""
    if len(parts) == 1:
        work(*parts[0])
        return
    futures = [_pool(len(parts) - 1).submit(work, *part) for part in parts[1:]]
    try:
        with gemm_threads(single=True):
            work(*parts[0])
    finally:
        errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error
