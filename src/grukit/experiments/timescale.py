"""Memory timescale: τ = −1/ln(1 − u) against the measured decay of a perturbation.

For each u ∈ {0.5, 0.1, 0.05, 0.01}, a GRU of 8 units whose update gates are held at u (gate
weights zero, biases set). Each unit's h is nudged by ε at step 50 and τ is fitted to the decay of
the gap between the nudged and the undisturbed run (`grukit.analysis.impulse_response`), median
over units and 4 sequences. Two candidates:

  * reading x only (W_hn = 0): the interpolation h' = (1 − u) h + u ñ alone, the articles' case;
  * with torch's default random recurrent weights W_hn: the state feeds back through ñ, and the
    decay is that of (1 − u) I + u ∂ñ/∂h, no longer the gate's alone.

The verdict is on the first; the second shows how far feedback through the candidate moves it.
Beside both, Tallec & Ollivier's first-order convention τ = 1/u.
"""

from __future__ import annotations

import torch

from grukit.analysis import impulse_response, memory_timescales
from grukit.experiments.report import Report, verdict
from grukit.nn.gru import GRU

UPDATES = (0.5, 0.1, 0.05, 0.01)
HIDDEN = 8


def held_gru(update: float, *, feedback: bool, seed: int) -> GRU:
    torch.manual_seed(seed)
    gru = GRU(2, HIDDEN, dtype=torch.float64)
    with torch.no_grad():
        for weight in (gru.weight_ih_l0, gru.weight_hh_l0):
            weight[: 2 * HIDDEN] = 0.0  # r and z read neither x nor h
        if not feedback:
            gru.weight_hh_l0[2 * HIDDEN :] = 0.0  # ñ reads x only
        gru.bias_hh_l0[: 2 * HIDDEN] = 0.0
        gru.bias_ih_l0[:HIDDEN] = 0.0  # r = ½
        gru.bias_ih_l0[HIDDEN : 2 * HIDDEN] = torch.logit(torch.tensor(1 - update, dtype=torch.float64))  # z = 1 − u
    return gru


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    steps = 50 + int(12 / min(UPDATES)) * 10  # enough steps after the nudge for the slowest unit
    x = torch.randn(steps, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    rows = {}
    for u in UPDATES:
        row = {"formula": None, "inverse_convention": 1 / u}
        for feedback in (False, True):
            gru = held_gru(u, feedback=feedback, seed=seed)
            trace = gru(x, return_gates=True)[2]
            row["formula"] = float(memory_timescales(trace).tau.mean())
            measured = impulse_response(gru, x, step=50, horizon=int(8 / u)).tau
            row["feedback" if feedback else "measured"] = float(measured.nanmedian())
        row["relative_error"] = abs(row["measured"] - row["formula"]) / row["formula"]
        row["feedback_relative_error"] = abs(row["feedback"] - row["formula"]) / row["formula"]
        rows[str(u)] = row
    worst = max(r["relative_error"] for r in rows.values())
    figure, ax = plt.subplots(figsize=(5.5, 4))
    us = list(UPDATES)
    ax.loglog(us, [rows[str(u)]["formula"] for u in us], "k-", label="τ = −1/ln(1 − u)")
    ax.loglog(us, [1 / u for u in us], "k:", label="τ = 1/u (first order)")
    ax.loglog(us, [rows[str(u)]["measured"] for u in us], "o", label="measured, ñ reads x only")
    ax.loglog(us, [rows[str(u)]["feedback"] for u in us], "s", label="measured, ñ reads h too (W_hn random)")
    ax.set_xlabel("update gate u")
    ax.set_ylabel("memory timescale τ (steps)")
    ax.legend(fontsize=8)
    report = Report(
        name="timescale",
        claim="a unit whose update gate stays at u forgets a factor e in τ = −1/ln(1 − u) steps",
        criterion="with the candidate reading x only, measured τ within 5 % of the formula for "
                  "u = 0.5, 0.1, 0.05 and 0.01",
        measured="; ".join(f"u = {u}: τ {r['formula']:.2f} formula, {r['measured']:.2f} measured "
                           f"({100 * r['relative_error']:.1f} %), {r['feedback']:.2f} with feedback through ñ "
                           f"({100 * r['feedback_relative_error']:.0f} %), 1/u = {r['inverse_convention']:.0f}"
                           for u, r in rows.items()),
        verdict=verdict(worst <= 0.05),
        numbers={"rows": rows, "hidden": HIDDEN, "steps": steps},
    )
    return report, figure
