"""The `grukit` command. Heavy modules are imported inside each command so `--help` is instant."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="grukit",
    help="Faithful, fast and inspectable gated recurrent units for PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print grukit's version (and torch's)."""
    from importlib.metadata import version as installed

    from grukit import __version__

    typer.echo(f"grukit {__version__} (torch {installed('torch')})")


@app.command()
def demo(
    train_steps: int = typer.Option(1500, min=1, help="Optimiser steps per model."),
    steps: int = typer.Option(100, min=2, help="Sequence length T of the adding problem."),
    hidden_size: int = typer.Option(64, min=1, help="Units per model."),
    seed: int = typer.Option(0, help="Seed for data, initialisation and batches."),
    epidemic_epochs: int = typer.Option(60, min=0, help="Most epochs of the epidemic forecaster (0: skip it)."),
    out: str = typer.Option("grukit-demo", help="Directory for the epidemic part's files (rewritten each run)."),
) -> None:
    """The adding problem (GRU vs vanilla RNN, and what the update gate does), then an epidemic
    forecast end to end with its plot (about two minutes)."""
    from rich.console import Console

    from grukit.app.demo import DemoConfig, epidemic_forecast, run

    console = Console()
    run(DemoConfig(steps=steps, hidden_size=hidden_size, train_steps=train_steps, seed=seed), console)
    if epidemic_epochs:
        epidemic_forecast(console, out_dir=out, epochs=epidemic_epochs, seed=seed)


def _parse_options(pairs: list[str]) -> dict:
    """--set key=value pairs → {key: value}, values read as JSON where they parse (3, 0.5, true)."""
    import json

    from grukit.errors import InputError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--set takes key=value, got {pair!r}")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


@app.command()
def train(
    task: str = typer.Argument(None, help="Built-in task: adding, agreement, clinical, copy, digits, epidemic, "
                                          "guidance, imputation, kalman, masked (or --data for your own file)."),
    data: str = typer.Option(None, help="Your own CSV of irregular observations with a label per sequence "
                                        "(instead of a built-in task)."),
    format: str = typer.Option("long", help="--data layout: long (id, time, variable, value, label per row) or "
                                            "wide (id, time, label and a column per variable)."),
    id: str = typer.Option("id", help="--data: column naming each row's sequence."),
    time: str = typer.Option("time", help="--data: timestamp column (numbers or dates)."),
    label: str = typer.Option("label", help="--data: class column (numbers; one value per sequence)."),
    variable: str = typer.Option("variable", help="--data, long: column naming the variable measured."),
    value: str = typer.Option("value", help="--data, long: column of the measured value."),
    model: str = typer.Option("gru", help="Recurrence: gru, lstm, rnn; for clinical, imputation, masked and "
                                           "--data also grud, gru-mean, gru-forward, gru-simple."),
    hidden_size: int = typer.Option(64, min=1, help="Units per layer and direction."),
    layers: int = typer.Option(1, min=1, help="Stacked layers."),
    bidirectional: bool = typer.Option(False, help="Read each sequence both ways."),
    head_dropout: float = typer.Option(0.0, help="Dropout on the features the linear head reads (training)."),
    epochs: int = typer.Option(20, min=1, help="Passes over the training split."),
    max_steps: int = typer.Option(-1, help="Stop after this many optimiser steps (-1: epochs decide)."),
    batch_size: int = typer.Option(64, min=1, help="Sequences per batch (per process)."),
    learning_rate: float = typer.Option(3e-3, help="Adam learning rate."),
    clip: float = typer.Option(1.0, help="Gradient-norm clipping (0: off)."),
    patience: int = typer.Option(0, min=0, help="Early stopping patience in epochs (0: off)."),
    seed: int = typer.Option(0, help="Seed for data, initialisation and batch order."),
    devices: int = typer.Option(1, min=1, help="Processes; > 1 trains with DDP (gloo on CPU)."),
    strategy: str = typer.Option("auto", help="Lightning strategy (ddp, ddp_spawn, …)."),
    run_dir: str = typer.Option(None, help="Where the run is written (default runs/TASK-MODEL-seedN)."),
    resume: bool = typer.Option(False, help="Continue the run in --run-dir from its last checkpoint."),
    option: list[str] = typer.Option(None, "--set", help="Task option key=value, e.g. --set steps=200."),
) -> None:
    """Train a model on a built-in task; print its test metric beside the task's baselines."""
    from grukit.errors import InputError
    from grukit.tasks import make_task
    from grukit.training.model import ModelConfig
    from grukit.training.trainer import TrainConfig, fit

    if (task is None) == (data is None):
        raise InputError("name a built-in task or give --data FILE (one of the two)")
    if data is not None:
        from pathlib import Path

        task = "observations"
        built = make_task(task, path=str(Path(data).resolve()), format=format, id=id, time=time, label=label,
                          variable=variable, value=value, **_parse_options(option or []))
    else:
        built = make_task(task, **_parse_options(option or []))
    task_data = built.build(seed=seed)
    config = TrainConfig(max_epochs=epochs, max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                         gradient_clip=clip or None, early_stopping=patience or None, seed=seed, devices=devices,
                         strategy=strategy)
    directory = run_dir or f"runs/{task}-{model}-seed{seed}"
    model_config = ModelConfig(cell=model, hidden_size=hidden_size, num_layers=layers, bidirectional=bidirectional,
                               head_dropout=head_dropout)
    result = fit(built, task_data, model_config, config, directory, resume=resume)
    _print_metrics(task_data.description, task_data.metric, result.test, result.baselines, directory,
                   f"{result.epochs} epochs, {result.steps} steps, {result.seconds:.1f} s")


@app.command()
def forecast(
    csv: str = typer.Argument(..., help="CSV file: one row per time step."),
    target: str = typer.Option(..., help="Column to forecast."),
    covariates: str = typer.Option("", help="Comma-separated columns read beside the target (past values only)."),
    time: str = typer.Option(None, help="Time column (default: date/time/timestamp/ds/week/year if present)."),
    group: str = typer.Option(None, help="Column naming each row's series (a long file of several): one model "
                                         "for all, each series split by time and scaled on its own."),
    log: bool = typer.Option(False, help="Model log(1 + target): counts and rates (the target must be ≥ 0)."),
    scaling: str = typer.Option("series", help="series: standardise with the training rows; window: divide each "
                                               "window by its mean |target| (a level that moves by orders of "
                                               "magnitude)."),
    horizon: int = typer.Option(14, min=1, help="Steps to forecast."),
    lookback: int = typer.Option(56, min=1, help="Steps the model reads."),
    season: int = typer.Option(1, min=1, help="Season length m of the baselines (7: daily data, weekly cycle)."),
    hidden_size: int = typer.Option(64, min=1, help="GRU units."),
    epochs: int = typer.Option(200, min=1, help="Most epochs (early stopping ends sooner)."),
    seed: int = typer.Option(0, help="Seed for initialisation and batch order."),
    out: str = typer.Option(".", help="Directory for forecast.csv and forecast.png."),
    run_dir: str = typer.Option(None, help="Training run directory (default runs/forecast-TARGET-TIME)."),
    overwrite: bool = typer.Option(False, help="Replace an existing forecast.csv / forecast.png."),
) -> None:
    """Train a GRU forecaster on your CSV; write forecast.csv and forecast.png; compare with baselines."""
    from rich.console import Console

    from grukit.app.forecast import error_table, run_forecast
    from grukit.forecasting.windows import ForecastConfig

    config = ForecastConfig(target=target, covariates=tuple(c.strip() for c in covariates.split(",") if c.strip()),
                            time=time, group=group, log=log, scaling=scaling, horizon=horizon, lookback=lookback,
                            season=season, hidden_size=hidden_size, epochs=epochs, seed=seed)
    result = run_forecast(csv, config, out_dir=out, run_dir=run_dir, overwrite=overwrite)
    console = Console(width=110)
    console.print(f"[bold]{target}[/bold]: {horizon}-step forecasts from {result.test_origins} test origins "
                  "(the latest part of the series, never trained on)")
    console.print(error_table(result))
    typer.echo("wrote " + ", ".join(str(f) for f in result.files) + f"; run directory: {result.run_dir}")


@app.command()
def dataset(
    name: str = typer.Argument(..., help="measles-us, measles-<state> (e.g. measles-california), measles-states "
                                         "(all states, long format), ili, dengue-medellin, eustock."),
    out: str = typer.Option(None, help="Write it to this CSV file (default: print the first and last rows)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out file."),
) -> None:
    """A real series shipped inside a PyPI package (the `data` extra), offline, as CSV for `grukit forecast`."""
    from pathlib import Path

    from grukit.data.real import load
    from grukit.errors import InputError
    from grukit.io.atomic import write_text_atomic

    frame = load(name)
    if out is None:
        typer.echo(frame.head().to_string(index=False))
        typer.echo(f"... {len(frame)} rows; columns: {', '.join(frame.columns)}")
        return
    if Path(out).exists() and not overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it, or choose another --out")
    write_text_atomic(out, frame.to_csv(index=False))
    typer.echo(f"wrote {out}: {len(frame)} rows; columns: {', '.join(frame.columns)}")


@app.command()
def compare(
    task: str = typer.Argument(..., help="Built-in task: adding, agreement, clinical, copy, digits, epidemic, "
                                         "guidance, imputation, kalman, masked."),
    hidden_size: int = typer.Option(64, min=1, help="Units per model (the same for all three)."),
    head_dropout: float = typer.Option(0.0, help="Dropout on the features every model's head reads (the GRU-D "
                                                 "authors use 0.3)."),
    epochs: int = typer.Option(20, min=1, help="Passes over the training split, per model."),
    batch_size: int = typer.Option(64, min=1),
    learning_rate: float = typer.Option(3e-3),
    seed: int = typer.Option(0, help="The same seed (data, initialisation, order) for every model."),
    seeds: int = typer.Option(1, min=1, help="Repeat over seeds SEED … SEED+N−1: mean, spread and per-seed values."),
    out: str = typer.Option(None, help="Directory for the runs and comparison.csv / .md (default runs/compare-TASK)."),
    option: list[str] = typer.Option(None, "--set", help="Task option key=value, e.g. --set steps=200."),
) -> None:
    """Train GRU, LSTM and vanilla RNN (clinical, imputation, masked: the GRU-D family) with equal
    hidden size on the same data and seeds, side by side."""
    from rich.console import Console
    from rich.table import Table

    from grukit.tasks import make_task
    from grukit.training.compare import compare_models, write_comparison
    from grukit.training.trainer import TrainConfig

    built = make_task(task, **_parse_options(option or []))
    config = TrainConfig(max_epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    directory = out or f"runs/compare-{task}"
    rows, data = compare_models(built, config, hidden_size=hidden_size, out_dir=directory, seeds=seeds,
                                head_dropout=head_dropout)
    files = write_comparison(rows, directory)
    console = Console(width=110)
    seed_note = f"seed {seed}" if seeds == 1 else f"seeds {seed}–{seed + seeds - 1}"
    dropped = f", head dropout {head_dropout:g}" if head_dropout else ""
    console.print(f"[bold]{data.description}[/bold]: hidden size {hidden_size}{dropped}, {epochs} epochs, {seed_note}")
    table = Table()
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
    typer.echo("wrote " + ", ".join(str(f) for f in files))


@app.command()
def evaluate(run_dir: str = typer.Argument(..., help="A directory written by `grukit train`.")) -> None:
    """Score a run's best checkpoint on its task's test split again, beside the baselines."""
    from grukit.training.trainer import evaluate_run

    data, metrics, baselines = evaluate_run(run_dir)
    _print_metrics(data.description, data.metric, metrics, baselines, run_dir, "best checkpoint")


def _print_metrics(description: str, metric: str, test: dict, baselines: dict, run_dir, note: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=110)
    console.print(f"[bold]{description}[/bold] — test split ({note})")
    table = Table()
    table.add_column("predictor")
    for name in test:
        table.add_column(name, justify="right")
    table.add_row("model", *(f"{value:.4f}" for value in test.values()))
    for name, value in baselines.items():
        table.add_row(name, *(f"{value:.4f}" if key == metric else "" for key in test))
    console.print(table)
    typer.echo(f"run directory: {run_dir}")


@app.command()
def bench(
    quick: bool = typer.Option(False, help="Two small cases, 3 repeats: a smoke run (seconds)."),
    targets: bool = typer.Option(False, help="Only the four target cases of the kernel issue."),
    repeats: int = typer.Option(5, min=1, help="Interleaved repeats; medians are reported."),
    threads: int = typer.Option(2, min=1, help="torch threads (the CI machine has 2 cores)."),
    json_path: str = typer.Option(None, "--json", help="Also write the raw figures to this JSON file."),
) -> None:
    """Time grukit's GRU against torch.nn.GRU: sequence kernels (per call, per step, GFLOP/s,
    fraction of peak, ratios), batch-1 streaming steps, and peak training memory."""
    import json

    import torch
    from rich.console import Console
    from rich.table import Table

    from grukit.app import bench as benchmark
    from grukit.io.atomic import write_text_atomic

    torch.set_num_threads(threads)
    grid = benchmark.QUICK_GRID if quick else benchmark.TARGETS if targets else benchmark.FULL_GRID
    repeats = 3 if quick else repeats
    console = Console(width=max(Console().width, 110))
    with console.status("measuring") as status:
        done = [0]

        def tick():
            done[0] += 1
            status.update(f"measured {done[0]} of {2 * len(grid)} cases")

        full = not (quick or targets)
        rows = benchmark.run(grid, repeats=repeats, progress=tick,
                             backends=benchmark.GRID_BACKENDS if full else benchmark.ALL_BACKENDS)
        status.update("streaming steps")
        steps = benchmark.step_latency(benchmark.STEP_SIZES[:1] if quick else benchmark.STEP_SIZES,
                                       calls=200 if quick else 2000, repeats=repeats)
        status.update("peak memory")
        memory = benchmark.peak_training_memory(benchmark.QUICK_GRID[:1] if quick else benchmark.TARGETS)
    table = Table(title=f"GRU forward / forward+backward, float32, {threads} threads, medians of "
                        f"{repeats} interleaved repeats; matmul peak {rows[0].peak_gflops:.0f} GFLOP/s")
    for column in ("B", "T", "I", "H", "mode", "backend", "ms/call", "µs/step", "GFLOP/s", "% peak", "vs torch"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r.batch), str(r.steps), str(r.input_size), str(r.hidden), r.mode, r.backend,
                      f"{r.seconds * 1e3:.2f}", f"{r.us_per_step:.1f}", f"{r.gflops:.2f}",
                      f"{100 * r.peak_fraction:.1f}", f"{r.ratio_vs_torch:.3f}")
    console.print(table)
    table = Table(title="Streaming: one step, batch 1, no autograd (each grukit row against the torch row above it)")
    for column in ("I", "H", "model", "µs/call", "vs torch"):
        table.add_column(column, justify="right")
    for r in steps:
        table.add_row(str(r.input_size), str(r.hidden), r.model, f"{r.microseconds:.1f}", f"{r.ratio_vs_torch:.3f}")
    console.print(table)
    if memory:
        table = Table(title="Peak memory of one forward+backward call (resident, above the level before it)")
        for column in ("B", "T", "I", "H", "model", "MiB", "vs torch.nn.GRU"):
            table.add_column(column, justify="right")
        for r in memory:
            table.add_row(str(r.batch), str(r.steps), str(r.input_size), str(r.hidden), r.model,
                          f"{r.peak_mib:.1f}", f"{r.ratio_vs_torch:.2f}")
        console.print(table)
    if json_path:
        figures = {"kernels": benchmark.as_dicts(rows), "streaming": benchmark.as_dicts(steps),
                   "memory": benchmark.as_dicts(memory)}
        write_text_atomic(json_path, json.dumps(figures, indent=2))


def main() -> None:
    """Console entry point: user errors end in one readable line and a non-zero exit."""
    try:
        app()
    except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
        from grukit.errors import InputError

        if isinstance(error, (InputError, FileExistsError, FileNotFoundError)):
            typer.echo(f"grukit: error: {error}", err=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
