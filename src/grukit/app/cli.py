"""The `grukit` command. Heavy modules are imported inside each command so `--help` is instant.

Output: each command prints its results and nothing else by default — Lightning's messages and
the libraries' warnings are hidden while it runs (`--verbose` shows them; grukit's own warnings
always show), and progress bars are drawn only on a terminal and erased when done. The help lists
what the options take (the models from `grukit.registry.MODELS`, the task keys from the task
dataclasses) without importing torch.
"""

from __future__ import annotations

import contextlib
import sys

import typer
import typer.core


class _Untagged:
    """Help without typer's type tags (<str>, <int>, <bool>): a value option shows its metavar
    (N, FILE, …); flags, arguments and --help show none. Bounds are checked by `_at_least`
    callbacks rather than typer's min=, which would add an [x>=1] tag."""

    def format_help(self, ctx, formatter) -> None:
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                param.display_type_rich = _no_type
            elif param.metavar is None:
                param.metavar = ""
        super().format_help(ctx, formatter)


def _no_type(ctx=None) -> None:
    """An argument's type shown in help: none (its metavar, TASK or CSV, names it)."""
    return None


class _Command(_Untagged, typer.core.TyperCommand):
    pass


class _Group(_Untagged, typer.core.TyperGroup):
    pass


app = typer.Typer(
    name="grukit",
    cls=_Group,
    help="Faithful, fast and inspectable gated recurrent units for PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_line() -> str:
    from importlib.metadata import version as installed

    from grukit import __version__

    return f"grukit {__version__} (torch {installed('torch')})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print grukit's version (and torch's) and exit."),
) -> None:
    pass


def _at_least(bound: int):
    """A typer callback refusing values below `bound`, named in words (the help shows no range tag)."""

    def check(value):
        if value is not None and value < bound:
            raise typer.BadParameter(f"must be at least {bound}, got {value}")
        return value

    return check


def _task_keys() -> dict[str, tuple[str, ...]]:
    """Each name of `grukit.tasks.TASKS` → the keys `--set` takes there: the fields of its task
    dataclass but `name`, in `dataclasses.fields` order (a dataclass base's fields first).

    Read from the package's sources with `ast` instead of importing it — the tasks import torch and
    the help must stay instant; tests/test_cli.py checks the result against `dataclasses.fields`.
    {} when the sources cannot be read (the help then names no keys)."""
    import ast
    from importlib.util import find_spec
    from pathlib import Path

    try:
        package = Path(find_spec("grukit.tasks").origin).parent
        trees = {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in package.glob("*.py")}
    except (OSError, SyntaxError, AttributeError, TypeError):
        return {}

    def resolve(module: str, name: str):
        """(module, class node) of `name` as grukit.tasks.<module> sees it; None outside the package."""
        for node in trees.get(module, ast.Module(body=[])).body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return module, node
            if isinstance(node, ast.ImportFrom) and node.module:
                source = node.module.removeprefix("grukit.tasks.") if node.level == 0 else node.module
                if node.level == 0 and source == node.module:
                    continue  # not from grukit.tasks
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return resolve(source, alias.name)
        return None

    def fields(module: str, node: ast.ClassDef) -> dict[str, None]:
        found: dict[str, None] = {}
        for base in reversed(node.bases):
            if isinstance(base, ast.Name) and (where := resolve(module, base.id)):
                found |= fields(*where)
        if any(ast.unparse(d).split("(")[0].rsplit(".", 1)[-1] == "dataclass" for d in node.decorator_list):
            for item in node.body:
                if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                        and "ClassVar" not in ast.unparse(item.annotation)):
                    found.setdefault(item.target.id, None)
        return found

    for node in trees.get("__init__", ast.Module(body=[])).body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(
            node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id == "TASKS" and isinstance(node.value, ast.Dict):
            keys = {}
            for name, value in zip(node.value.keys, node.value.values):
                where = isinstance(value, ast.Name) and resolve("__init__", value.id)
                if isinstance(name, ast.Constant) and where:
                    keys[name.value] = tuple(key for key in fields(*where) if key != "name")
            return keys
    return {}


TASK_KEYS = _task_keys()
BUILT_IN = tuple(name for name in TASK_KEYS if name != "observations")  # observations: `train --data FILE`


def _escaped(text: str) -> str:
    """Text shown as written in typer's rich help (a bracket would open a markup tag)."""
    return text.replace("[", "\\[")


def _lines(*paragraphs: str) -> str:
    """Help of several lines: typer's rich help keeps a line break where a paragraph ends."""
    return "\n\n".join(_escaped(paragraph) for paragraph in paragraphs)


def _set_help() -> str:
    keys = [f"{name}: {', '.join(TASK_KEYS[name])}" for name in BUILT_IN if TASK_KEYS[name]]
    return _lines("A task option KEY=VALUE, repeatable; values read as JSON where they parse (200, 0.5, true). "
                  "The keys of each task:", *keys)


def _model_help() -> str:
    from grukit.registry import MODELS

    irregular = [name for name, entry in MODELS.items() if entry.inputs == "irregular"]
    return _lines("The recurrence:", *(f"{name}: {entry.summary}" for name, entry in MODELS.items()),
                  f"{', '.join(irregular)} read irregular series, [values; mask; gaps δ]: the tasks clinical, "
                  "imputation, masked and --data.")


SET_HELP, MODEL_HELP = _set_help(), _model_help()
TASK_HELP = "Built-in task: " + ", ".join(BUILT_IN) + "."
VERBOSE_HELP = "Also show the libraries' own lines: Lightning's messages and warnings."


DAYFIRST_HELP = ("Read dates like 01.03.2024 day-first (1 March) or month-first (3 January); needed only when no "
                 "date in the file tells.")


def _library_output(verbose: bool):
    """Lightning's messages and the libraries' warnings hidden while a command runs, unless --verbose."""
    if verbose:
        return contextlib.nullcontext()
    from grukit.app.quiet import quiet_libraries

    return quiet_libraries()


@app.command(cls=_Command)
def version() -> None:
    """Print grukit's version (and torch's)."""
    typer.echo(_version_line())


@app.command(cls=_Command)
def demo(
    train_steps: int = typer.Option(1500, metavar="N", callback=_at_least(1), help="Optimiser steps per model."),
    steps: int = typer.Option(100, metavar="T", callback=_at_least(2),
                              help="Sequence length T of the adding problem (at least 2)."),
    hidden_size: int = typer.Option(64, metavar="N", callback=_at_least(1), help="Units per model."),
    seed: int = typer.Option(0, metavar="N", help="Seed for data, initialisation and batches."),
    epidemic_epochs: int = typer.Option(60, metavar="N", callback=_at_least(0),
                                        help="Most epochs of the epidemic forecaster (0: skip it)."),
    out: str = typer.Option("grukit-demo", metavar="DIR",
                            help="Directory for the epidemic part's files (rewritten each run)."),
    verbose: bool = typer.Option(False, "--verbose", show_default=False, help=VERBOSE_HELP),
) -> None:
    """Two short studies: GRU vs vanilla RNN on the adding problem, then an epidemic forecast.

    The adding problem shows what the GRU's update gate does; the epidemic part forecasts a
    simulated outbreak end to end and writes its plot (about two minutes in all)."""
    from rich.console import Console

    with _library_output(verbose):
        from grukit.app.demo import DemoConfig, epidemic_forecast, run

        console = Console()
        run(DemoConfig(steps=steps, hidden_size=hidden_size, train_steps=train_steps, seed=seed), console)
        if epidemic_epochs:
            epidemic_forecast(console, out_dir=out, epochs=epidemic_epochs, seed=seed)
    console.print("\nNext: grukit train TASK, grukit compare TASK, grukit forecast FILE.csv --target COLUMN "
                  "(grukit COMMAND --help for each).", highlight=False)


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


@app.command(cls=_Command)
def train(
    task: str = typer.Argument(None, metavar="TASK", help=TASK_HELP[:-1] + " (or --data FILE for your own)."),
    data: str = typer.Option(None, metavar="FILE", help="Your own CSV of irregular observations with a label per "
                                                        "sequence (instead of a built-in task)."),
    format: str = typer.Option("long", metavar="LAYOUT",
                               help="--data layout: long (id, time, variable, value, label per row) or "
                                    "wide (id, time, label and a column per variable)."),
    id: str = typer.Option("id", metavar="COLUMN", help="--data: column naming each row's sequence."),
    time: str = typer.Option("time", metavar="COLUMN", help="--data: timestamp column (numbers or dates)."),
    label: str = typer.Option("label", metavar="COLUMN",
                              help="--data: class column (numbers; one value per sequence)."),
    variable: str = typer.Option("variable", metavar="COLUMN",
                                 help="--data, long: column naming the variable measured."),
    value: str = typer.Option("value", metavar="COLUMN", help="--data, long: column of the measured value."),
    dayfirst: bool = typer.Option(None, "--dayfirst/--monthfirst", show_default=False,
                                  help="--data: " + DAYFIRST_HELP[0].lower() + DAYFIRST_HELP[1:]),
    duplicates: str = typer.Option("error", metavar="RULE",
                                   help="--data: a variable measured twice at one time of a sequence: error, mean or "
                                        "last (in file order)."),
    model: str = typer.Option("gru", metavar="NAME", help=MODEL_HELP),
    hidden_size: int = typer.Option(64, metavar="N", callback=_at_least(1), help="Units per layer and direction."),
    layers: int = typer.Option(1, metavar="N", callback=_at_least(1), help="Stacked layers."),
    bidirectional: bool = typer.Option(False, "--bidirectional", show_default=False,
                                       help="Read each sequence both ways."),
    head_dropout: float = typer.Option(0.0, metavar="P",
                                       help="Dropout on the features the linear head reads (training)."),
    chrono: float = typer.Option(0.0, metavar="T_MAX",
                                 help="Chrono initialisation of the gate biases for memories up to T_MAX steps "
                                      "(Tallec & Ollivier 2018; 0: torch's default initialisation)."),
    epochs: int = typer.Option(20, metavar="N", callback=_at_least(1), help="Passes over the training split."),
    max_steps: int = typer.Option(-1, metavar="N", help="Stop after this many optimiser steps (-1: epochs decide)."),
    batch_size: int = typer.Option(64, metavar="N", callback=_at_least(1),
                                   help="Sequences per batch (per process)."),
    learning_rate: float = typer.Option(3e-3, metavar="LR", help="Adam learning rate."),
    clip: float = typer.Option(1.0, metavar="NORM", help="Gradient-norm clipping (0: off)."),
    patience: int = typer.Option(0, metavar="N", callback=_at_least(0),
                                 help="Early stopping patience in epochs (0: off)."),
    seed: int = typer.Option(0, metavar="N", help="Seed for data, initialisation and batch order."),
    devices: int = typer.Option(1, metavar="N", callback=_at_least(1),
                                help="Processes; more than 1 trains with DDP (gloo on CPU)."),
    strategy: str = typer.Option("auto", metavar="NAME", help="Lightning strategy (ddp, ddp_spawn, …)."),
    run_dir: str = typer.Option(None, metavar="DIR", help="Where the run is written (default runs/TASK-MODEL-seedN)."),
    resume: bool = typer.Option(False, "--resume", show_default=False,
                                help="Continue the run in --run-dir from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", show_default=False,
                                   help="Replace an earlier run in the run directory (its checkpoints and logs "
                                        "are deleted first)."),
    option: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP),
    verbose: bool = typer.Option(False, "--verbose", show_default=False, help=VERBOSE_HELP),
) -> None:
    """Train a model on a built-in task; print its test metric beside the task's baselines."""
    with _library_output(verbose):
        from grukit.errors import InputError
        from grukit.tasks import make_task
        from grukit.training.model import ModelConfig
        from grukit.training.trainer import TrainConfig, fit, launched_worker

        if (task is None) == (data is None):
            raise InputError("name a built-in task or give --data FILE (one of the two)")
        if data is not None:
            from pathlib import Path

            task = "observations"
            built = make_task(task, path=str(Path(data).resolve()), format=format, id=id, time=time, label=label,
                              variable=variable, value=value, dayfirst=dayfirst, duplicates=duplicates,
                              **_parse_options(option or []))
        else:
            built = make_task(task, **_parse_options(option or []))
        task_data = built.build(seed=seed)
        config = TrainConfig(max_epochs=epochs, max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                             gradient_clip=clip or None, early_stopping=patience or None, seed=seed, devices=devices,
                             strategy=strategy)
        directory = run_dir or f"runs/{task}-{model}-seed{seed}"
        model_config = ModelConfig(cell=model, hidden_size=hidden_size, num_layers=layers, bidirectional=bidirectional,
                                   head_dropout=head_dropout, chrono=chrono)
        if overwrite and resume:
            raise InputError("--overwrite replaces the run that --resume would continue: choose one")
        if overwrite and not launched_worker():  # DDP workers start after the first process cleared it
            from grukit.training.runs import remove_run

            remove_run(directory)
        result = fit(built, task_data, model_config, config, directory, resume=resume)
        if launched_worker():  # a DDP process the launcher started: the first process reports
            return
        _print_metrics(task_data.description, task_data.metric, result.test, result.baselines, directory,
                       f"{_count(result.epochs, 'epoch')}, {_count(result.steps, 'step')}, {result.seconds:.1f} s")


@app.command(cls=_Command)
def forecast(
    csv: str = typer.Argument(..., metavar="CSV", help="CSV file: one row per time step."),
    target: str = typer.Option(None, metavar="COLUMN", help="Column to forecast (required unless --from)."),
    from_run: str = typer.Option(None, "--from", metavar="RUN_DIR",
                                 help="Forecast CSV with the model of an earlier `grukit forecast` run, without "
                                      "training (its options are the run's; only --out, --overwrite and --future "
                                      "apply)."),
    covariates: str = typer.Option("", metavar="COLUMNS", show_default=False,
                                   help="Comma-separated columns read beside the target (past values only)."),
    known: str = typer.Option("", metavar="COLUMNS", show_default=False,
                              help="Comma-separated covariates known in advance (planned interventions, holidays, "
                                   "prices): also read for the H steps ahead, from the rows after the last target "
                                   "value (target cell empty) or from --future."),
    future: str = typer.Option(None, metavar="FILE",
                               help="CSV of the --known covariates' values after the last target row (time column, "
                                    "the known columns, and --group for a panel)."),
    static: str = typer.Option("", metavar="COLUMNS", show_default=False,
                               help="Comma-separated attributes of each --group series (one value per group: a "
                                    "number, or text read as a category)."),
    time: str = typer.Option(None, metavar="COLUMN",
                             help="Time column (default: date/time/timestamp/ds/week/year if present)."),
    dayfirst: bool = typer.Option(None, "--dayfirst/--monthfirst", show_default=False, help=DAYFIRST_HELP),
    fill: str = typer.Option("error", metavar="RULE",
                             help="A missing row of a regular series: error (name the first), previous (repeat the "
                                  "row before) or linear (interpolate)."),
    group: str = typer.Option(None, metavar="COLUMN",
                              help="Column naming each row's series (a long file of several): one model for all, "
                                   "each series split by time and scaled on its own."),
    log: bool = typer.Option(False, "--log", show_default=False,
                             help="Model log(1 + target): counts and rates (the target must be ≥ 0)."),
    scaling: str = typer.Option("auto", metavar="HOW",
                                help="auto: seasonal or level for each series, whichever forecasts its validation "
                                     "windows better; seasonal: predict what the series does beyond its seasonal "
                                     "naive forecast, "
                                     "reading changes from the window's level; level: read and predict changes from "
                                     "each window's last-season level; series: standardise with the training rows; "
                                     "window: divide each window by its mean |target| (a level that moves by orders "
                                     "of magnitude)."),
    horizon: int = typer.Option(14, metavar="H", callback=_at_least(1), help="Steps to forecast."),
    lookback: int = typer.Option(56, metavar="L", callback=_at_least(1), help="Steps the model reads."),
    season: int = typer.Option(1, metavar="M", callback=_at_least(1),
                               help="Season length m of the baselines (7: daily data, weekly cycle)."),
    hidden_size: int = typer.Option(64, metavar="N", callback=_at_least(1), help="GRU units."),
    epochs: int = typer.Option(200, metavar="N", callback=_at_least(1),
                               help="Most epochs (early stopping ends sooner)."),
    seed: int = typer.Option(0, metavar="N", help="Seed for initialisation and batch order."),
    out: str = typer.Option(".", metavar="DIR", help="Directory for forecast.csv and forecast.png."),
    run_dir: str = typer.Option(None, metavar="DIR",
                                help="Training run directory (default runs/forecast-TARGET-TIME)."),
    overwrite: bool = typer.Option(False, "--overwrite", show_default=False,
                                   help="Replace an existing forecast.csv / forecast.png (backtest.csv, metrics.csv, "
                                        "backtest.png) and an earlier run in --run-dir."),
    backtest: bool = typer.Option(False, "--backtest", show_default=False,
                                  help="Rolling-origin evaluation instead: the last --windows origins, --step rows "
                                       "apart, for the GRU and the baselines alike; writes backtest.csv, metrics.csv "
                                       "and backtest.png."),
    windows: int = typer.Option(5, metavar="N", callback=_at_least(1), help="--backtest: origins per series."),
    step: int = typer.Option(0, metavar="S", callback=_at_least(0),
                             help="--backtest: rows between origins (0: the horizon)."),
    refit: bool = typer.Option(False, "--refit", show_default=False,
                               help="--backtest: train anew at every origin (default: once, before the first)."),
    verbose: bool = typer.Option(False, "--verbose", show_default=False, help=VERBOSE_HELP),
) -> None:
    """Train a GRU forecaster on your CSV; write forecast.csv and forecast.png; compare with baselines."""
    with _library_output(verbose):
        from rich.console import Console

        from grukit.errors import InputError
        from grukit.forecasting.inputs import read_forecast_input
        from grukit.forecasting.windows import ForecastConfig

        if from_run is not None:
            from grukit.app.forecast import forecast_from

            done = forecast_from(from_run, csv, out_dir=out, overwrite=overwrite, future=future)
            typer.echo("wrote " + ", ".join(str(f) for f in done.files) + f" with the model of {from_run}")
            return
        if target is None:
            raise InputError("name the column to forecast with --target (or forecast with a trained run: --from)")
        config = ForecastConfig(target=target, covariates=_columns(covariates), known=_columns(known),
                                static=_columns(static), time=time, dayfirst=dayfirst, fill=fill, group=group,
                                log=log, scaling=scaling,
                                horizon=horizon, lookback=lookback, season=season, hidden_size=hidden_size,
                                epochs=epochs, seed=seed)
        panel = read_forecast_input(csv, config, future=future, ahead=not backtest)  # errors before torch is imported
        if backtest:
            from grukit.app.backtest import BacktestConfig, backtest_table, run_backtest

            chosen = BacktestConfig(windows=windows, step=step, refit=refit)
            done = run_backtest(csv, config, chosen, out_dir=out, run_dir=run_dir, overwrite=overwrite, panel=panel)
            console = Console(width=120)
            console.print(f"[bold]{target}[/bold]: backtest of {horizon}-step forecasts from {done.origins} origins "
                          f"({windows} per series, {step or horizon} rows apart, "
                          f"{'trained anew at each' if refit else 'trained once before the first'})")
            console.print(backtest_table(done, season=season))
            typer.echo("wrote " + ", ".join(str(f) for f in done.files) + f"; run directory: {done.run_dir}")
            return

        from grukit.app.forecast import error_table, run_forecast

        result = run_forecast(csv, config, out_dir=out, run_dir=run_dir, overwrite=overwrite, panel=panel)
        console = Console(width=110)
        console.print(f"[bold]{target}[/bold]: {horizon}-step forecasts from {result.test_origins} test origins "
                      "(the latest part of the series, never trained on)")
        console.print(error_table(result))
        if scaling == "auto":
            chosen = sorted(set(result.scalings.values()))
            console.print("scaling chosen on the validation windows: " + (chosen[0] if len(chosen) == 1 else ", ".join(
                f"{s} for {sum(v == s for v in result.scalings.values())} series" for s in chosen)))
        typer.echo("wrote " + ", ".join(str(f) for f in result.files) + f"; run directory: {result.run_dir}")


def _columns(names: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in names.split(",") if c.strip())


@app.command(cls=_Command)
def dataset(
    name: str = typer.Argument(..., metavar="NAME",
                               help="measles-us, measles-<state> (e.g. measles-california), measles-states "
                                    "(all states, long format), ili, dengue-medellin, eustock, classical-<name> "
                                    "(sunspot.year, co2, airpassengers, lynx, nottem, ukgas, usaccdeaths)."),
    out: str = typer.Option(None, metavar="FILE",
                            help="Write it to this CSV file (default: print the first and last rows)."),
    overwrite: bool = typer.Option(False, "--overwrite", show_default=False, help="Replace an existing --out file."),
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



@app.command(cls=_Command)
def compare(
    task: str = typer.Argument(..., metavar="TASK", help=TASK_HELP),
    hidden_size: int = typer.Option(64, metavar="N", callback=_at_least(1),
                                    help="Units per model (with --match parameters: the first model's)."),
    models: str = typer.Option(None, "--models", metavar="A,B,…",
                               help="Which models, in order (default all the task's): e.g. gru,mingru,lstm."),
    match: str = typer.Option("hidden", metavar="hidden|parameters",
                              help="What the models share: the hidden size, or the parameter count (each as wide "
                                   "as brings it closest to the first model's at --hidden-size)."),
    num_layers: int = typer.Option(1, "--layers", metavar="N", callback=_at_least(1),
                                   help="Stacked layers per model (the same for all)."),
    chrono: float = typer.Option(0.0, metavar="T_MAX",
                                 help="Chrono-initialise every model's gate biases for memories of 1 … T_MAX steps "
                                      "(Tallec & Ollivier 2018); 0: off."),
    head_dropout: float = typer.Option(0.0, metavar="P", help="Dropout on the features every model's head reads "
                                                              "(the GRU-D authors use 0.3)."),
    epochs: int = typer.Option(20, metavar="N", callback=_at_least(1),
                               help="Passes over the training split, per model."),
    batch_size: int = typer.Option(64, metavar="N", callback=_at_least(1), help="Sequences per batch."),
    learning_rate: float = typer.Option(3e-3, metavar="LR", help="Adam learning rate."),
    seed: int = typer.Option(0, metavar="N", help="The same seed (data, initialisation, order) for every model."),
    seeds: int = typer.Option(1, metavar="N", callback=_at_least(1),
                              help="Repeat over seeds SEED … SEED+N−1: mean, spread and per-seed values."),
    out: str = typer.Option(None, metavar="DIR",
                            help="Directory for the runs and comparison.csv / .md (default runs/compare-TASK)."),
    option: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP),
    verbose: bool = typer.Option(False, "--verbose", show_default=False, help=VERBOSE_HELP),
) -> None:
    """Train GRU, minGRU, LSTM and vanilla RNN alike on one task's data and seeds, side by side.

    Equal epochs, optimiser and hidden size (or parameter count, --match parameters) for all; the
    tasks of irregular series (clinical, imputation, masked) compare the GRU-D family instead."""
    with _library_output(verbose):
        from rich.console import Console
        from rich.table import Table

        from grukit.tasks import make_task
        from grukit.training.compare import compare_models, select_models, write_comparison
        from grukit.training.trainer import TrainConfig

        built = make_task(task, **_parse_options(option or []))
        chosen = list(select_models(built, models.split(","))) if models is not None else None
        config = TrainConfig(max_epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
        directory = out or f"runs/compare-{task}"
        rows, data = compare_models(built, config, hidden_size=hidden_size, out_dir=directory, seeds=seeds,
                                    head_dropout=head_dropout, models=chosen, match=match,
                                    num_layers=num_layers, chrono=chrono)
        files = write_comparison(rows, directory)
        console = Console(width=110)
        seed_note = f"seed {seed}" if seeds == 1 else f"seeds {seed}–{seed + seeds - 1}"
        dropped = f", head dropout {head_dropout:g}" if head_dropout else ""
        width = (f"hidden size {hidden_size}" if match == "hidden"
                 else f"parameters matched to the {rows[0]['model']}'s at hidden size {hidden_size}")
        width += f", {num_layers} layers" if num_layers > 1 else ""
        width += f", chrono initialisation T_max = {chrono:g}" if chrono else ""
        console.print(f"[bold]{data.description}[/bold]: {width}{dropped}, "
                      f"{_count(epochs, 'epoch')}, {seed_note}")
        table = Table()
        for column in rows[0]:
            table.add_column(column, justify="left" if column == "model" else "right")
        for row in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)
        typer.echo("wrote " + ", ".join(str(f) for f in files))


@app.command(cls=_Command)
def evaluate(run_dir: str = typer.Argument(..., metavar="RUN_DIR",
                                           help="A directory written by `grukit train` or `grukit forecast`.")):
    """Score a run's best checkpoint on its task's test split again, beside the baselines."""
    from pathlib import Path

    from grukit.forecasting.windows import MODEL_FILE

    if (Path(run_dir) / MODEL_FILE).is_file():  # a `grukit forecast` run
        from rich.console import Console

        from grukit.app.forecast import error_table, evaluate_forecast_run

        result = evaluate_forecast_run(run_dir)
        Console(width=110).print(error_table(result, title=f"{result.test_origins} test origins, best checkpoint"))
        return
    from grukit.training.trainer import evaluate_run

    data, metrics, baselines = evaluate_run(run_dir)
    _print_metrics(data.description, data.metric, metrics, baselines, run_dir, "best checkpoint")


@app.command(cls=_Command)
def generate(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A directory written by `grukit train text`."),
    prompt: str = typer.Option("", metavar="TEXT", help="Text the sample continues (read first)."),
    length: int = typer.Option(200, metavar="N", callback=_at_least(1), help="Characters to sample."),
    temperature: float = typer.Option(0.8, metavar="T",
                                      help="Softmax temperature: lower is more likely text, 1 the model's own."),
    seed: int = typer.Option(0, metavar="N", help="Seed of the sampling."),
) -> None:
    """Sample text from a character-level model trained with `grukit train text`."""
    from grukit.app.generate import generate as sample

    typer.echo(prompt + sample(run_dir, prompt=prompt, length=length, temperature=temperature, seed=seed))


@app.command(cls=_Command)
def inspect(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A directory written by `grukit train`."),
    data: str = typer.Option(None, metavar="FILE",
                             help="Show these sequences instead of the run's test sequences: a CSV in the layout "
                                  "the run was trained on (`grukit train --data`), read with its options."),
    out: str = typer.Option(None, metavar="DIR",
                            help="Where the pictures and report.html go (default RUN_DIR/inspect)."),
    overwrite: bool = typer.Option(False, "--overwrite", show_default=False,
                                   help="Replace an earlier report in the output directory."),
) -> None:
    """Pictures of what a trained model's gates do, and one self-contained report.html."""
    from grukit.app.inspect import inspect_run

    written = inspect_run(run_dir, data=data, out_dir=out, overwrite=overwrite)
    typer.echo("wrote " + ", ".join(str(p) for p in written))


@app.command(cls=_Command)
def export(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="A directory written by `grukit train`."),
    onnx: str = typer.Option(None, "--onnx", metavar="FILE",
                             help="Write the trained model (backbone and read-out) as ONNX: inputs input (B, T, I) "
                                  "and hx, outputs prediction and h_n; batch and steps dynamic."),
    torch_export: str = typer.Option(None, "--torch-export", metavar="FILE",
                                     help="Write it as a torch.export program (.pt2)."),
    overwrite: bool = typer.Option(False, "--overwrite", show_default=False, help="Replace existing files."),
    verbose: bool = typer.Option(False, "--verbose", show_default=False, help=VERBOSE_HELP),
) -> None:
    """Export a trained run's model, run the file on the run's test sequences and report the difference."""
    with _library_output(verbose):
        from grukit.app.export import export_run

        for done in export_run(run_dir, onnx_path=onnx, torch_export_path=torch_export, overwrite=overwrite):
            typer.echo(f"wrote {done.path} ({done.kind}); run on {done.sequences} test sequences, its predictions "
                       f"differ from grukit's by at most {done.largest_difference:.2e}")


def _experiment_help() -> str:
    from grukit.experiments import EXPERIMENTS  # torch-free: the names and one line each

    return _lines("The experiment to run, or all:", *(f"{name}: {line}." for name, line in EXPERIMENTS.items()))


@app.command(cls=_Command)
def experiment(
    name: str = typer.Argument(..., metavar="NAME", help=_experiment_help()),
    quick: bool = typer.Option(False, "--quick", show_default=False,
                               help="Sized for a few minutes each on two cores."),
    seed: int = typer.Option(0, metavar="N", help="Seed of data, initialisation and training."),
    out: str = typer.Option("experiments", metavar="DIR", help="Where NAME.png, NAME.json and runs/ go."),
    write_docs: bool = typer.Option(False, "--write-docs", show_default=False,
                                    help="Also write docs/experiments.md and its figures from these reports."),
    verbose: bool = typer.Option(False, "--verbose", show_default=False, help=VERBOSE_HELP),
) -> None:
    """Measure one of the articles' claims (or all): the claim, the measured figure, the criterion, PASS or FAIL."""
    with _library_output(verbose):
        from grukit.experiments import EXPERIMENTS, run_experiment
        from grukit.experiments import write_docs as write_page

        names = list(EXPERIMENTS) if name == "all" else [name]
        reports = []
        for each in names:
            report = run_experiment(each, quick=quick, seed=seed, out_dir=out)
            reports.append(report)
            typer.echo("\n".join(report.lines()) + f"\n  wrote {out}/{report.name}.png, {out}/{report.name}.json "
                       f"({report.seconds:.0f} s)")
        if len(reports) > 1:
            passed = sum(r.verdict == "PASS" for r in reports)
            typer.echo(f"{passed} of {len(reports)} passed: " + ", ".join(f"{r.name} {r.verdict}" for r in reports))
        if write_docs:
            command = " ".join(["grukit experiment all", *(["--quick"] if quick else []),
                                *([f"--seed {seed}"] if seed else []), "--write-docs"])
            typer.echo(f"wrote {write_page(out_dir=out, docs_dir='docs', command=command)}")


def _count(number: int, noun: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


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



@app.command(cls=_Command)
def bench(
    quick: bool = typer.Option(False, "--quick", show_default=False,
                               help="Two small cases, 3 repeats: a smoke run (seconds)."),
    targets: bool = typer.Option(False, "--targets", show_default=False,
                                 help="Only the four target cases of the README's performance goals."),
    repeats: int = typer.Option(5, metavar="N", callback=_at_least(1),
                                help="Interleaved repeats; medians are reported."),
    threads: int = typer.Option(2, metavar="N", callback=_at_least(1), help="torch threads."),
    json_path: str = typer.Option(None, "--json", metavar="FILE", help="Also write the raw figures to this JSON file."),
    mingru: bool = typer.Option(False, "--mingru", show_default=False,
                                help="Instead: minGRU's training step by each scan against grukit.GRU and "
                                     "torch.nn.GRU for T = 128 … 8192, and its scan's bytes/s against this "
                                     "machine's memory bandwidth."),
) -> None:
    """Time grukit's GRU against torch.nn.GRU: kernels, streaming steps and peak memory.

    Sequence kernels per call and per step, GFLOP/s, fraction of peak and ratios; batch-1
    streaming steps; peak training memory."""
    import json

    import torch
    from rich.console import Console
    from rich.table import Table

    from grukit.app import bench as benchmark
    from grukit.io.atomic import write_text_atomic

    torch.set_num_threads(threads)
    if mingru:
        _bench_mingru(benchmark, threads=threads, quick=quick, repeats=3 if quick else repeats, json_path=json_path)
        return
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



def _bench_mingru(benchmark, *, threads: int, quick: bool, repeats: int, json_path) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from grukit.io.atomic import write_text_atomic

    console = Console(width=max(Console().width, 110))
    with console.status("measuring minGRU"):
        bandwidth = benchmark.memory_bandwidth()
        rows = benchmark.mingru_training(benchmark.MINGRU_STEPS[:1] if quick else benchmark.MINGRU_STEPS,
                                         repeats=repeats)
    table = Table(title=f"One layer's training step (forward + backward), B = {benchmark.MINGRU_BATCH}, I = H = "
                        f"{benchmark.MINGRU_HIDDEN}, float32, {threads} threads, medians of {repeats} interleaved "
                        f"repeats; memory bandwidth (a 256 MB copy) {bandwidth:.1f} GB/s")
    for column in ("T", "model", "ms", "vs torch.nn.GRU", "GB/s", "% of bandwidth"):
        table.add_column(column, justify="right")
    for row in rows:
        rate = row.scan_gb_per_s
        table.add_row(str(row.steps), row.model, f"{row.seconds * 1e3:.2f}", f"{row.ratio_vs_torch:.3f}",
                      "" if rate is None else f"{rate:.1f}", "" if rate is None else f"{100 * rate / bandwidth:.0f}")
    console.print(table)
    for steps in dict.fromkeys(row.steps for row in rows):
        at = {row.model: row for row in rows if row.steps == steps}
        layer = at["minGRU compiled"].seconds
        kernel = at["scan kernel, forward+backward"].scan_gb_per_s
        console.print(f"T = {steps}: the compiled layer {at['minGRU log'].seconds / layer:.1f}× faster than the "
                      f"log-space scan, {layer / at['input projection alone'].seconds:.2f}× the time of its input "
                      f"projection; the scan kernel (forward+backward) at {100 * kernel / bandwidth:.0f}% of the "
                      "bandwidth")
    if json_path:
        write_text_atomic(json_path, json.dumps({"bandwidth_gb_per_s": bandwidth,
                                                 "rows": benchmark.as_dicts(rows)}, indent=2))


def main() -> None:
    """Console entry point: user errors end in one readable line and a non-zero exit."""
    try:
        app(prog_name="grukit")
    except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
        from grukit.errors import InputError

        if isinstance(error, (InputError, FileExistsError, FileNotFoundError)):
            typer.echo(f"grukit: error: {error}", err=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
