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
) -> None:
    """Train a GRU and a vanilla RNN on the adding problem and compare them (about a minute)."""
    from grukit.demo import DemoConfig, run

    run(DemoConfig(steps=steps, hidden_size=hidden_size, train_steps=train_steps, seed=seed))


def main() -> None:
    """Console entry point: user errors end in one readable line and a non-zero exit."""
    try:
        app()
    except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
        from grukit.validation import InputError

        if isinstance(error, (InputError, FileExistsError, FileNotFoundError)):
            typer.echo(f"grukit: error: {error}", err=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
