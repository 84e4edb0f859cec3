"""The character-level model the `reset` and `punctuation` experiments look inside.

One GRU (128 units) trained on the `text` task's tweets; a run in RUNS/text-gru is reused by the
next experiment of the same size and seed instead of training again.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from grukit.experiments.training import train
from grukit.tasks.text import TextTask
from grukit.training.model import ModelConfig, SequenceModel
from grukit.training.runs import load_run
from grukit.training.trainer import TrainConfig


def text_model(*, quick: bool, seed: int, runs_dir) -> tuple[TextTask, SequenceModel]:
    task = TextTask()  # all 20,761 tweets
    model = ModelConfig(cell="gru", hidden_size=128)
    config = TrainConfig(max_epochs=4 if quick else 20, batch_size=64, seed=seed)
    run_dir = Path(runs_dir) / f"text-gru-{'quick' if quick else 'full'}-seed{seed}"
    if (run_dir / "checkpoints" / "best.ckpt").exists():
        settings = json.loads((run_dir / "config.json").read_text())
        if settings["task"]["tweets"] == task.tweets and settings["train"]["max_epochs"] == config.max_epochs:
            return task, load_run(run_dir).model
    torch.manual_seed(seed)
    _, trained = train(task, task.build(seed=seed), model, config, run_dir)
    return task, trained


def mean_gate(model: SequenceModel, ids: torch.Tensor, lengths: torch.Tensor, gate: str) -> torch.Tensor:
    """(N, T): the gate averaged over units at each step (first layer), NaN past each length."""
    trace = model.gate_trace(ids, lengths)
    return getattr(trace, gate)[0].mean(-1)
