"""`grukit compare TASK`: GRU, LSTM and vanilla RNN (or a task's own set) trained alike, side by side.

Same task data, hidden size, optimiser, epochs and seeds for all; each row reports the parameter
count, the wall time of training and the test metric of the best checkpoint (mean, spread and
per-seed values over several seeds), with the task's baselines below as rows of their own.
`clinical` compares the GRU-D family instead: GRU-D, the paper's GRU-Mean, GRU-Forward and
GRU-Simple, and a plain GRU reading [values; mask; δ].
"""

from __future__ import annotations

from pathlib import Path

from grukit.atomic import write_text_atomic
from grukit.base import count_parameters
from grukit.models import ModelConfig, SequenceModel
from grukit.tasks.base import Task, TaskData
from grukit.train import TrainConfig, fit

MODELS = {"GRU": "gru", "LSTM": "lstm", "vanilla RNN": "rnn"}


def compared_models(task: Task) -> dict[str, str]:
    """Row label → `ModelConfig.cell`: the task's own set (`compared_models`, e.g. the GRU-D family
    for `clinical`), else GRU, LSTM and vanilla RNN."""
    return dict(getattr(task, "compared_models", MODELS))


def compare_models(task: Task, config: TrainConfig, *, hidden_size: int, out_dir, seeds: int = 1,
                   progress=None) -> tuple[list[dict], TaskData]:
    """Every model of `compared_models(task)` trained on the task's data for seeds config.seed …
    config.seed + seeds − 1 (data, initialisation and batch order all follow the seed). One row per
    model: parameters, mean train seconds, the test metric's mean over the seeds and, for several,
    its standard deviation and the per-seed values; the task's baselines (first seed's data) follow."""
    import dataclasses
    import statistics

    models = compared_models(task)
    results = {label: [] for label in models}
    seconds = {label: [] for label in models}
    first_data = None
    for offset in range(seeds):
        seed = config.seed + offset
        data = task.build(seed=seed)
        if first_data is None:
            first_data = data
        run_config = dataclasses.replace(config, seed=seed)
        for label, cell in models.items():
            run_dir = Path(out_dir) / (cell if seeds == 1 else f"{cell}-seed{seed}")
            result = fit(task, data, ModelConfig(cell=cell, hidden_size=hidden_size), run_config, run_dir)
            results[label].append(result.test[data.metric])
            seconds[label].append(result.seconds)
            if progress is not None:
                progress(label, seed, result.test[data.metric])
    data = first_data
    metric = f"test {data.metric}"
    rows = []
    for label, cell in models.items():
        sized = ModelConfig(cell=cell, hidden_size=hidden_size, input_size=data.input_size,
                            output_size=data.output_size, readout=data.readout)
        row = {"model": label, "parameters": count_parameters(SequenceModel(sized)),
               "train seconds": round(statistics.fmean(seconds[label]), 1), metric: statistics.fmean(results[label])}
        if seeds > 1:
            row["std over seeds"] = statistics.stdev(results[label])
            row["per seed"] = " ".join(f"{value:.4f}" for value in results[label])
        rows.append(row)
    for name, value in task.baselines(data).items():
        row = {"model": f"baseline: {name}", "parameters": 0, "train seconds": 0.0, metric: value}
        if seeds > 1:
            row |= {"std over seeds": "", "per seed": ""}
        rows.append(row)
    return rows, data


def write_comparison(rows: list[dict], out_dir) -> tuple[Path, Path]:
    """comparison.csv and comparison.md in out_dir, each written atomically."""
    columns = list(rows[0])
    csv = "\n".join([",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in rows]) + "\n"
    cells = [[f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    markdown = "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                         + ["| " + " | ".join(line) + " |" for line in cells]) + "\n"
    out = Path(out_dir)
    return write_text_atomic(out / "comparison.csv", csv), write_text_atomic(out / "comparison.md", markdown)
