"""Matrix products for the compiled kernels, on the same BLAS and thread pool as torch.

`matmul_into(gemm, a, b, c, beta)` computes c ← a @ b + β c inside numba-compiled code.
`gemm` is the address of a Fortran ?gemm_ (column-major) routine, or 0:

  * torch's CPU library exports the BLAS it was built with (MKL on x86-64 wheels) as `sgemm_` /
    `dgemm_`. Calling it from the kernel keeps one BLAS and one OpenMP pool in the process: numba's
    own `np.dot` goes through SciPy's OpenBLAS, whose worker threads spin after each call and fight
    torch's OpenMP threads on a small machine (measured on 2 cores: 40–60 ms lost per 1,000-step
    layer at B = 32, H = 128, and 58 vs 75 µs per step for the product itself).
  * where torch exports no such symbol (other builds and platforms), `gemm` is 0 and the product
    is numba's `np.dot`, written into `c`. Both paths are tested against each other.

Row-major C = A B is column-major Cᵀ = Bᵀ Aᵀ, so the call passes (B, A) with n, m swapped.
`a` may be a row slice of a larger array (its row stride is passed as lda); b and c are
C-contiguous.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _torch_cpu_library():
    import torch

    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        path = os.path.join(lib_dir, name)
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path)
            except OSError:
                return None
    return None


def torch_gemm_addresses() -> tuple[int, int]:
    """(sgemm_, dgemm_) addresses exported by torch's CPU library, or (0, 0) when it has none."""
    lib = _torch_cpu_library()
    try:
        return (ctypes.cast(lib.sgemm_, ctypes.c_void_p).value or 0,
                ctypes.cast(lib.dgemm_, ctypes.c_void_p).value or 0)
    except AttributeError:  # no library, or one without these symbols
        return 0, 0


@intrinsic
def _fortran_gemm(typingctx, address, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """?gemm_('N', 'N', m, n, k, 1, a, lda, b, ldb, beta, c, ldc) through a function address."""
    dtype = c.dtype
    signature = types.void(address, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        address_v, m_v, n_v, k_v, a_v, lda_v, b_v, ldb_v, beta_v, c_v, ldc_v = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        scalar = context.get_value_type(dtype)
        char_p, int_p, scalar_p = ir.IntType(8).as_pointer(), i32.as_pointer(), scalar.as_pointer()
        # Fortran ABI: every argument by reference, then the hidden lengths of the two CHARACTER args
        fnty = ir.FunctionType(ir.VoidType(), [char_p, char_p, int_p, int_p, int_p, scalar_p, scalar_p, int_p,
                                               scalar_p, int_p, scalar_p, scalar_p, int_p, i64, i64])
        fn = builder.inttoptr(address_v, fnty.as_pointer())

        def ref(value):
            return cgutils.alloca_once_value(builder, value)

        def int_ref(value):
            return ref(builder.trunc(value, i32))

        def data(value, index):
            return context.make_array(sig.args[index])(context, builder, value).data

        no_transpose = ref(ir.Constant(ir.IntType(8), ord("N")))
        one = ref(ir.Constant(scalar, 1.0))
        beta_ref = ref(context.cast(builder, beta_v, sig.args[8], dtype))
        builder.call(fn, [no_transpose, no_transpose, int_ref(m_v), int_ref(n_v), int_ref(k_v), one,
                          data(a_v, 4), int_ref(lda_v), data(b_v, 6), int_ref(ldb_v), beta_ref, data(c_v, 9),
                          int_ref(ldc_v), ir.Constant(i64, 1), ir.Constant(i64, 1)])
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, nogil=True, inline="always")
def matmul_into(gemm, a, b, c, beta):
    """c ← a @ b + β c for a (M, K) with unit column stride, b (K, N) and c (M, N) C-contiguous."""
    rows, inner = a.shape
    cols = b.shape[1]
    if gemm != 0:
        lda = a.strides[0] // a.itemsize
        _fortran_gemm(gemm, cols, rows, inner, b, cols, a, lda, beta, c, cols)
    elif beta == 0.0:
        c[:] = np.dot(np.ascontiguousarray(a), b)
    else:
        c[:] = beta * c + np.dot(np.ascontiguousarray(a), b)


GEMM_ADDRESSES = torch_gemm_addresses()

# Per-step products smaller than this many flops run on one thread. A threaded MKL call ends in an
# OpenMP barrier; when the machine is oversubscribed (another busy process, data-loader workers) a
# descheduled worker stalls that barrier for a scheduler time slice, every step: measured on
# 2 cores with a second busy process, B = 64, H = 32, T = 199: 3.2 s threaded against 8–15 ms on
# one thread. Small products gain nothing from threads anyway; torch's own small ops don't thread.
THREADED_GEMM_FLOPS = 1_000_000
_SET_LOCAL_THREADS = getattr(_torch_cpu_library(), "MKL_Set_Num_Threads_Local", None)
CAN_PIN_GEMM_THREADS = _SET_LOCAL_THREADS is not None


def small_product(rows: int, cols: int, inner: int) -> bool:
    """Whether a per-step product of 2·rows·cols·inner flops is under THREADED_GEMM_FLOPS."""
    return 2 * rows * cols * inner < THREADED_GEMM_FLOPS


class gemm_threads:
    """Context: with single=True, MKL (torch's) runs the calling thread's products on one thread
    (a thread-local setting: torch's calls on other threads are unaffected). Without MKL, or with
    single=False, nothing changes."""

    def __init__(self, *, single: bool) -> None:
        self.single = single and CAN_PIN_GEMM_THREADS
        self.previous = 0

    def __enter__(self):
        if self.single:
            self.previous = _SET_LOCAL_THREADS(1)  # returns this thread's previous setting (0: the global one)
        return self

    def __exit__(self, *exc):
        if self.single:
            _SET_LOCAL_THREADS(self.previous)
        return False


def gemm_for(dtype: np.dtype) -> int:
    """The gemm address for a float32 or float64 kernel call (0: numba's np.dot)."""
    return GEMM_ADDRESSES[0] if dtype == np.float32 else GEMM_ADDRESSES[1]
