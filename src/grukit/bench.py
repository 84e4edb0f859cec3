"""`grukit bench`: time grukit's GRU backends against torch.nn.GRU in one process.

Every figure is a median over interleaved repeats (A, B, C, then B, C, A, then C, A, B, …), so
drift in the machine's state, and the threads torch leaves spinning after each of its calls, hit
all peers alike. Ratios are grukit time / torch.nn.GRU time, same run.
GFLOP/s counts the GRU's matmul work (2 flops per multiply-add): forward 2·T·B·3H·(I + H);
forward+backward three times that. The machine's matmul peak is measured here, by torch, on a
square float32 product, so "fraction of peak" is relative to what this machine really does.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch

from grukit.gru import GRU

QUICK_GRID = [(1, 100, 8, 32), (32, 100, 16, 64)]
# I = H/4 (8 at H = 32)
FULL_GRID = [(b, t, h // 4 if h > 32 else 8, h) for b in (1, 32, 256) for t in (100, 1000) for h in (32, 128, 512)]
TARGETS = [(1, 1000, 8, 32), (32, 500, 16, 64), (32, 1000, 64, 128), (256, 100, 256, 512)]


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
            backends=("auto", "torch", "fused", "fused+trace")) -> dict[str, float]:
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
    x = torch.randn(steps, batch, input_size, requires_grad=train)
    for model in models.values():  # warm-up: compilation, allocator
        _call(model, x, train)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for repeat in range(repeats):
        # rotate the order each repeat: whoever runs right after torch meets its OpenMP threads
        # still spinning, so no model may always hold the same place
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            model = models[name]
            start = time.perf_counter()
            _call(model, x, train)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


class _Traced(torch.nn.Module):
    def __init__(self, gru):
        super().__init__()
        self.gru = gru

    def forward(self, x):
        out, h_n, _ = self.gru(x, return_gates=True)
        return out, h_n


def run(grid, *, repeats: int = 5, modes=("forward", "train"), progress=None) -> list[Row]:
    peak = matmul_peak()
    rows = []
    for batch, steps, input_size, hidden in grid:
        for mode in modes:
            train = mode == "train"
            medians = measure(batch, steps, input_size, hidden, train=train, repeats=repeats)
            flops = 2 * steps * batch * 3 * hidden * (input_size + hidden) * (3 if train else 1)
            base = medians["torch.nn.GRU"]
            for name, seconds in medians.items():
                gflops = flops / seconds / 1e9
                rows.append(Row(batch, steps, input_size, hidden, mode, name, seconds, seconds / steps * 1e6,
                                gflops, gflops / peak, seconds / base))
            if progress is not None:
                progress()
    return rows


def as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
