"""`grukit bench`: time grukit's GRU backends against torch.nn.GRU in one process.

Every figure is a median over interleaved repeats (A, B, C, then B, C, A, then C, A, B, …), so
drift in the machine's state, and the threads torch leaves spinning after each of its calls, hit
all peers alike. Ratios are grukit time / torch.nn.GRU time, same run.
GFLOP/s counts the GRU's matmul work (2 flops per multiply-add): forward 2·T·B·3H·(I + H);
forward+backward three times that. The machine's matmul peak is measured here, by torch, on a
square float32 product, so "fraction of peak" is relative to what this machine really does.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch

from grukit.nn.gru import GRU, GRUCell

QUICK_GRID = [(1, 100, 8, 32), (32, 100, 16, 64)]
# I = H/4 (8 at H = 32)
FULL_GRID = [(b, t, h // 4 if h > 32 else 8, h) for b in (1, 32, 256) for t in (100, 1000) for h in (32, 128, 512)]
TARGETS = [(1, 1000, 8, 32), (32, 500, 16, 64), (32, 1000, 64, 128), (256, 100, 256, 512)]
ALL_BACKENDS = ("auto", "torch", "fused", "fused+trace")
GRID_BACKENDS = ("auto", "fused", "fused+trace")  # the full grid leaves out grukit's torch op (= torch.nn.GRU's)
STEP_SIZES = [(8, 32), (32, 128), (128, 512)]  # (I, H) for the batch-1 streaming latency


@dataclass(frozen=True)
class Row:
    batch: int
    steps: int
    input_size: int
    hidden: int
    mode: str  # "forward" or "train" (forward + backward)
    backend: str
    seconds: float  # median per call
    us_per_step: float
    gflops: float
    peak_fraction: float
    ratio_vs_torch: float
    peak_gflops: float  # this machine's measured float32 matmul rate, the denominator of peak_fraction


def matmul_peak(size: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of a float32 (size × size) product on this machine, median of repeats."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def _call(model, x, train: bool):
    if train:
        out, h_n = model(x)
        (out.sum() + h_n.sum()).backward()
    else:
        with torch.no_grad():
            model(x)


def measure(batch: int, steps: int, input_size: int, hidden: int, *, train: bool, repeats: int,
            backends=ALL_BACKENDS) -> dict[str, float]:
    """Median seconds per call for torch.nn.GRU and each grukit backend, interleaved."""
    torch.manual_seed(0)
    peer = torch.nn.GRU(input_size, hidden)
    models = {"torch.nn.GRU": peer}
    for backend in backends:
        gru = GRU.from_torch(peer, backend=backend.split("+")[0])
        if backend.endswith("+trace"):
            models[backend] = _Traced(gru)
        else:
            models[backend] = gru
    if not train and (runtime := _onnxruntime_peer(peer)) is not None:
        models["onnxruntime"] = runtime
    x = torch.randn(steps, batch, input_size, requires_grad=train)
    return interleaved_medians({name: partial(_call, model, x, train) for name, model in models.items()},
                               repeats=repeats)


def interleaved_medians(runs: dict, *, repeats: int, calls: int = 1, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each run (a callable), after `warmup` calls each (compilation,
    allocator). Each repeat times `calls` calls of every run in turn, the order rotated from repeat to
    repeat: whoever runs right after torch meets its OpenMP threads still spinning, so no run may
    always hold the same place."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            fn = runs[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in times.items()}


class _OnnxRuntimeGRU:
    """torch.nn.GRU's forward as an ONNX Runtime session (inference only), same weights."""

    def __init__(self, peer: torch.nn.GRU, ort) -> None:
        from grukit.io.onnx import gru_to_onnx

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(gru_to_onnx(GRU.from_torch(peer)), options,
                                            providers=["CPUExecutionProvider"])
        self.states = peer.num_layers * (2 if peer.bidirectional else 1)
        self.hidden = peer.hidden_size

    def __call__(self, x: torch.Tensor):
        hx = torch.zeros(self.states, x.shape[1], self.hidden, dtype=x.dtype)
        return self.session.run(None, {"input": x.numpy(), "hx": hx.numpy()})


def _onnxruntime_peer(peer: torch.nn.GRU):
    """The onnxruntime peer when onnx and onnxruntime are installed (the `bench` extra), else None."""
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxruntime
    except ImportError:
        return None
    return _OnnxRuntimeGRU(peer, onnxruntime)


class _Traced(torch.nn.Module):
    def __init__(self, gru):
        super().__init__()
        self.gru = gru

    def forward(self, x):
        out, h_n, _ = self.gru(x, return_gates=True)
        return out, h_n


def run(grid, *, repeats: int = 5, modes=("forward", "train"), backends=ALL_BACKENDS, progress=None) -> list[Row]:
    peak = matmul_peak()
    rows = []
    for batch, steps, input_size, hidden in grid:
        for mode in modes:
            train = mode == "train"
            medians = measure(batch, steps, input_size, hidden, train=train, repeats=repeats, backends=backends)
            flops = 2 * steps * batch * 3 * hidden * (input_size + hidden) * (3 if train else 1)
            base = medians["torch.nn.GRU"]
            for name, seconds in medians.items():
                gflops = flops / seconds / 1e9
                rows.append(Row(batch, steps, input_size, hidden, mode, name, seconds, seconds / steps * 1e6,
                                gflops, gflops / peak, seconds / base, peak))
            if progress is not None:
                progress()
    return rows


@dataclass(frozen=True)
class StepRow:
    input_size: int
    hidden: int
    model: str  # the torch peers, grukit GRUCell and GRU.step (2 layers), backend="auto"
    microseconds: float  # median per call
    ratio_vs_torch: float  # GRUCell / torch.nn.GRUCell, GRU.step / a one-step 2-layer torch.nn.GRU


def step_latency(sizes=STEP_SIZES, *, calls: int = 2000, repeats: int = 5) -> list[StepRow]:
    """Batch-1 single-step latency without autograd (streaming inference), medians of interleaved
    repeats of `calls` calls each. GRUCell is compared with torch.nn.GRUCell; GRU.step (2 layers)
    with its own peer, a one-step call of a 2-layer torch.nn.GRU carrying the state."""
    rows = []
    for input_size, hidden in sizes:
        torch.manual_seed(0)
        peer = torch.nn.GRUCell(input_size, hidden)
        cell = GRUCell(input_size, hidden)
        cell.load_state_dict(peer.state_dict())
        peer_stack = torch.nn.GRU(input_size, hidden, num_layers=2)
        stack = GRU.from_torch(peer_stack)
        x, h, state = torch.randn(1, input_size), torch.zeros(1, hidden), torch.zeros(2, 1, hidden)
        runs = {"torch.nn.GRUCell": partial(peer, x, h), "GRUCell": partial(cell, x, h),
                "torch.nn.GRU (2 layers, 1 step)": partial(peer_stack, x[None], state),
                "GRU.step (2 layers)": partial(stack.step, x, state)}
        peers = {"GRUCell": "torch.nn.GRUCell", "GRU.step (2 layers)": "torch.nn.GRU (2 layers, 1 step)"}
        with torch.no_grad():
            seconds = interleaved_medians(runs, repeats=repeats, calls=calls, warmup=100)
        medians = {name: 1e6 * value for name, value in seconds.items()}  # µs per call
        for name, median in medians.items():
            rows.append(StepRow(input_size, hidden, name, median, median / medians[peers.get(name, name)]))
    return rows


@dataclass(frozen=True)
class MemoryRow:
    batch: int
    steps: int
    input_size: int
    hidden: int
    model: str
    peak_mib: float  # resident memory above the process's level before one forward+backward call
    ratio_vs_torch: float


def peak_training_memory(grid=TARGETS, models=("torch.nn.GRU", "fused", "auto")) -> list[MemoryRow]:
    """Peak resident memory of one training call (forward + backward), each model in a fresh
    process: after a warm-up call, the kernel's high-water mark is reset (/proc/self/clear_refs)
    and the call's peak is read back from VmHWM. Linux only; elsewhere the list is empty."""
    if not Path("/proc/self/clear_refs").exists():
        return []
    rows = []
    for case in grid:
        peaks = {model: _peak_in_child(case, model) for model in models}
        for model, peak in peaks.items():
            rows.append(MemoryRow(*case, model, peak, peak / peaks["torch.nn.GRU"]))
    return rows


def _peak_in_child(case, model: str) -> float:
    code = f"import grukit.app.bench as b; b._report_peak({tuple(case)!r}, {model!r})"
    # a fixed mmap threshold: every buffer ≥ 64 KiB is mapped on allocation and unmapped on free, so
    # the resident set follows the live buffers (glibc would otherwise keep freed memory for reuse,
    # and the figure would depend on what the warm-up call left behind)
    env = os.environ | {"MALLOC_MMAP_THRESHOLD_": "65536"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(result.stdout.strip().splitlines()[-1])


def _report_peak(case, model: str) -> None:
    batch, steps, input_size, hidden = case
    torch.set_num_threads(2)
    torch.manual_seed(0)
    peer = torch.nn.GRU(input_size, hidden)
    net = peer if model == "torch.nn.GRU" else GRU.from_torch(peer, backend=model)
    x = torch.randn(steps, batch, input_size, requires_grad=True)
    _call(net, x, True)  # warm-up: compiled code, allocator
    x.grad = None
    net.zero_grad(set_to_none=True)
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    _call(net, x, True)
    print((_status_kib("VmHWM") - before) / 1024)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def as_dicts(rows) -> list[dict]:
    return [asdict(r) for r in rows]


# -- minGRU ---------------------------------------------------------------------------------------
MINGRU_STEPS = (128, 512, 2048, 8192)
MINGRU_BATCH, MINGRU_HIDDEN = 32, 128  # I = H


@dataclass(frozen=True)
class MinGRURow:
    steps: int
    model: str  # "minGRU compiled", "minGRU log", "minGRU sequential", "grukit.GRU (auto)", "torch.nn.GRU", …
    seconds: float  # median per training step: forward and backward of the layer
    ratio_vs_torch: float  # seconds / torch.nn.GRU's, same run
    scan_gb_per_s: float | None = None  # the compiled scan alone: bytes moved / time (rows "scan …")


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """GB/s of a large float32 copy (read + write), median of repeats: what a scan can at best move."""
    source = torch.empty(megabytes * 2**20 // 4).uniform_()
    target = torch.empty_like(source)
    target.copy_(source)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        target.copy_(source)
        times.append(time.perf_counter() - start)
    return 2 * source.numel() * 4 / statistics.median(times) / 1e9


def mingru_training(steps_grid=MINGRU_STEPS, *, batch: int = MINGRU_BATCH, hidden: int = MINGRU_HIDDEN,
                    repeats: int = 3, sequential_up_to: int = 512) -> list[MinGRURow]:
    """Training-step time of one minGRU layer by each scan, against grukit.GRU (auto: its fastest
    backend here) and torch.nn.GRU at equal hidden size, and of its parts: the input projection
    alone ([k; c] = W x + b, forward and backward) and the compiled scan alone (forward, and forward
    plus backward), the latter as bytes moved per second (`SCAN_BYTES`) — as a call that allocates
    its outputs ("scan alone") and as the loops on buffers allocated once ("scan kernel", as the
    bandwidth reference copies into a buffer it has touched). The sequential mode runs up to
    `sequential_up_to` steps only: its autograd graph of T small steps grows superlinearly in time
    (T = 2048 took a minute a call)."""
    from grukit.kernels.mingru_scan import mingru_scan
    from grukit.nn.mingru import MinGRU

    rows = []
    for steps in steps_grid:
        torch.manual_seed(0)
        x = torch.randn(steps, batch, hidden, requires_grad=True)
        models = {"torch.nn.GRU": torch.nn.GRU(hidden, hidden), "grukit.GRU (auto)": GRU(hidden, hidden),
                  "minGRU compiled": MinGRU(hidden, hidden, scan="compiled"),
                  "minGRU log": MinGRU(hidden, hidden, scan="log")}
        if steps <= sequential_up_to:
            models["minGRU sequential"] = MinGRU(hidden, hidden, mode="sequential")
        runs = {name: partial(_call, model, x, True) for name, model in models.items()}
        runs["input projection alone"] = partial(_projection, torch.nn.Linear(hidden, 2 * hidden), x)
        k, c = (torch.randn(steps, batch, hidden, requires_grad=True) for _ in range(2))
        h0 = torch.zeros(batch, hidden)
        runs["scan alone, forward"] = partial(_scan, mingru_scan, k, c, h0, train=False)
        runs["scan alone, forward+backward"] = partial(_scan, mingru_scan, k, c, h0, train=True)
        buffers = _scan_buffers(k, c, h0)
        runs["scan kernel, forward"] = partial(_scan_kernel, buffers, train=False)
        runs["scan kernel, forward+backward"] = partial(_scan_kernel, buffers, train=True)
        medians = interleaved_medians(runs, repeats=repeats)
        torch_time = medians["torch.nn.GRU"]
        elements = steps * batch * hidden
        for name, seconds in medians.items():
            moved = SCAN_BYTES.get(name)
            rows.append(MinGRURow(steps, name, seconds, seconds / torch_time,
                                  None if moved is None else moved * elements / seconds / 1e9))
    return rows


# Bytes per element (T·B·H) a scan must move: forward, read k and c, write h (12 in float32); the
# backward then reads k, c, h and ∂L/∂h and writes ∂L/∂k and ∂L/∂c (24 more).
SCAN_BYTES = {"scan alone, forward": 12, "scan alone, forward+backward": 36,
              "scan kernel, forward": 12, "scan kernel, forward+backward": 36}


def _scan_buffers(k, c, h0) -> dict:
    """Every array the compiled scan reads and writes, allocated and touched once, for timing the
    loops without torch's allocations (a fresh tensor of tens of MB is new pages to fault in)."""
    k, c = k.detach(), c.detach()
    return {"k": k, "c": c, "h0": h0, "h": h0.clone(), "lengths": torch.full((k.shape[1],), k.shape[0]),
            "out": torch.zeros_like(k), "d_out": torch.ones_like(k), "d_h": torch.zeros_like(h0),
            "d_k": torch.zeros_like(k), "d_c": torch.zeros_like(c)}


def _scan_kernel(b: dict, *, train: bool) -> None:
    from grukit.kernels.mingru_scan import compiled_backward_into, compiled_forward_into

    b["h"].copy_(b["h0"])
    compiled_forward_into(b["k"], b["c"], b["h"], b["lengths"], b["out"])
    if train:
        b["d_h"].zero_()
        compiled_backward_into(b["k"], b["c"], b["h0"], b["out"], b["lengths"], b["d_out"], b["d_h"], b["d_k"],
                               b["d_c"])


def _projection(linear, x) -> None:
    linear(x).sum().backward()


def _scan(scan, k, c, h0, *, train: bool) -> None:
    if not train:
        with torch.no_grad():
            scan(k, c, h0, scan="compiled")
        return
    out, h_n = scan(k, c, h0, scan="compiled")
    (out.sum() + h_n.sum()).backward()
