"""The update gate at an epidemic's regime shifts.

The `epidemic` task's GRU (32 units) forecasts log cases 14 days ahead from 56 days of cases and
the intervention flag. The simulated epidemic has five shifts: two interventions start (days 110
and 520) and end (190 and 580), and a more transmissible variant emerges (day 420). For every
forecast window that holds a shift at least 7 days from either edge, the mean update gate (over
units) over the 7 days after the shift is set against the 7 days before it: a paired difference
per window, with its 95 % confidence interval per shift. The articles' picture: the update gate
rises after a shift, rewriting a state that no longer describes the epidemic.
"""

from __future__ import annotations

import torch

from grukit.experiments.report import Report, verdict
from grukit.experiments.reset import paired
from grukit.experiments.training import train
from grukit.tasks.epidemic import EpidemicTask, SEIRConfig
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig

SIDE = 7  # days averaged on each side of a shift


def shifts(config: SEIRConfig) -> dict[str, int]:
    named = {}
    for number, (start, end, _) in enumerate(config.interventions, 1):
        named[f"intervention {number} starts (day {start})"] = start
        named[f"intervention {number} ends (day {end})"] = end
    for day, _ in config.variants:
        named[f"variant emerges (day {day})"] = day
    return named


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    task = EpidemicTask()
    data = task.build(seed=seed)
    torch.manual_seed(seed)
    _, model = train(task, data, ModelConfig(cell="gru", hidden_size=32),
                     TrainConfig(max_epochs=40 if quick else 100, batch_size=32, seed=seed, early_stopping=10),
                     work_dir / "gru")
    inputs = torch.cat([data.train.inputs, data.validation.inputs, data.test.inputs])
    origins = torch.cat([data.train.groups, data.validation.groups, data.test.groups])
    update = model.gate_trace(inputs).update[0].mean(-1)  # (N, L): mean over units
    lookback = task.lookback
    results, curves = {}, {}
    for name, day in shifts(SEIRConfig(days=task.days, seed=seed)).items():
        position = day - (origins - lookback + 1)  # (N,) where the shift falls in each window
        chosen = ((position >= SIDE) & (position <= lookback - SIDE)).nonzero().flatten()
        if len(chosen) < 3:
            continue
        before = torch.stack([update[i, int(position[i]) - SIDE : int(position[i])].mean() for i in chosen])
        after = torch.stack([update[i, int(position[i]) : int(position[i]) + SIDE].mean() for i in chosen])
        results[name] = paired(after - before)
        curves[name] = torch.stack([update[i, int(position[i]) - SIDE : int(position[i]) + SIDE]
                                    for i in chosen]).mean(0)
    raised = [name for name, r in results.items() if r["ci95"][0] > 0]
    figure, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, curve in curves.items():
        ax.plot(range(-SIDE, SIDE), curve.numpy(), label=name)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("days from the shift")
    ax.set_ylabel("mean update gate")
    ax.legend(fontsize=7)
    report = Report(
        name="regime",
        claim="after an intervention starts or ends, or a variant emerges, the GRU's update gate rises: the state "
              "is rewritten",
        criterion=f"at every shift, the mean update gate over the {SIDE} days after it above the {SIDE} days before "
                  "(95 % CI of the paired difference above 0)",
        measured="; ".join(f"{name}: {r['mean']:+.4f} (CI {r['ci95'][0]:+.4f} … {r['ci95'][1]:+.4f}, {r['n']} windows)"
                           for name, r in results.items()) + f"; raised at {len(raised)} of {len(results)}",
        verdict=verdict(bool(results) and len(raised) == len(results)),
        numbers={"shifts": results, "side_days": SIDE},
    )
    return report, figure
