"""`grukit demo`: a GRU and a vanilla RNN learn the adding problem side by side.

Same hidden size, same data, same optimiser and number of steps; each model's test MSE is
printed beside the constant-prediction baseline (1/6 ≈ 0.167). The GRU is then opened up: its
update gate u = 1 − z at the marked steps (where the model must write) against the others
(where it must hold), the mechanism the articles describe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grukit.nn.baselines import RNN
from grukit.nn.gru import GRU
from grukit.tasks.adding import CONSTANT_BASELINE_MSE, constant_prediction_mse, make_adding


@dataclass(frozen=True)
class DemoConfig:
    steps: int = 100  # sequence length T of the adding problem
    hidden_size: int = 64  # units of each recurrent model
    train_steps: int = 1500  # optimiser steps per model (≈ 40 s for the GRU on 2 cores)
    batch_size: int = 64
    learning_rate: float = 3e-3  # Adam
    clip_norm: float = 1.0  # gradient-norm clipping
    train_size: int = 20_000
    test_size: int = 2_000
    seed: int = 0


class SequenceRegressor(torch.nn.Module):
    """A recurrent module read out from its last output by a linear layer: (B, T, I) → (B, 1)."""

    def __init__(self, recurrent: torch.nn.Module) -> None:
        super().__init__()
        self.recurrent = recurrent
        self.head = torch.nn.Linear(recurrent.hidden_size, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output, _ = self.recurrent(inputs)
        return self.head(output[:, -1])


def _train(model, data, config: DemoConfig, progress: Progress, label: str) -> float:
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    task = progress.add_task(label, total=config.train_steps, loss=float("nan"))
    start = time.perf_counter()
    for _ in range(config.train_steps):
        batch = torch.randint(0, len(data.targets), (config.batch_size,), generator=generator)
        loss = torch.nn.functional.mse_loss(model(data.inputs[batch]), data.targets[batch])
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimiser.step()
        progress.update(task, advance=1, loss=loss.item())
    return time.perf_counter() - start


def run(config: DemoConfig = DemoConfig(), console: Console | None = None) -> dict:
    """Train both models and print the comparison; returns the measured figures."""
    console = console or Console()
    train = make_adding(config.train_size, config.steps, seed=config.seed)
    test = make_adding(config.test_size, config.steps, seed=config.seed + 1)
    console.print(
        f"[bold]Adding problem[/bold], T={config.steps}: remember two marked values and add them. "
        f"{config.train_steps} Adam steps per model, hidden size {config.hidden_size}."
    )
    models = {}
    for name, kind in (("GRU", GRU), ("vanilla RNN", RNN)):
        torch.manual_seed(config.seed)
        models[name] = SequenceRegressor(kind(2, config.hidden_size, batch_first=True))
    results = {}
    columns = (TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    # a bar only where one can be drawn, erased once both models are trained: the table says the rest
    drawable = console.is_terminal or console.is_jupyter
    with Progress(*columns, console=console, transient=True, disable=not drawable) as progress:
        for name, model in models.items():
            seconds = _train(model, train, config, progress, name)
            with torch.no_grad():
                mse = torch.nn.functional.mse_loss(model(test.inputs), test.targets).item()
            results[name] = {"test_mse": mse, "seconds": seconds}

    baseline = constant_prediction_mse(test.targets)
    table = Table(title=f"Test MSE on {config.test_size} held-out sequences")
    for column in ("model", "test MSE", "vs constant baseline", "train time"):
        table.add_column(column, justify="right" if column != "model" else "left")
    table.add_row("constant 1.0", f"{baseline:.4f}", "1.000×", "-")
    for name, r in results.items():
        table.add_row(name, f"{r['test_mse']:.4f}", f"{r['test_mse'] / baseline:.3f}×", f"{r['seconds']:.1f} s")
    console.print(table)
    console.print(f"(expected constant-baseline MSE: 1/6 = {CONSTANT_BASELINE_MSE:.3f})")

    gates = _update_gate_at_markers(models["GRU"].recurrent, test.inputs[:256])
    results["update_gate"] = gates
    if gates["latching_units"] == 0:
        console.print("No GRU unit latches yet (update gate open at the marks, shut between them): "
                      "train longer with --train-steps.")
    else:
        console.print(
            f"GRU update gate u = 1 − z: {gates['latching_units']} of {config.hidden_size} units open "
            f"≥ {LATCH_RATIO:.0f}× wider at the marked steps (mean u {gates['latching_marked']:.2f}) than "
            f"in between (mean u {gates['latching_unmarked']:.3f}, memory timescale "
            f"τ = −1/ln(1 − u) ≈ {gates['latching_timescale']:.0f} steps): they write a value and latch it."
        )
    results["baseline_mse"] = baseline
    return results


LATCH_RATIO = 5.0  # a unit "latches" when its update gate is this much wider at marked steps


def _update_gate_at_markers(gru: GRU, inputs: torch.Tensor) -> dict:
    """Per unit, the mean update gate at marked steps and elsewhere; summary of latching units."""
    with torch.no_grad():
        _, _, trace = gru(inputs, return_gates=True)
    update = trace.update[0]  # (B, T, H)
    marked = inputs[..., 1] == 1  # (B, T)
    at_marks, between = update[marked].mean(0), update[~marked].mean(0)  # (H,)
    latching = at_marks >= LATCH_RATIO * between
    nan = float("nan")
    u_between = between[latching].mean().item() if latching.any() else nan
    return {
        "latching_units": int(latching.sum()),
        "latching_marked": at_marks[latching].mean().item() if latching.any() else nan,
        "latching_unmarked": u_between,
        "latching_timescale": -1 / torch.log1p(torch.tensor(-u_between)).item(),
    }


def epidemic_forecast(console: Console, *, out_dir, epochs: int = 60, seed: int = 0) -> dict:
    """The articles' epidemic application end to end: simulate an SEIR epidemic with two
    interventions and a variant (`tasks.epidemic`), write it as a CSV, and run `grukit forecast` on
    it (14 days ahead from 8 weeks, weekly seasonal-naive and ETS baselines). The demo's own
    directory is rewritten on each run: epidemic.csv, forecast.csv, forecast.png, run/."""
    import shutil
    from pathlib import Path

    import pandas as pd

    from grukit.app.forecast import error_table, run_forecast
    from grukit.forecasting.windows import ForecastConfig
    from grukit.io.atomic import write_text_atomic
    from grukit.tasks.epidemic import SEIRConfig, simulate_seir

    out = Path(out_dir)
    simulated = simulate_seir(SEIRConfig(seed=seed))
    dates = pd.date_range("2021-01-04", periods=len(simulated["day"]), freq="D").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"date": dates, "cases": simulated["cases"].astype(int),
                          "intervention": simulated["intervention"].astype(int)})
    write_text_atomic(out / "epidemic.csv", frame.to_csv(index=False))
    shutil.rmtree(out / "run", ignore_errors=True)
    console.print(f"\n[bold]Epidemic forecasting[/bold]: {len(frame)} days of simulated reported cases (SEIR with two "
                  "interventions and a more transmissible variant, weekend under-reporting); a GRU reads 8 weeks "
                  "of cases and the intervention flag and forecasts 14 days.")
    config = ForecastConfig(target="cases", covariates=("intervention",), horizon=14, lookback=56, season=7,
                            hidden_size=32, epochs=epochs, patience=10, seed=seed)
    result = run_forecast(out / "epidemic.csv", config, out_dir=out, run_dir=out / "run", overwrite=True,
                          progress=True)
    console.print(error_table(result, title=f"14-day forecasts (cases/day) from {result.test_origins} test "
                                            "origins, the last part of the series"))
    console.print(f"Wrote {', '.join(str(f) for f in result.files)} (history, test-period fit, forecast with its "
                  "80% interval).")
    return result.test
