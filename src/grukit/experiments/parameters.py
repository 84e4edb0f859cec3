"""GRU against LSTM: parameter counts (formula and counted) and the time of a training step.

Per layer and direction with biases: GRU 3H(I + H) + 6H (torch's layout keeps both bias vectors,
also for reset="before", where b_in + b_hn would do: 3H(I + H) + 3H free parameters), LSTM
4H(I + H) + 8H. The step time is a forward and backward pass of one layer (T = 100, B = 32,
I = H = 128, float32, each module's default backend), median of repeats, measured in this run.
"""

from __future__ import annotations

import statistics
import time

import torch

from grukit.experiments.report import Report, verdict
from grukit.nn.base import count_parameters
from grukit.nn.baselines import LSTM
from grukit.nn.gru import GRU

SIZES = ((16, 32), (128, 128), (256, 512))  # (I, H)


def step_seconds(module, *, repeats: int) -> float:
    x = torch.randn(100, 32, 128)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        output = module(x)[0]
        output.sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])  # the first two warm up (compilation, allocation)


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    torch.manual_seed(seed)
    rows, exact = [], True
    for inputs, hidden in SIZES:
        gru, lstm = count_parameters(GRU(inputs, hidden)), count_parameters(LSTM(inputs, hidden))
        gru_formula = 3 * hidden * (inputs + hidden) + 6 * hidden
        lstm_formula = 4 * hidden * (inputs + hidden) + 8 * hidden
        exact &= gru == gru_formula and lstm == lstm_formula
        rows.append({"input": inputs, "hidden": hidden, "gru": gru, "gru_formula": gru_formula, "lstm": lstm,
                     "lstm_formula": lstm_formula, "ratio": gru / lstm})
    repeats = 5 if quick else 15
    gru_time = step_seconds(GRU(128, 128), repeats=repeats)
    lstm_time = step_seconds(LSTM(128, 128), repeats=repeats)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = [f"I={r['input']}, H={r['hidden']}" for r in rows]
    positions = range(len(rows))
    left.bar([p - 0.2 for p in positions], [r["gru"] for r in rows], width=0.4, label="GRU")
    left.bar([p + 0.2 for p in positions], [r["lstm"] for r in rows], width=0.4, label="LSTM")
    left.set_xticks(list(positions), labels=labels, fontsize=8)
    left.set_yscale("log")
    left.set_ylabel("parameters (one layer)")
    left.legend()
    right.bar(["GRU", "LSTM"], [1e3 * gru_time, 1e3 * lstm_time])
    right.set_ylabel("training step (ms), T=100 B=32 H=128")
    figure.tight_layout()
    report = Report(
        name="parameters",
        claim="a GRU layer has three weight blocks where an LSTM has four: 3/4 of the parameters, and a "
              "cheaper step",
        criterion="counted parameters equal 3H(I+H)+6H and 4H(I+H)+8H at every size (the step time is reported)",
        measured=f"GRU/LSTM = {rows[1]['ratio']:.3f} at I = H = 128 ({rows[1]['gru']:,} vs {rows[1]['lstm']:,}); "
                 f"training step {1e3 * gru_time:.1f} ms vs {1e3 * lstm_time:.1f} ms "
                 f"({gru_time / lstm_time:.2f}×)",
        verdict=verdict(exact),
        numbers={"sizes": rows, "gru_step_seconds": gru_time, "lstm_step_seconds": lstm_time,
                 "repeats": repeats},
    )
    return report, figure
