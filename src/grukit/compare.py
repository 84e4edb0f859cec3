"""`grukit compare TASK`: GRU, LSTM and vanilla RNN trained alike, side by side.

Same task data, hidden size, optimiser, epochs and seed for the three; each row reports the
parameter count, the wall time of training and the test metric of the best checkpoint, with the
task's baselines below as rows of their own.
"""

from __future__ import annotations

from pathlib import Path

from grukit.atomic import write_text_atomic
from grukit.base import count_parameters
from grukit.models import ModelConfig, SequenceModel
from grukit.tasks.base import Task, TaskData
from grukit.train import TrainConfig, fit

MODELS = {"GRU": "gru", "LSTM": "lstm", "vanilla RNN": "rnn"}


def compare_models(task: Task, config: TrainConfig, *, hidden_size: int, out_dir) -> tuple[list[dict], TaskData]:
    data = task.build(seed=config.seed)
    rows = []
    for label, cell in MODELS.items():
        model_config = ModelConfig(cell=cell, hidden_size=hidden_size)
        result = fit(task, data, model_config, config, Path(out_dir) / cell)
        sized = ModelConfig(cell=cell, hidden_size=hidden_size, input_size=data.input_size,
                            output_size=data.output_size, readout=data.readout)
        rows.append({"model": label, "parameters": count_parameters(SequenceModel(sized)),
                     "train seconds": round(result.seconds, 1), f"test {data.metric}": result.test[data.metric]})
    for name, value in task.baselines(data).items():
        rows.append({"model": f"baseline: {name}", "parameters": 0, "train seconds": 0.0,
                     f"test {data.metric}": value})
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
