"""Reading a finished run back: its task, its settings and its best model, loading weights only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from grukit.errors import InputError
from grukit.tasks import make_task
from grukit.tasks.base import Task
from grukit.training.model import ModelConfig, SequenceModel


@dataclass(frozen=True)
class Run:
    directory: Path
    task: Task  # rebuilt from config.json
    seed: int  # the run's seed (its data split)
    settings: dict  # config.json as written: task, model, train
    model: SequenceModel  # the best checkpoint, in eval mode


def load_run(run_dir) -> Run:
    """A directory written by `grukit train`: config.json and checkpoints/best.ckpt, read with
    `torch.load(weights_only=True)` (nothing in the files is executed)."""
    directory = Path(run_dir)
    config_path, best = directory / "config.json", directory / "checkpoints" / "best.ckpt"
    for path in (config_path, best):
        if not path.exists():
            raise InputError(f"{directory} is not a finished grukit run: {path.name} is missing")
    try:
        settings = json.loads(config_path.read_text())
        task_settings = dict(settings["task"])
        name, seed, model_settings = task_settings.pop("name"), settings["train"]["seed"], settings["model"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(f"{config_path} is not a grukit run configuration ({type(error).__name__}: {error})") from None
    task = make_task(name, **task_settings)
    model = SequenceModel(ModelConfig(**model_settings))
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({key.removeprefix("model."): value for key, value in state.items()})
    return Run(directory, task, seed, settings, model.eval())


def remove_run(run_dir) -> None:
    """Delete the run directory `run_dir` if it holds a grukit run (config.json, or a forecast run's
    forecast_model.json, or only sub-runs that do: an interrupted scaling="auto" forecast); nothing
    if it does not exist; an InputError for any other directory (never delete what grukit did not
    write)."""
    import shutil

    directory = Path(run_dir)
    if not directory.exists():
        return
    from grukit.forecasting.windows import MODEL_FILE

    def is_run(path: Path) -> bool:
        return (path / "config.json").is_file() or (path / MODEL_FILE).is_file()

    # a forecast run with scaling="auto" stopped before its own forecast_model.json: its sub-runs say
    subruns = [path for path in directory.iterdir() if path.is_dir()] if directory.is_dir() else []
    if not (is_run(directory) or (subruns and all(is_run(path) for path in subruns))):
        raise InputError(f"{directory} exists but is not a grukit run (no config.json or {MODEL_FILE}): not "
                         "deleting it")
    shutil.rmtree(directory)
