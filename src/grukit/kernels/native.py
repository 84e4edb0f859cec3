"""Which native path the compiled kernels take: torch's BLAS and OpenMP threads, or the plain path.

The fast path calls into libraries torch has already loaded:

  * the Fortran ?gemm_ (sgemm_, dgemm_) of torch's BLAS, for the kernels' per-step products
    (`blas.matmul_into`);
  * MKL's MKL_Set_Num_Threads_Local, which keeps one thread's products on that thread
    (`blas.gemm_threads`); without it batch rows are not split (`rows.row_parts`);
  * GOMP_parallel of torch's OpenMP runtime, which runs row parts on torch's own OpenMP threads
    (`rows.run_rows`, executor "openmp-team"); not where torch runs one thread when the path is
    chosen (rows are not split then; a forked DataLoader worker's OpenMP team may not survive the
    fork) nor in a child forked after the path was chosen.

The plain path: numba's np.dot for the products (SciPy's BLAS), no MKL thread pinning (so one row
part), and grukit's own threads (executor "threads") for row parts asked for explicitly. Both paths
compute the same equations; tests hold each to the reference backend.

Finding the libraries. threadpoolctl lists the libraries loaded in the process (`threadpool_info()`:
filepath, internal_api "openmp", "mkl", "openblas"). The OpenMP runtime is the listed one in torch's
library folder (or the only one listed, where torch's parallel backend is OpenMP). The BLAS is torch's
CPU library where it exports sgemm_ and dgemm_ (the x86-64 wheels link MKL into it statically, where
threadpoolctl cannot see it), else a listed MKL (a torch built against a shared MKL). NumPy's
OpenBLAS is never used: its symbols are renamed and 64-bit-integer. Every library is opened with
RTLD_NOLOAD: one that is not already in the process fails to open instead of loading, so grukit
never brings in a second OpenMP runtime or BLAS.

Choosing, once, on the first use of a kernel (`rows.kernel_path()`, which runs `choose`):

  * GRUKIT_PLAIN_KERNELS=1 in the environment (read then; "", "0", "false", "no" leave it off)
    forces the plain path. `use_plain_path(True)` does the same from code, `use_plain_path(False)`
    asks for the fast path whatever the environment says, `use_plain_path(None)` follows the
    environment again; each choice is made anew at the next use.
  * Otherwise a one-shot self-check runs: a small product through the chosen gemm (float32 and
    float64, an operand that is a column slice, β = 1) against NumPy, MKL's per-thread setting set
    and restored, then one range of rows run as two parts on the chosen executor against the same
    rows run as one part. A library the build should have but that is not loaded (MKL where
    torch.backends.mkl says torch has it, an OpenMP runtime where torch's parallel backend is
    OpenMP), a missing symbol, wrong numbers or an exception send that piece to the plain path, with
    one `KernelPathWarning` naming every cause. A library the build does not have (no MKL, a native
    thread pool) means the plain path for that piece, without a warning.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings
from dataclasses import dataclass, replace

from grukit.errors import InputError

ENVIRONMENT_VARIABLE = "GRUKIT_PLAIN_KERNELS"
_NOLOAD = getattr(os, "RTLD_NOLOAD", 0)  # POSIX; Windows has none (there a DLL not yet loaded would load)
_LAZY = getattr(os, "RTLD_LAZY", 0)
FAULT_STAGES = ("gemm", "rows")


class KernelPathWarning(RuntimeWarning):
    """The compiled kernels took the plain path for (part of) the fast path; the message names why."""


def open_loaded(path: str) -> ctypes.CDLL:
    """The library at `path` if the process has already loaded it; OSError otherwise (never loads it)."""
    return ctypes.CDLL(path, mode=_NOLOAD | _LAZY)


def loaded_libraries() -> list[dict]:
    """threadpoolctl's list of the thread-pool libraries loaded in the process (filepath, internal_api…)."""
    from threadpoolctl import threadpool_info

    return threadpool_info()


def torch_library_folder() -> str:
    import torch

    return os.path.join(os.path.dirname(torch.__file__), "lib")


@dataclass(frozen=True)
class Blas:
    """Torch's BLAS: gemm addresses (sgemm_, dgemm_), MKL's per-thread setting (None without MKL),
    and the library they come from."""

    gemm: tuple[int, int]
    set_local_threads: object | None
    where: str


def find_blas() -> tuple[Blas | None, str | None]:
    """(torch's BLAS, None), or (None, why it was not found — None when this build has none to find)."""
    import torch

    folder = torch_library_folder()
    candidates = [os.path.join(folder, name) for name in ("libtorch_cpu.so", "libtorch_cpu.dylib")]
    candidates += [lib["filepath"] for lib in loaded_libraries() if lib.get("internal_api") == "mkl"]
    for path in candidates:
        try:
            lib = open_loaded(path)
        except OSError:
            continue  # not loaded (or not this platform's name)
        try:
            gemm = (ctypes.cast(lib.sgemm_, ctypes.c_void_p).value or 0,
                    ctypes.cast(lib.dgemm_, ctypes.c_void_p).value or 0)
        except AttributeError:
            continue
        if all(gemm):
            return Blas(gemm, getattr(lib, "MKL_Set_Num_Threads_Local", None), path), None
    if torch.backends.mkl.is_available():
        return None, f"torch has MKL but no loaded library exports sgemm_ and dgemm_ (looked in {candidates})"
    return None, None  # a build without MKL that exports no Fortran gemm: the plain product, as intended


class OpenMPTeam:
    """GOMP_parallel and the thread queries of torch's OpenMP runtime, and the process that found it
    (libgomp's team does not survive a fork: a forked child runs parts on grukit's own threads)."""

    CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

    def __init__(self, path: str) -> None:
        lib = open_loaded(path)  # the copy torch loaded; OSError if it is not loaded
        lib.GOMP_parallel.argtypes = [self.CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        lib.GOMP_parallel.restype = None
        lib.omp_get_thread_num.restype = lib.omp_get_num_threads.restype = ctypes.c_int
        self.lib, self.path, self.pid = lib, path, os.getpid()

    def run(self, body, threads: int) -> None:
        """body(me, team) on each thread of a team of `threads` (this thread one of them); the team
        may be smaller than asked for. ctypes releases the GIL for the call and takes it back for each
        callback."""
        def callback(_data) -> None:
            body(self.lib.omp_get_thread_num(), self.lib.omp_get_num_threads())

        self.lib.GOMP_parallel(self.CALLBACK(callback), None, threads, 0)


_FORKED = False  # set in a child forked after this module was imported


def _mark_forked() -> None:
    global _FORKED
    _FORKED = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


def find_team() -> tuple[OpenMPTeam | None, str | None]:
    """(torch's OpenMP runtime, None), or (None, why not — None when torch's threads are not OpenMP's,
    when torch runs one thread (rows are never split then: a DataLoader worker, a forked child, whose
    OpenMP team may not survive the fork), or in a child forked after grukit found its libraries)."""
    import torch

    if "OpenMP" not in torch.__config__.parallel_info().split("ATen parallel backend:")[-1]:
        return None, None
    if torch.get_num_threads() == 1 or _FORKED:
        return None, None
    runtimes = [lib["filepath"] for lib in loaded_libraries() if lib.get("internal_api") == "openmp"]
    folder = os.path.realpath(torch_library_folder())
    own = [path for path in runtimes if os.path.dirname(os.path.realpath(path)) == folder]
    chosen = own or (runtimes if len(runtimes) == 1 else [])
    if not chosen:
        return None, f"torch runs on OpenMP but none of the loaded OpenMP runtimes is torch's: {runtimes}"
    try:
        return OpenMPTeam(chosen[0]), None
    except (OSError, AttributeError) as error:  # not loaded, or a runtime without these symbols
        return None, f"torch's OpenMP runtime {chosen[0]} cannot run a team ({type(error).__name__}: {error})"


@dataclass(frozen=True)
class KernelPath:
    """What the kernels call. gemm (sgemm_, dgemm_) addresses, (0, 0): numba's np.dot;
    set_local_threads MKL's per-thread setting, None: no pinning (and one row part); team torch's
    OpenMP runtime, None: grukit's own threads; plain_because why (part of) the plain path was
    taken, None when nothing was left out that the build has."""

    gemm: tuple[int, int] = (0, 0)
    set_local_threads: object | None = None
    team: OpenMPTeam | None = None
    plain_because: str | None = None


_FORCED: bool | None = None  # use_plain_path's setting; None: the environment variable
_FAULT: str | None = None  # simulate_self_check_failure's stage
_CURRENT: KernelPath | None = None
_LOCK = threading.RLock()  # the self-check runs under it


def plain_path_requested() -> bool:
    """use_plain_path's setting, or else the environment variable GRUKIT_PLAIN_KERNELS."""
    if _FORCED is not None:
        return _FORCED
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def use_plain_path(plain: bool | None = True) -> bool | None:
    """True: the plain path (no OpenMP team, no MKL pinning, numba's np.dot); False: the fast path
    where it passes its self-check, whatever GRUKIT_PLAIN_KERNELS says; None: follow
    GRUKIT_PLAIN_KERNELS. The path is chosen anew (self-check included) at the next kernel call.
    Returns the previous setting, to restore it."""
    global _FORCED, _CURRENT
    if plain is not None and not isinstance(plain, bool):
        raise InputError(f"use_plain_path takes True, False or None, got {plain!r}")
    with _LOCK:
        previous, _FORCED, _CURRENT = _FORCED, plain, None
    return previous


def simulate_self_check_failure(stage: str | None) -> None:
    """Testing hook: the next self-check finds wrong numbers at `stage` ("gemm": the product through
    torch's BLAS, "rows": the two-part run), as a faulty library would give (one value of the result
    is moved by 1 before the comparison); None clears it. The path is chosen anew at the next use."""
    global _FAULT, _CURRENT
    if stage is not None and stage not in FAULT_STAGES:
        raise InputError(f"stage must be one of {FAULT_STAGES} or None, got {stage!r}")
    with _LOCK:
        _FAULT, _CURRENT = stage, None


def chosen() -> KernelPath | None:
    """The path chosen at the first kernel call (`rows.kernel_path()`), or None before it."""
    return _CURRENT


def choose(checked_fast_path) -> KernelPath:
    """Choose the path once: the plain one if requested (`plain_path_requested`), else
    checked_fast_path(fault) → (path, causes), with one KernelPathWarning naming the causes."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is not None:
            return _CURRENT
        if plain_path_requested():
            path = KernelPath()
        else:
            path, causes = checked_fast_path(_FAULT)
            if causes:
                path = replace(path, plain_because="; ".join(causes))
                warnings.warn("grukit's compiled kernels take the plain path for part of their work: "
                              + path.plain_because, KernelPathWarning, stacklevel=4)
        _CURRENT = path
        return path
