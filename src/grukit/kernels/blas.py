"""Matrix products for the compiled kernels, on the same BLAS and thread pool as torch.

`matmul_into(gemm, a, b, c, beta)` computes c ← a @ b + β c inside numba-compiled code.
`gemm` is the address of a Fortran ?gemm_ (column-major) routine, or 0:

  * torch's CPU library exports the BLAS it was built with (MKL on x86-64 wheels) as `sgemm_` /
    `dgemm_` (`native.find_blas`). Calling it from the kernel keeps one BLAS and one OpenMP pool in
    the process: numba's own `np.dot` goes through SciPy's OpenBLAS, whose worker threads spin after
    each call and compete with torch's OpenMP threads.
  * on the plain path (`native`: GRUKIT_PLAIN_KERNELS=1, `native.use_plain_path(True)`, a build
    that exports no gemm, or a failed self-check) `gemm` is 0 and the product is numba's `np.dot`,
    written into `c`. Tests hold both paths to the reference backend.

Row-major C = A B is column-major Cᵀ = Bᵀ Aᵀ, so the call passes (B, A) with n, m swapped.
`a` may be a row slice of a larger array (its row stride is passed as lda); b and c are
C-contiguous.

Integer size: the gemm is called with the LP64 interface (MKL's default, and the only one torch
links): m, n, k, lda, ldb and ldc are 32-bit ints. `check_blas_sizes` refuses any size above
INT32_MAX before a kernel runs (an InputError naming it); the kernels' callers pass every size that
reaches a product.

Self-check (`check_gemm`, run once by `rows.kernel_path()`): a small product through the gemm,
float32 and float64, against NumPy, and MKL's per-thread setting set and restored.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from grukit.errors import InputError
from grukit.kernels.native import KernelPath


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

        def int_ref(value):  # LP64: a 32-bit int; callers checked the size (check_blas_sizes)
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


# Per-step products smaller than this many flops run on one thread. A threaded MKL call ends in an
# OpenMP barrier; when the machine is oversubscribed (another busy process, data-loader workers) a
# descheduled worker stalls that barrier for a scheduler time slice, every step. Small products gain
# nothing from threads anyway; torch's own small ops don't thread.
THREADED_GEMM_FLOPS = 1_000_000
INT32_MAX = 2**31 - 1  # LP64 BLAS: every size and leading dimension is a 32-bit int


def check_blas_sizes(**sizes: int) -> None:
    """Each keyword's size must fit the LP64 BLAS's 32-bit ints; the InputError names the size."""
    for name, size in sizes.items():
        if size > INT32_MAX:
            raise InputError(f"{name} = {size} exceeds {INT32_MAX}, the largest size the kernels' 32-bit "
                             "(LP64) BLAS takes; use backend='torch' or 'reference', or a smaller batch")


def small_product(rows: int, cols: int, inner: int) -> bool:
    """Whether a per-step product of 2·rows·cols·inner flops is under THREADED_GEMM_FLOPS."""
    return 2 * rows * cols * inner < THREADED_GEMM_FLOPS


class gemm_threads:
    """Context: with single=True, MKL (torch's) runs the calling thread's products on one thread
    (a thread-local setting: torch's calls on other threads are unaffected). On a path without MKL
    pinning (the plain path), or with single=False, nothing changes."""

    def __init__(self, path: KernelPath, *, single: bool) -> None:
        self.set_local = path.set_local_threads if single else None
        self.previous = 0

    def __enter__(self):
        if self.set_local is not None:
            self.previous = self.set_local(1)  # returns this thread's previous setting (0: the global one)
        return self

    def __exit__(self, *exc):
        if self.set_local is not None:
            self.set_local(self.previous)
        return False


def gemm_for(path: KernelPath, dtype: np.dtype) -> int:
    """The path's gemm address for a float32 or float64 kernel call (0: numba's np.dot)."""
    return path.gemm[0] if dtype == np.float32 else path.gemm[1]


def check_gemm(gemm: tuple[int, int], set_local_threads, *, corrupt: bool = False) -> str | None:
    """None if c ← a @ b + c through `gemm` (sgemm_, dgemm_; 0 for numba's np.dot), a a column
    slice of a wider array, matches NumPy (float32 to 1e-5, float64 to 1e-12, relative to the
    largest entry), and MKL's per-thread setting (if any) sets and restores; else what went wrong.
    corrupt: move one value of the result by 1 first (`native.simulate_self_check_failure`)."""
    rng = np.random.default_rng(0)
    for address, dtype, tolerance in ((gemm[0], np.float32, 1e-5), (gemm[1], np.float64, 1e-12)):
        wide = rng.standard_normal((7, 9)).astype(dtype)
        a, b = wide[:, :5], rng.standard_normal((5, 6)).astype(dtype)
        c = rng.standard_normal((7, 6)).astype(dtype)
        expected = a.astype(np.float64) @ b.astype(np.float64) + c
        matmul_into(address, a, b, c, 1.0)
        if corrupt:
            c[0, 0] += 1.0
        error = float(np.max(np.abs(c - expected)) / np.max(np.abs(expected)))
        if not error <= tolerance:  # NaN included
            return f"the {np.dtype(dtype).name} product came back wrong (relative error {error:.3g} against NumPy)"
    if set_local_threads is not None:
        previous = set_local_threads(1)
        if not isinstance(previous, int) or previous < 0:
            return f"MKL_Set_Num_Threads_Local returned {previous!r}"
        set_local_threads(previous)
    return None
