"""`grukit compare TASK`: GRU, minGRU, LSTM and vanilla RNN (or a task's own set) trained alike, side by side.

Same task data, optimiser, epochs and seeds for all, and either the same hidden size
(`match="hidden"`) or the same budget of parameters (`match="parameters"`: each model as wide as
brings its parameter count closest to the GRU's at that hidden size). Each row reports the hidden
size, the parameter count, the wall time of training and the test metric of the best checkpoint
(mean, spread and per-seed values over several seeds), with the task's baselines below as rows of
their own.
Tasks of irregular sequences (`clinical`, `masked`, `observations`) compare the GRU-D family
instead: GRU-D, the paper's GRU-Mean, GRU-Forward and GRU-Simple, and a plain GRU reading
[values; mask; δ] — and PyPOTS' GRU-D beside them when PyPOTS is installed (the `bench` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from grukit.errors import InputError
from grukit.io.atomic import write_text_atomic
from grukit.nn.base import count_parameters
from grukit.tasks.base import Task, TaskData
from grukit.training.model import ModelConfig, SequenceModel
from grukit.training.trainer import TrainConfig, fit

MODELS = {"GRU": "gru", "minGRU": "mingru", "LSTM": "lstm", "vanilla RNN": "rnn"}


def compared_models(task: Task) -> dict[str, str]:
    """Row label → `ModelConfig.cell`: the task's own set (`compared_models`, e.g. the GRU-D family
    for `clinical`), else GRU, minGRU, LSTM and vanilla RNN."""
    return dict(getattr(task, "compared_models", MODELS))


def select_models(task: Task, names: Sequence[str]) -> dict[str, str]:
    """The rows of `compared_models(task)` named in `names` (a row label or a cell name, any case),
    in the order given; an unknown name is an InputError that lists the task's models."""
    models = compared_models(task)
    by_name = {key.lower(): label for label, cell in models.items() for key in (label, cell)}
    unknown = [name for name in names if name.strip().lower() not in by_name]
    if unknown or not names:
        choices = ", ".join(f"{cell} ({label})" for label, cell in models.items())
        raise InputError(f"unknown model {unknown[0]!r} for this task: choose among {choices}" if unknown
                         else f"name at least one model: {choices}")
    labels = dict.fromkeys(by_name[name.strip().lower()] for name in names)  # in order, once each
    return {label: models[label] for label in labels}


def parameter_count(cell: str, hidden_size: int, data: TaskData, *, num_layers: int = 1) -> int:
    """Trainable parameters of the task model with this cell, width and depth on `data`, head included."""
    return count_parameters(SequenceModel(ModelConfig(cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                                                      input_size=data.input_size, output_size=data.output_size,
                                                      readout=data.readout, token_inputs=data.token_inputs)))


def matched_hidden_size(cell: str, parameters: int, data: TaskData, *, num_layers: int = 1) -> int:
    """The hidden size H ≥ 1 whose model has the parameter count closest to `parameters` (the
    smaller H on a tie): the count grows with H, so a bisection finds the first H at or above it."""
    def count(width: int) -> int:
        return parameter_count(cell, width, data, num_layers=num_layers)

    low, high = 1, 1
    while count(high) < parameters:
        low, high = high, high * 2
    while low < high:  # the first H with a count ≥ parameters lies in [low, high]
        middle = (low + high) // 2
        low, high = (middle + 1, high) if count(middle) < parameters else (low, middle)
    below = max(high - 1, 1)
    return below if abs(count(below) - parameters) <= abs(count(high) - parameters) else high


def compare_models(task: Task, config: TrainConfig, *, hidden_size: int, out_dir, seeds: int = 1,
                   head_dropout: float = 0.0, models: Sequence[str] | None = None,
                   match: Literal["hidden", "parameters"] = "hidden", num_layers: int = 1,
                   chrono: float = 0.0) -> tuple[list[dict], TaskData]:
    """Every model of `compared_models(task)` trained on the task's data for seeds config.seed …
    config.seed + seeds − 1 (data, initialisation and batch order all follow the seed). One row per
    model: parameters, mean train seconds, the test metric's mean over the seeds and, for several,
    its standard deviation and the per-seed values; the task's baselines follow, scored on each
    seed's data alike. `head_dropout` applies to every model's head alike (not to the PyPOTS peer, trained
    as PyPOTS builds it). `models` picks and orders rows of `compared_models(task)` (labels or cell
    names); `match="parameters"` gives each model the hidden size whose parameter count is closest
    to the first model's at `hidden_size` (read on the first seed's data). `num_layers` stacks every
    model alike (the GRU-D family has one layer: more is an InputError); `chrono` > 0 chrono-initialises
    every model's gates with that T_max (`grukit.chrono_init_`; the vanilla RNN, with none, refuses it)."""
    import dataclasses
    import statistics

    if match not in ("hidden", "parameters"):
        raise InputError(f"match (--match) must be 'hidden' or 'parameters', got {match!r}")
    models = compared_models(task) if models is None else select_models(task, models)

    def model_config(cell: str, width: int) -> ModelConfig:
        return ModelConfig(cell=cell, hidden_size=width, num_layers=num_layers, head_dropout=head_dropout,
                           chrono=chrono)

    with_peer = peer_available(task)
    results, seconds, baselines, peer_parameters = {}, {}, {}, None
    for offset in range(seeds):
        seed = config.seed + offset
        data = task.build(seed=seed)
        if offset == 0:
            first_data = data  # the parameter counts read the first seed's data
            budget = parameter_count(next(iter(models.values())), hidden_size, data, num_layers=num_layers)
            widths = {label: hidden_size if match == "hidden"
                      else matched_hidden_size(cell, budget, data, num_layers=num_layers)
                      for label, cell in models.items()}
            # every model built once before any trains, for its parameter count: a refused setting (chrono
            # for the RNN, say) stops the comparison at once
            counts = {label: count_parameters(SequenceModel(dataclasses.replace(
                model_config(cell, widths[label]), input_size=data.input_size, output_size=data.output_size,
                readout=data.readout, token_inputs=data.token_inputs))) for label, cell in models.items()}
        for name, value in task.baselines(data).items():
            baselines.setdefault(name, []).append(value)
        run_config = dataclasses.replace(config, seed=seed)
        for label, cell in models.items():
            run_dir = Path(out_dir) / (cell if seeds == 1 else f"{cell}-seed{seed}")
            result = fit(task, data, model_config(cell, widths[label]), run_config, run_dir)
            results.setdefault(label, []).append(result.test[data.metric])
            seconds.setdefault(label, []).append(result.seconds)
        if with_peer:
            score, took, peer_parameters = pypots_grud(task, data, hidden_size=hidden_size, config=run_config)
            results.setdefault(PYPOTS_LABEL, []).append(score)
            seconds.setdefault(PYPOTS_LABEL, []).append(took)
    data = first_data
    metric = f"test {data.metric}"
    rows = []
    for label in results:
        parameters = peer_parameters if label == PYPOTS_LABEL else counts[label]
        row = {"model": label, "hidden size": widths.get(label, hidden_size), "parameters": parameters,
               "train seconds": round(statistics.fmean(seconds[label]), 1), metric: statistics.fmean(results[label])}
        if seeds > 1:
            row["std over seeds"] = statistics.stdev(results[label])
            row["per seed"] = " ".join(f"{value:.4f}" for value in results[label])
        rows.append(row)
    for name, values in baselines.items():
        row = {"model": f"baseline: {name}", "hidden size": "", "parameters": 0, "train seconds": 0.0,
               metric: statistics.fmean(values)}
        if seeds > 1:
            row |= {"std over seeds": statistics.stdev(values), "per seed": " ".join(f"{v:.4f}" for v in values)}
        rows.append(row)
    return rows, data


PYPOTS_LABEL = "PyPOTS GRU-D"


def peer_available(task: Task) -> bool:
    """Whether to add PyPOTS' GRU-D beside the GRU-D family: a task that compares it (the
    classification tasks clinical, masked, observations) and PyPOTS installed (the `bench` extra)."""
    if not getattr(task, "pypots_peer", False):
        return False
    import importlib.util

    return importlib.util.find_spec("pypots") is not None


def _pypots_sets(data: TaskData):
    """PyPOTS' inputs for each split: X (N, T, V) with NaN where missing (padded steps too: PyPOTS
    has no lengths) and y. PyPOTS computes δ itself, one time unit per step — its documented
    departure from real timestamps."""
    variables = data.input_size // 3

    def arrays(split) -> dict:
        values, mask = split.inputs[..., :variables], split.inputs[..., variables : 2 * variables]
        return {"X": values.masked_fill(mask == 0, float("nan")).double().numpy(), "y": split.targets.numpy()}

    return arrays(data.train), arrays(data.validation), arrays(data.test)


def pypots_grud(task: Task, data: TaskData, *, hidden_size: int, config: TrainConfig) -> tuple[float, float, int]:
    """(test metric, train seconds, parameters) of PyPOTS' GRU-D classifier on the same splits with
    the same budget: hidden size, epochs, batch size, Adam learning rate and seed; its
    best-validation-loss weights are the ones scored (PyPOTS keeps them), by the task's own metric.
    Its cell reads [x̂; ĥ; m], so it has more parameters than the paper's model at one size."""
    import contextlib
    import io
    import time

    import torch

    def sink():  # PyPOTS prints a banner and per-epoch logs; its import reads stdout's encoding
        return io.TextIOWrapper(io.BytesIO(), encoding="utf-8")

    with contextlib.redirect_stdout(sink()), contextlib.redirect_stderr(sink()):
        from pypots.classification import GRUD as PyPOTSGRUD
        from pypots.optim import Adam

        train, validation, test = _pypots_sets(data)
        torch.manual_seed(config.seed)
        model = PyPOTSGRUD(n_steps=train["X"].shape[1], n_features=train["X"].shape[2], n_classes=data.output_size,
                           rnn_hidden_size=hidden_size, batch_size=config.batch_size, epochs=config.max_epochs,
                           optimizer=Adam(lr=config.learning_rate), model_saving_strategy=None, verbose=False,
                           device="cpu")
        start = time.perf_counter()
        model.fit(train, validation)
        seconds = time.perf_counter() - start
        probabilities = torch.as_tensor(model.predict(test)["classification_proba"], dtype=torch.float32)
    logits = probabilities.clamp_min(1e-12).log()  # the metrics read logits: softmax(log p) = p
    parameters = sum(p.numel() for p in model.model.parameters())
    return task.metrics(data, logits, data.test)[data.metric], seconds, parameters


def write_comparison(rows: list[dict], out_dir) -> tuple[Path, Path]:
    """comparison.csv and comparison.md in out_dir, each written atomically."""
    columns = list(rows[0])
    csv = "\n".join([",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in rows]) + "\n"
    cells = [[f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    markdown = "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                         + ["| " + " | ".join(line) + " |" for line in cells]) + "\n"
    out = Path(out_dir)
    return write_text_atomic(out / "comparison.csv", csv), write_text_atomic(out / "comparison.md", markdown)
