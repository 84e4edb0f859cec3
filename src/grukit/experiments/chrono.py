"""Chrono initialisation on the copy task with a long delay (Tallec & Ollivier 2018).

The copy task (Arjovsky et al. 2016's layout, the `copy` task): 10 symbols, then a delay of blanks,
then a delimiter, after which the symbols must be reproduced. A GRU of 64 units trains twice with
the same data, seed and budget: torch's default initialisation, and chrono initialisation with
T_max = the delay (keep-gate biases log U(1, T_max − 1), so units start out remembering for up to
T_max steps). Reported: the test cross-entropy over every output step and the accuracy on the
recalled symbols, against the best memoryless model's cross-entropy (the task's baseline).
"""

from __future__ import annotations

import torch

from grukit.experiments.report import Report, verdict
from grukit.experiments.training import train
from grukit.tasks.copy import CopyTask
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    delay = 100 if quick else 500
    task = CopyTask(delay=delay, train_size=8_000 if quick else 10_000, validation_size=200, test_size=500)
    data = task.build(seed=seed)
    results, curves = {}, {}
    for name, chrono in (("default", 0.0), ("chrono", float(delay))):
        torch.manual_seed(seed)
        result, _ = train(task, data, ModelConfig(cell="gru", hidden_size=64, chrono=chrono),
                          TrainConfig(max_epochs=10 if quick else 30, batch_size=32, seed=seed), work_dir / name)
        results[name] = result.test
        metrics = sorted((work_dir / name / "logs" / "csv").glob("version_*/metrics.csv"))
        if metrics:
            import pandas as pd

            frame = pd.read_csv(metrics[-1])
            curves[name] = frame.dropna(subset=["val_loss"])[["epoch", "val_loss"]].to_numpy()
    memoryless = task.baselines(data)["memoryless"]
    better = results["chrono"]["cross_entropy"] < results["default"]["cross_entropy"]
    figure, ax = plt.subplots(figsize=(6, 3.8))
    for name, curve in curves.items():
        ax.plot(curve[:, 0] + 1, curve[:, 1], "o-", label=f"{name} initialisation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (cross-entropy)")
    ax.legend()
    report = Report(
        name="chrono",
        claim="chrono initialisation (keep-gate biases log U(1, T_max − 1)) lets a GRU learn dependencies as long "
              "as T_max sooner than torch's default initialisation",
        criterion=f"on the copy task with a delay of {delay}, lower test cross-entropy with chrono initialisation "
                  "than with the default, same data and budget",
        measured="; ".join(f"{name}: cross-entropy {r['cross_entropy']:.4f}, recall accuracy "
                           f"{100 * r['recall_accuracy']:.1f} %" for name, r in results.items())
                 + f" (a memoryless model: {memoryless:.4f})",
        verdict=verdict(better),
        numbers={"test": results, "delay": delay},
    )
    return report, figure
