"""Vanishing gradients: the tanh RNN against the GRU and the LSTM, at initialisation and trained.

On the adding problem (T = 100), the loss at the end is sent back through time and
‖∂L/∂h_t‖ is read at every distance T − t (`grukit.analysis.gradient_flow`, L the task's MSE of
the read-out of h_T). The fall over 100 steps, log10 ‖∂L/∂h_T‖ − log10 ‖∂L/∂h_{T−100}‖, is the
number of orders of magnitude the gradient loses before it reaches the first marked value's
earliest possible step. Models: 64 units each, torch's default initialisation; trained with Adam
on the same data and budget.
"""

from __future__ import annotations

import math

import torch

from grukit.analysis import gradient_flow
from grukit.experiments.report import Report, verdict
from grukit.experiments.training import train
from grukit.tasks.adding import AddingTask
from grukit.training.model import ModelConfig, SequenceModel
from grukit.training.trainer import TrainConfig

MODELS = ("rnn", "gru", "lstm")
STEPS = 100
MARGIN = 2.0  # orders of magnitude


def fall(model: SequenceModel, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Orders of magnitude ‖∂L/∂h_t‖ falls over the sequence, and the curve (T,) normalised by its value at T."""
    def loss(output, final):
        return ((model.head(final) - targets) ** 2).mean()

    flow = gradient_flow(model.recurrent, inputs.double(), loss=loss, state_jacobian=False)
    curve = flow.loss_gradient[0].mean(0)  # (T,), by distance 0 … T−1
    curve = curve / curve[0]
    return -math.log10(max(float(curve[-1]), 1e-300)), curve


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    task = AddingTask(steps=STEPS, train_size=4_000 if quick else 20_000, validation_size=500, test_size=500)
    data = task.build(seed=seed)
    probe_inputs, probe_targets = data.test.inputs[:16].double(), data.test.targets[:16].double()
    epochs = 8 if quick else 20
    falls, curves, mse = {}, {}, {}
    for name in MODELS:
        torch.manual_seed(seed)
        config = ModelConfig(cell=name, input_size=2, hidden_size=64, output_size=1)
        initial = SequenceModel(config).double()
        falls[f"{name} init"], curves[f"{name} init"] = fall(initial, probe_inputs, probe_targets)
        result, trained = train(task, data, config, TrainConfig(max_epochs=epochs, batch_size=64, seed=seed),
                                work_dir / name)
        falls[f"{name} trained"], curves[f"{name} trained"] = fall(trained.double(), probe_inputs, probe_targets)
        mse[name] = result.test["mse"]
    gaps = {f"{other} {when}": falls[f"rnn {when}"] - falls[f"{other} {when}"]
            for other in ("gru", "lstm") for when in ("init", "trained")}
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, when in zip(axes, ("init", "trained"), strict=True):
        for name in MODELS:
            ax.semilogy(curves[f"{name} {when}"].clamp_min(1e-300).numpy(), label=name.upper())
        ax.set_title("at initialisation" if when == "init" else f"after training ({epochs} epochs)")
        ax.set_xlabel("distance T − t (steps)")
        ax.legend()
    axes[0].set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    figure.tight_layout()
    report = Report(
        name="vanishing",
        claim="in a tanh RNN the gradient vanishes over long distances; the GRU's and the LSTM's gates keep it",
        criterion=f"over {STEPS} steps the RNN's gradient falls by ≥ {MARGIN:g} orders of magnitude more than the "
                  "GRU's and the LSTM's, at initialisation and after training on the adding problem",
        measured="fall over 100 steps (orders of magnitude): " + ", ".join(f"{k} {v:.1f}" for k, v in falls.items())
                 + "; test MSE after training: " + ", ".join(f"{k} {v:.3f}" for k, v in mse.items())
                 + " (constant guess 0.167)",
        verdict=verdict(min(gaps.values()) >= MARGIN),
        numbers={"fall": falls, "rnn_minus": gaps, "test_mse": mse, "epochs": epochs,
                 "curves": {k: v.tolist() for k, v in curves.items()}},
    )
    return report, figure
