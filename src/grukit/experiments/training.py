"""Training inside experiments: `grukit.training.fit` with the experiment's budget, quietly."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from grukit.tasks.base import Task, TaskData
from grukit.training.model import ModelConfig, SequenceModel
from grukit.training.runs import load_run
from grukit.training.trainer import FitResult, TrainConfig, fit


def train(task: Task, data: TaskData, model: ModelConfig, config: TrainConfig, run_dir) -> tuple[FitResult,
                                                                                                SequenceModel]:
    """Fit into run_dir (replacing an earlier run of the same experiment there) and return the result and
    the best checkpoint's model, in eval mode."""
    run_dir = Path(run_dir)
    if (run_dir / "config.json").exists():
        shutil.rmtree(run_dir)  # the experiment's own earlier run: experiments always start afresh
    quiet = replace(config, progress=False, tensorboard=False)
    result = fit(task, data, model, quiet, run_dir)
    return result, load_run(run_dir).model
