"""Training with Lightning: `fit(task_data, model_config, train_config, run_dir)`.

A run directory holds everything a run wrote, each file written atomically (staging file, then
rename), so an interrupted run never leaves a half-written checkpoint:

    run_dir/config.json          task, model and training configuration
    run_dir/checkpoints/last.ckpt, best.ckpt    (Lightning checkpoints; loaded with weights_only=True)
    run_dir/logs/...             CSV and TensorBoard logs (train/val loss and metrics per epoch)
    run_dir/metrics.json         test metrics of the best checkpoint and the task's baselines

Determinism: the training order is a permutation drawn from (seed, epoch) alone, by the same
`DistributedSampler` in one process (1 replica) as in DDP (n replicas), so
  * resuming from `last.ckpt` continues exactly as the uninterrupted run would have, and
  * n processes with batch b see, step by step, the same examples as one process with batch n·b
    (gradients averaged across processes = the mean over the combined batch).
A NaN or inf loss stops the run with `TrainingDiverged` naming the step; the checkpoints keep the
last good state.

Output: with `progress`, one line tracks the run (epoch, batches, latest losses) while the bar can
be drawn, on a terminal or in a notebook, and is erased when training ends; redirected output gets
none. Lightning's own lines (accelerators found, tips, why `fit` stopped) and the libraries'
warnings are left as Lightning makes them; the command line hides them unless `--verbose`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from grukit.errors import InputError
from grukit.io.atomic import write_atomic, write_text_atomic
from grukit.tasks.base import Split, Task, TaskData, loss_value
from grukit.training.model import ModelConfig, SequenceModel
from grukit.training.runs import load_run


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the message names the step."""


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 20  # passes over the training split
    max_steps: int = -1  # optimiser steps in all; -1: no limit (max_epochs decides)
    batch_size: int = 64  # per process
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine"] = "constant"  # cosine: anneal to 0 over max_epochs
    gradient_clip: float | None = 1.0  # max gradient norm; None: no clipping
    early_stopping: int | None = None  # patience in epochs on the validation metric; None: off
    seed: int = 0  # data order, initial weights
    precision: str = "32-true"  # Lightning precision ("64-true" for float64 runs)
    accelerator: str = "cpu"  # "cpu", "gpu", "auto"
    devices: int = 1  # processes (DDP when > 1)
    strategy: str = "auto"  # Lightning strategy: "ddp", "ddp_spawn", …
    num_nodes: int = 1
    num_workers: int = 0  # DataLoader workers
    progress: bool = True  # progress bar, where one can be drawn (a terminal, a notebook)
    tensorboard: bool = True  # also write TensorBoard logs

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise InputError(f"optimizer must be adam, adamw or sgd, got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine"):
            raise InputError(f"schedule must be constant or cosine, got {self.schedule!r}")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise InputError("batch_size and max_epochs must be positive")


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    test: dict[str, float]  # metrics of the best checkpoint on the test split
    baselines: dict[str, float] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0


class SplitDataset(Dataset):
    """(inputs, targets, lengths) rows of a Split; lengths = T where the split has none."""

    def __init__(self, split: Split) -> None:
        self.split = split
        steps = split.inputs.shape[1]
        self.lengths = split.lengths if split.lengths is not None else torch.full((len(split),), steps)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index):
        return self.split.inputs[index], self.split.targets[index], self.lengths[index]


class SequenceTaskModule(pl.LightningModule):
    """A SequenceModel trained on a task's loss; logs the task's metrics per epoch."""

    def __init__(self, model_config: dict, train_config: dict, task: dict) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = SequenceModel(ModelConfig(**model_config))
        self.train_config = TrainConfig(**train_config)
        self.loss_name = task["loss"]
        self.metric = task["metric"]

    def forward(self, inputs, lengths=None):
        return self.model(inputs, lengths)

    def _loss(self, batch):
        inputs, targets, lengths = batch
        full = bool((lengths == inputs.shape[1]).all())
        return loss_value(self.loss_name, self(inputs, None if full else lengths), targets)

    def training_step(self, batch, batch_index):
        loss = self._loss(batch)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the training loss became {loss.item()} at step {self.global_step} "
                                   f"(epoch {self.current_epoch}); the checkpoints hold the last good state")
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_index):
        self.log("val_loss", self._loss(batch), on_epoch=True, prog_bar=True, sync_dist=True)

    def attach(self, train: Split, validation: Split) -> None:
        """The splits that train_dataloader / val_dataloader serve (kept out of the checkpoint)."""
        self.splits = {"train": train, "validation": validation}

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("validation", shuffle=False)

    def _loader(self, split: str, *, shuffle: bool) -> DataLoader:
        # built in each process, so the sampler knows its rank; the order depends on (seed, epoch)
        # alone, and Lightning calls set_epoch on it each epoch
        dataset = SplitDataset(self.splits[split])
        sampler = DistributedSampler(dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank,
                                     shuffle=shuffle, seed=self.train_config.seed)
        return DataLoader(dataset, batch_size=self.train_config.batch_size, sampler=sampler,
                          num_workers=self.train_config.num_workers)

    def configure_optimizers(self):
        config = self.train_config
        kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        optimizer = kinds[config.optimizer](self.parameters(), lr=config.learning_rate,
                                            weight_decay=config.weight_decay)
        if config.schedule == "constant":
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints are written to a staging file beside the target, fsynced, then renamed over it;
    loading never unpickles arbitrary objects (weights_only=True)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        write_atomic(path, lambda stream: torch.save(checkpoint, stream), mode="wb")

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class TerminalProgressBar(ProgressBar):
    """One line while training — epoch e/E, the epoch's batches, the latest losses, time elapsed —
    drawn by rich and erased when training ends (transient), so the run's summary follows the
    command, not the bar's last frame. Only where a bar can be drawn (`drawable`); rank 0 only."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._progress = None
        self._task = None

    @staticmethod
    def drawable() -> bool:
        """Whether standard output is a terminal or a notebook (redirected output gets no bar)."""
        from rich.console import Console

        console = Console()
        return console.is_terminal or console.is_jupyter

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None

    def on_train_start(self, trainer, pl_module) -> None:
        if not self._enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), transient=True)
        self._task = None
        self._progress.start()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._progress is None:
            return
        total = self.total_train_batches
        total = total if total != float("inf") else None
        description = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        if self._task is None:
            self._task = self._progress.add_task(description, total=total, losses="")
        else:
            self._progress.reset(self._task, total=total, description=description)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=1, losses=self._losses(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._task is not None and not trainer.sanity_checking:
            self._progress.update(self._task, losses=self._losses(trainer))

    @staticmethod
    def _losses(trainer) -> str:
        metrics = trainer.progress_bar_metrics
        return "  ".join(f"{name.replace('_', ' ')} {float(value):.4g}" for name, value in metrics.items())

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._stop()

    def teardown(self, trainer, pl_module, stage) -> None:
        self._stop()


def fit(task: Task, data: TaskData, model_config: ModelConfig, config: TrainConfig, run_dir, *,
        resume: bool = False) -> FitResult:
    """Train on `data` (built by `task`), keep the best checkpoint by validation loss, score it on the
    test split beside the task's baselines, and write everything to `run_dir`.

    resume=True continues from run_dir/checkpoints/last.ckpt (same configuration required);
    otherwise run_dir must not hold an earlier run.
    """
    import time

    run_dir = Path(run_dir)
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    model_config = _fit_to_task(model_config, data)
    settings = {"task": {"name": data.name, **_task_fields(task)}, "model": model_config.as_dict(),
                "train": asdict(config)}
    if launched_worker():
        # a process Lightning's DDP launcher started by re-running the command: the first process has
        # checked and written config.json already; this one only checks it is training the same run
        saved = json.loads((run_dir / "config.json").read_text())
        changed = _changed(saved, json.loads(json.dumps(settings)), resumable=())
        if changed:
            raise InputError(f"DDP worker sees a different run in {run_dir}: {', '.join(changed)}")
    elif resume:
        if not last.exists():
            raise InputError(f"cannot resume: {last} does not exist")
        saved = json.loads((run_dir / "config.json").read_text())
        changed = _changed(saved, json.loads(json.dumps(settings)))
        if changed:
            raise InputError(f"cannot resume {run_dir}: it was started with different {', '.join(changed)} "
                             f"(only {', '.join(RESUMABLE_CHANGES)} may change on resume)")
    elif (run_dir / "config.json").exists():
        raise InputError(f"{run_dir} already holds a run; choose a new directory or resume it")
    if not launched_worker():
        write_text_atomic(run_dir / "config.json", json.dumps(settings, indent=2))

    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = SequenceTaskModule(model_config.as_dict(), asdict(config),
                                {"loss": data.loss, "metric": data.metric})
    # best.ckpt: the lowest validation loss; last.ckpt: every epoch's end, what resume continues from.
    # Not save_last=True: since Lightning 2.6 that writes last.ckpt only when the best improves, so a
    # run whose validation loss stalled would resume from its best epoch instead of its last.
    best = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val_loss", mode="min",
                           enable_version_counter=False)
    latest = ModelCheckpoint(dirpath=checkpoints, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    callbacks = [best, latest]
    show_progress = config.progress and TerminalProgressBar.drawable()
    if show_progress:
        callbacks.append(TerminalProgressBar())
    if config.early_stopping is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=config.early_stopping))
    # logs/csv/version_N, one N per start or resume: a resumed run never rewrites earlier logs
    loggers = [CSVLogger(run_dir / "logs", name="csv")]
    if config.tensorboard:
        loggers.append(TensorBoardLogger(run_dir / "logs", name="tensorboard"))
    trainer = pl.Trainer(
        max_epochs=config.max_epochs, max_steps=config.max_steps, accelerator=config.accelerator,
        devices=config.devices, strategy=config.strategy, num_nodes=config.num_nodes, precision=config.precision,
        gradient_clip_val=config.gradient_clip, callbacks=callbacks, logger=loggers,
        enable_progress_bar=show_progress, enable_model_summary=False, deterministic=True,
        default_root_dir=run_dir, plugins=[AtomicCheckpointIO()], log_every_n_steps=1,
        use_distributed_sampler=False,  # the module's loaders shard by rank themselves
    )
    start = time.perf_counter()
    module.attach(data.train, data.validation)
    trainer.fit(module, ckpt_path=last if resume else None, weights_only=True)
    seconds = time.perf_counter() - start
    # read back from the files, which every strategy writes (ddp_spawn trains in other processes)
    progress = torch.load(last, map_location="cpu", weights_only=True)
    best_path = checkpoints / "best.ckpt"
    if best_path.exists():
        module.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"])
    test = evaluate(task, data, module.model, data.test)
    baselines = task.baselines(data)
    result = FitResult(run_dir, test, baselines, best_path if best_path.exists() else None, progress["epoch"] + 1,
                       progress["global_step"], seconds)
    if trainer.is_global_zero:
        write_text_atomic(run_dir / "metrics.json", json.dumps(
            {"test": test, "baselines": baselines, "metric": data.metric, "epochs": result.epochs,
             "steps": result.steps, "seconds": seconds}, indent=2))
    return result


def evaluate_run(run_dir) -> tuple[TaskData, dict[str, float], dict[str, float]]:
    """Rebuild a run's task from its config.json, load its best checkpoint (weights only) and score
    it on the test split: (data, metrics, baselines)."""
    run = load_run(run_dir)
    data = run.task.build(seed=run.seed)
    return data, evaluate(run.task, data, run.model, data.test), run.task.baselines(data)


def evaluate(task: Task, data: TaskData, model: SequenceModel, split: Split, *, batch_size: int = 512):
    """The task's metrics of `model` on `split` (no gradients, in batches)."""
    model.eval()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            part = split.subset(torch.arange(start, min(start + batch_size, len(split))))
            predictions.append(model(part.inputs, part.lengths))
    model.train()
    return task.metrics(data, torch.cat(predictions), split)


RESUMABLE_CHANGES = ("max_epochs", "max_steps", "progress", "early_stopping")  # train longer, watch differently


def launched_worker() -> bool:
    """Whether this process is a worker that Lightning's DDP launcher started by re-running the command
    (LOCAL_RANK > 0), not the process the user started."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0


def _changed(saved: dict, now: dict, *, resumable: tuple[str, ...] = RESUMABLE_CHANGES) -> list[str]:
    """Settings that differ between a run's config.json and a resume request, other than `resumable`."""
    changed = []
    for section in ("task", "model", "train"):
        for key in sorted(set(saved.get(section, {})) | set(now[section])):
            if section == "train" and key in resumable:
                continue
            if saved.get(section, {}).get(key) != now[section].get(key):
                changed.append(f"{section}.{key}")
    return changed


def _fit_to_task(config: ModelConfig, data: TaskData) -> ModelConfig:
    """The model config with the task's input/output sizes and read-out."""
    from dataclasses import replace

    return replace(config, input_size=data.input_size, output_size=data.output_size, readout=data.readout,
                   token_inputs=data.token_inputs, ahead=data.ahead)


def _task_fields(task: Task) -> dict:
    from dataclasses import fields, is_dataclass

    if not is_dataclass(task):
        return {}
    return {f.name: getattr(task, f.name) for f in fields(task) if f.name != "name"}
