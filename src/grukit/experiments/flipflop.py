"""Memories as fixed points: a GRU trained on the 3-bit flip-flop (Sussillo & Barak 2013).

A GRU of 16 units with a linear read-out learns to hold each of 3 channels' last ±1 pulse. With
the input held at 0 (no pulse), its step map's fixed points are searched from states it visits on
test sequences (`grukit.analysis.fixed_points`: Adam on q = ½‖F(h) − h‖², Newton polish). The 8
sign combinations should each be one stable fixed point; saddles (one unstable direction) sit
between them. Each stable point's memory is read through the trained read-out.
"""

from __future__ import annotations

import itertools

import torch

from grukit.analysis import FixedPointConfig, fixed_points, plot_fixed_points
from grukit.analysis.step_map import float64_copy, run_states, step_map, valid_steps
from grukit.experiments.report import Report, verdict
from grukit.experiments.training import train
from grukit.tasks.flipflop import FlipFlopTask
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig

HIDDEN = 16


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    task = FlipFlopTask(train_size=2_000 if quick else 4_000)
    data = task.build(seed=seed)
    torch.manual_seed(seed)
    result, model = train(task, data, ModelConfig(cell="gru", hidden_size=HIDDEN),
                          TrainConfig(max_epochs=30 if quick else 60, batch_size=32, learning_rate=1e-2, seed=seed),
                          work_dir / "gru")
    twin = float64_copy(model.recurrent)
    probe = data.test.inputs.double()  # all 200 test sequences: every sign pattern is visited
    config = FixedPointConfig(initial_states=256 if quick else 1024, noise=0.05, iterations=1500 if quick else 4000,
                              learning_rate=0.01, tolerance=1e-12, slow_tolerance=1e-8, unique_distance=0.05)
    points = fixed_points(twin, probe, config=config)
    stable = points.states[points.stable & ~points.slow]
    with torch.no_grad():
        memories = model.head.double()(stable).sign() if len(stable) else torch.empty(0, task.bits)
    model.head.float()
    patterns = {tuple(int(v) for v in row) for row in memories.tolist()}
    expected = set(itertools.product((-1, 1), repeat=task.bits))
    saddles = int(((points.unstable_dimensions == 1) & ~points.slow).sum())
    with torch.no_grad():
        visited = torch.cat(run_states(step_map(twin), probe.transpose(0, 1),
                                       valid=valid_steps(None, probe.shape[1], probe.shape[0]))[1:])
    figure, ax = plt.subplots(figsize=(5, 5))
    plot_fixed_points(points, visited=visited, ax=ax)
    ax.set_title(f"stable fixed points {len(stable)}, saddles {saddles}, slow points {int(points.slow.sum())}")
    report = Report(
        name="flipflop",
        claim="a recurrent network trained on the 3-bit flip-flop stores its 8 memories as stable fixed points, "
              "with saddles between them",
        criterion="8 stable fixed points whose read-outs give all 8 sign patterns, and at least one saddle",
        measured=f"{len(stable)} stable fixed points giving {len(patterns & expected)} of the 8 patterns, "
                 f"{saddles} saddles (one unstable direction), {int(points.slow.sum())} slow points; "
                 f"test MSE {result.test['mse']:.3f} (zero baseline {result.baselines['zero']:.3f})",
        verdict=verdict(len(stable) == 8 and patterns == expected and saddles >= 1),
        numbers={"stable": len(stable), "patterns": sorted(patterns), "saddles": saddles,
                 "slow": int(points.slow.sum()), "speeds": points.speed.tolist(),
                 "unstable_dimensions": points.unstable_dimensions.tolist(), "test_mse": result.test["mse"]},
    )
    return report, figure
