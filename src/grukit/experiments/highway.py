"""The update gate as a gradient highway.

With h' = (1 − u) ⊙ h + u ⊙ ñ, the step Jacobian is diag(1 − u) plus terms scaled by u, so as
u → 0 it tends to the identity and ∂L/∂h_t reaches any distance undiminished; as u → 1 the GRU
is the vanilla RNN on its candidate weights (reset gate open), and its gradient decays as the
RNN's does. The gates are pinned through their biases (weights left as initialised, so the
state still enters every gate and the candidate), on a GRU of 32 units reading random inputs.
"""

from __future__ import annotations

import math

import torch

from grukit.analysis import gradient_flow, step_jacobians
from grukit.experiments.report import Report, verdict
from grukit.nn.gru import GRU

HIDDEN = 32


def pinned_gru(update_bias: float, *, seed: int) -> GRU:
    """A default-initialised GRU (float64) whose keep gate's bias is −update_bias: u = σ(update_bias + …)."""
    torch.manual_seed(seed)
    gru = GRU(4, HIDDEN, dtype=torch.float64)
    with torch.no_grad():
        gru.bias_ih_l0[HIDDEN : 2 * HIDDEN] = -update_bias  # z = σ(−b): u = 1 − z = σ(b)
        gru.bias_hh_l0[HIDDEN : 2 * HIDDEN] = 0.0
        gru.bias_ih_l0[:HIDDEN] = update_bias  # the reset gate opens with u → 1 (the RNN's case)
    return gru


def surviving(gru: GRU, steps: int, *, seed: int) -> torch.Tensor:
    """‖∂L/∂h_{T−d}‖ / ‖∂L/∂h_T‖ for d = 0 … steps−1, L = Σ h_T, batch mean."""
    x = torch.randn(steps, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    flow = gradient_flow(gru, x, state_jacobian=False).loss_gradient[0]  # (B, T) by distance
    return (flow / flow[:, :1]).mean(0)


def run(*, quick: bool, seed: int, work_dir):
    import matplotlib.pyplot as plt

    steps = 1000
    closed, open_ = pinned_gru(-20.0, seed=seed), pinned_gru(20.0, seed=seed)  # u = σ(∓20) ≈ 2e−9, 1 − 2e−9
    x = torch.randn(50, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    distance = float(step_jacobians(closed, x).distance_from_identity.max())
    keep_closed = surviving(closed, steps, seed=seed)
    keep_open = surviving(open_, 100, seed=seed)
    survived = float(keep_closed[-1])
    decayed = float(keep_open[-1])
    passed = distance <= 1e-3 and survived >= 0.9 and decayed <= 1e-6
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.semilogy(range(steps), keep_closed.clamp_min(1e-300), label="u → 0 (update bias −20)")
    left.semilogy(range(100), keep_open.clamp_min(1e-300), label="u → 1 (update bias +20)")
    left.set_xlabel("distance T − t (steps)")
    left.set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    left.set_title("gradient reaching step t")
    left.legend()
    right.hist(step_jacobians(closed, x).distance_from_identity.flatten().numpy(), bins=30)
    right.set_xlabel("‖J_t − I‖₂ with u → 0")
    right.set_title("step Jacobians are the identity")
    figure.tight_layout()
    report = Report(
        name="highway",
        claim="as the update gate u → 0 the step Jacobian tends to I and gradients pass through any number "
              "of steps; as u → 1 they decay as in a vanilla RNN",
        criterion="u → 0: max ‖J_t − I‖₂ ≤ 1e-3 and ≥ 90 % of the gradient left after 1,000 steps; "
                  "u → 1: ≤ 1e-6 left after 100 steps",
        measured=f"u → 0: max ‖J_t − I‖₂ = {distance:.1e}, {100 * survived:.1f} % of the gradient left at "
                 f"distance 999; u → 1: {decayed:.1e} left at distance 99 "
                 f"({math.log10(max(decayed, 1e-300)):.0f} orders of magnitude)",
        verdict=verdict(passed),
        numbers={"max_distance_from_identity": distance, "surviving_u_to_0": keep_closed.tolist(),
                 "surviving_u_to_1": keep_open.tolist(), "hidden": HIDDEN},
    )
    return report, figure
