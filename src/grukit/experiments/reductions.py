"""The GRU's reductions, each checked in float64: a vanilla RNN, exponential smoothing, a residual step.

  * u ≡ 1, r ≡ 1 (gates pinned through their biases): grukit's GRU against torch.nn.RNN (tanh) with
    the candidate's weights, 2 layers, on the same inputs and initial state;
  * constant u = α, candidate ñ = x: the GRU interpolation against statsmodels'
    SimpleExpSmoothing level, for α ∈ {0.05, 0.3, 0.9};
  * h_t = h_{t−1} + u_t ⊙ (ñ_t − h_{t−1}) on a default GRU's own gates and candidates.
"""

from __future__ import annotations

import numpy as np
import torch

from grukit.analysis.reductions import exponential_smoothing, gru_as_rnn, residual_form_error
from grukit.experiments.report import Report, verdict
from grukit.nn.gru import GRU

TOLERANCE = 1e-10


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt
    from statsmodels.tsa.holtwinters import SimpleExpSmoothing

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    gru = GRU(3, 16, 2, dtype=torch.float64)
    rnn = gru_as_rnn(gru)
    x = torch.randn(50, 4, 3, dtype=torch.float64, generator=generator)
    hx = torch.randn(2, 4, 16, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        rnn_error = float((gru(x, hx)[0] - rnn(x, hx)[0]).abs().max())

    rng = np.random.default_rng(seed)
    series = 10 + np.cumsum(rng.standard_normal(300))
    smoothing_errors, curves = {}, {}
    for alpha in (0.05, 0.3, 0.9):
        ses = SimpleExpSmoothing(series, initialization_method="known", initial_level=float(series[0])).fit(
            smoothing_level=alpha, optimized=False).level
        levels = exponential_smoothing(series, alpha=alpha, initial=float(series[0]))
        smoothing_errors[str(alpha)] = float(np.abs(levels - ses).max())
        curves[alpha] = levels
    residual_error = residual_form_error(GRU(3, 16, dtype=torch.float64), x)
    worst = max(rnn_error, residual_error, *smoothing_errors.values())

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(series, color="lightgrey", label="series")
    for alpha, levels in curves.items():
        left.plot(levels, label=f"GRU, u = {alpha}")
    left.set_xlabel("step")
    left.set_title("constant update gate = exponential smoothing")
    left.legend(fontsize=8)
    names = ["vanilla RNN", *(f"smoothing α={a}" for a in smoothing_errors), "residual step"]
    errors = [rnn_error, *smoothing_errors.values(), residual_error]
    right.barh(names, [max(e, 1e-18) for e in errors])
    right.set_xscale("log")
    right.axvline(TOLERANCE, color="red", linewidth=0.8, label="criterion 1e-10")
    right.set_xlabel("max |difference| (float64)")
    right.legend()
    figure.tight_layout()
    report = Report(
        name="reductions",
        claim="with u ≡ 1 and r ≡ 1 the GRU is a vanilla RNN; with constant u and ñ = x it is exponential "
              "smoothing with α = u; its update is the residual step h + u ⊙ (ñ − h)",
        criterion=f"each reduction exact to {TOLERANCE:g} in float64",
        measured=f"vanilla RNN {rnn_error:.1e}, exponential smoothing ≤ {max(smoothing_errors.values()):.1e}, "
                 f"residual step {residual_error:.1e}",
        verdict=verdict(worst <= TOLERANCE),
        numbers={"vanilla_rnn": rnn_error, "exponential_smoothing": smoothing_errors, "residual_step": residual_error},
    )
    return report, figure
