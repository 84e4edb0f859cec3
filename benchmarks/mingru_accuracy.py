"""minGRU's quality beside the GRU's and the LSTM's at an equal budget of parameters: the other half of
the speed–quality trade-off whose speed half `grukit bench --mingru` measures.

    python benchmarks/mingru_accuracy.py [--layers 2] [--tasks adding,digits,text] [--json results.json]

Each task is `grukit compare TASK --models gru,mingru,lstm --match parameters` with the settings of
`TASKS`: the GRU at the listed hidden size, the minGRU and the LSTM each as wide as brings their
parameter count closest to the GRU's, the same data, epochs, batches, Adam learning rate and seeds
for all; at each depth of `--layers` (every model stacked alike). Reported per task and depth: each
model's hidden size, parameters, mean train seconds and the test metric (mean over the seeds, with
the per-seed values), and the task's baseline:

- `adding`, T = 400: test MSE of the sum of the two marked values (a constant guess: 0.167);
  `adding-chrono` the same with every model's gates chrono-initialised for memories up to 400 steps;
- `digits`: 8×8 digits read pixel by pixel (64 steps), test accuracy;
- `text`: character-level tweets, test bits per character (the bigram model's as the baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

ADDING = {"steps": 400, "train_size": 4_000, "validation_size": 300, "test_size": 500}
TASKS = {  # name → (task, task options, GRU hidden size, epochs, batch size, seeds, chrono T_max)
    "adding": ("adding", ADDING, 32, 10, 32, 3, 0.0),
    "adding-chrono": ("adding", ADDING, 32, 10, 32, 3, 400.0),  # every model chrono-initialised
    "digits": ("digits", {"order": "pixels"}, 64, 30, 64, 3, 0.0),
    "text": ("text", {"tweets": 6_000}, 128, 4, 64, 1, 0.0),
}
MODELS = ("gru", "mingru", "lstm")


def measure(task_name: str, layers: int, out_dir) -> dict:
    from grukit.tasks import make_task
    from grukit.training.compare import compare_models
    from grukit.training.trainer import TrainConfig

    name, options, hidden, epochs, batch, seeds, chrono = TASKS[task_name]
    task = make_task(name, **options)
    config = TrainConfig(max_epochs=epochs, batch_size=batch, seed=0, progress=False)
    rows, data = compare_models(task, config, hidden_size=hidden, out_dir=out_dir, seeds=seeds, models=MODELS,
                                match="parameters", num_layers=layers, chrono=chrono)
    metric = f"test {data.metric}"
    return {"task": task_name, "layers": layers, "metric": data.metric, "description": data.description,
            "epochs": epochs, "seeds": seeds,
            "models": [{"model": r["model"], "hidden size": r["hidden size"], "parameters": r["parameters"],
                        "train seconds": r["train seconds"], "score": r[metric],
                        "per seed": r.get("per seed", f"{r[metric]:.4f}")} for r in rows]}


def table(results: list[dict]) -> str:
    lines = ["| task | layers | metric | model | hidden size | parameters | train seconds | test score | per seed |",
             "|---|---:|---|---|---:|---:|---:|---:|---|"]
    for result in results:
        for row in result["models"]:
            lines.append(f"| {result['task']} | {result['layers']} | {result['metric']} | {row['model']} | "
                         f"{row['hidden size']} | {row['parameters']:,} | {row['train seconds']:.1f} | "
                         f"{row['score']:.4f} | {row['per seed']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="2", help="depths to run, comma-separated")
    parser.add_argument("--tasks", default=",".join(TASKS), help="tasks to run, comma-separated")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    unknown = sorted(set(args.tasks.split(",")) - set(TASKS))
    if unknown:
        parser.error(f"unknown task {unknown[0]!r}: choose among {', '.join(TASKS)}")
    from grukit.app.quiet import quiet_libraries
    from grukit.io.atomic import write_text_atomic

    results = []
    with tempfile.TemporaryDirectory() as work, quiet_libraries():
        for task_name in args.tasks.split(","):
            for layers in (int(n) for n in args.layers.split(",")):
                results.append(measure(task_name, layers, f"{work}/{task_name}-{layers}"))
                print(table(results[-1:]), file=sys.stderr, flush=True)  # each as it finishes
                if args.json:  # rewritten (atomically) after each task: a long run keeps what it has measured
                    write_text_atomic(args.json, json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
