"""Step Jacobians and gradient flow through time: the update gate as a gradient highway.

    J_t = ∂s_t/∂s_{t−1}                         (B, T, S, S), s the whole state (`step_map`)
    ∂s_T/∂s_t = J_T J_{T−1} ⋯ J_{t+1}            the product that vanishes or explodes
    ‖∂L/∂h_t‖                                     the gradient a loss at the end sends back to step t

For a GRU with h' = (1 − u) ⊙ h + u ⊙ ñ, J_t = diag(1 − u) + diag(u) ∂ñ/∂h + (terms through the
gates), so as u → 0 the Jacobian tends to the identity and gradients pass unchanged through any
number of steps; for the tanh RNN, J_t = diag(1 − h_t²) W_hh, whose products shrink geometrically
when ‖W_hh‖ < 1. Both quantities are computed by autograd through the module's own backward, so
every backend gives the same numbers (reference, torch, fused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from grukit.analysis.step_map import gate_trace, run_states, step_map, time_major, valid_steps


@dataclass(frozen=True)
class StepJacobians:
    """J_t = ∂s_t/∂s_{t−1} for t = 1 … T, with what is read off them."""

    jacobians: torch.Tensor  # (B, T, S, S)
    singular_values: torch.Tensor  # (B, T, S), descending
    distance_from_identity: torch.Tensor  # (B, T): spectral norm ‖J_t − I‖₂
    mean_update: torch.Tensor | None  # (B, T): the GRU's update gate u = 1 − z averaged over units; else None


def step_jacobians(model, inputs: torch.Tensor, *, lengths: torch.Tensor | None = None) -> StepJacobians:
    """J_t of a unidirectional GRU, RNN or LSTM on `inputs` (the module's layout), one row per
    backward pass of the step (S passes a step). Steps past a sequence's length give J = I."""
    step = step_map(model)
    x = step.drive(time_major(model, inputs))
    steps, batch = x.shape[0], x.shape[1]
    valid = valid_steps(lengths, steps, batch)
    states = run_states(step, x, valid=valid)
    rows = []
    for t in range(steps):
        previous = states[t].detach().requires_grad_(True)
        with torch.enable_grad():
            current = step(previous, x[t])
            grads = [torch.autograd.grad(current[:, i].sum(), previous, retain_graph=True)[0]
                     for i in range(step.size)]
        jacobian = torch.stack(grads, dim=1)  # (B, S, S): row i = ∂s_t[i]/∂s_{t−1}
        identity = torch.eye(step.size, dtype=jacobian.dtype, device=jacobian.device).expand_as(jacobian)
        rows.append(torch.where(valid[t, :, None, None].to(jacobian.device), jacobian, identity))
    jacobians = torch.stack(rows, dim=1)  # (B, T, S, S)
    identity = torch.eye(step.size, dtype=jacobians.dtype, device=jacobians.device)
    trace = gate_trace(model, inputs, lengths=lengths)
    mean_update = None if not hasattr(trace, "update") else trace.update.nanmean(dim=(0, 3))  # (B, T)
    return StepJacobians(
        jacobians=jacobians.detach(),
        singular_values=torch.linalg.svdvals(jacobians).detach(),
        distance_from_identity=torch.linalg.matrix_norm(jacobians - identity, ord=2).detach(),
        mean_update=mean_update,
    )


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norms against the distance d = T_b − t from each sequence's last valid step T_b."""

    distance: torch.Tensor  # (T,) 0 … T−1
    loss_gradient: torch.Tensor  # (L, B, T): ‖∂L/∂h_t‖ per layer, indexed by distance (NaN past a length)
    state_jacobian: torch.Tensor  # (L, B, T): ‖∂h_T/∂h_t‖₂ per layer (its own block), by distance

    def summary(self, which: str = "loss_gradient") -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) over the batch, each (L, T), ignoring NaN."""
        values = getattr(self, which)
        mean = values.nanmean(dim=1)
        spread = (values - mean[:, None]).pow(2).nanmean(dim=1).sqrt()
        return mean, spread


def _final_sum(output: torch.Tensor, final: torch.Tensor) -> torch.Tensor:
    return final.sum()


def gradient_flow(model, inputs: torch.Tensor, *, lengths: torch.Tensor | None = None,
                  loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  state_jacobian: bool = True) -> GradientFlow:
    """‖∂L/∂h_t‖ and ‖∂h_T/∂h_t‖ against T − t for each layer of a unidirectional GRU, RNN or LSTM.

    loss(output, final) → scalar, with output (T, B, H) the top layer's states (zeros past a length,
    as the forward contract gives them) and final (B, H) the top layer's state at each sequence's last
    valid step; default L = Σ final (every unit of h_T pulls with weight 1).
    ∂h_T/∂h_t is the layer's own block of the product of step Jacobians, its spectral norm;
    state_jacobian=False leaves it NaN and skips the S backward passes a step it costs (long sequences).
    """
    step = step_map(model)
    x = step.drive(time_major(model, inputs))
    steps, batch = x.shape[0], x.shape[1]
    valid = valid_steps(lengths, steps, batch)
    top = step.layer_slice(step.layers - 1)
    with torch.enable_grad():
        states = run_states(step, x, valid=valid, keep_graph=True)
        output = torch.stack([s[:, top] for s in states[1:]]) * valid[..., None].to(x.dtype)
        value = (loss or _final_sum)(output, states[-1][:, top])
        value.backward()
    lengths_b = valid.sum(0)  # (B,)
    loss_gradient = torch.full((step.layers, batch, steps), float("nan"), dtype=x.dtype)
    jacobian_norm = torch.full_like(loss_gradient, float("nan"))
    jac = step_jacobians(model, inputs, lengths=lengths).jacobians if state_jacobian else None  # (B, T, S, S)
    for b in range(batch):
        last = int(lengths_b[b])  # h at step `last` is s_last (1-based steps; s_0 the initial state)
        product = torch.eye(step.size, dtype=x.dtype)
        for t in range(last, 0, -1):  # s_t for t = last … 1, distance last − t
            distance = last - t
            for layer in range(step.layers):
                where = step.layer_slice(layer)
                loss_gradient[layer, b, distance] = states[t].grad[b, where].norm()
                if jac is not None:
                    jacobian_norm[layer, b, distance] = torch.linalg.matrix_norm(product[where, where], ord=2)
            if jac is not None:
                product = product @ jac[b, t - 1]  # ∂s_last/∂s_{t−1} = (∂s_last/∂s_t) J_t
    return GradientFlow(torch.arange(steps), loss_gradient, jacobian_norm)


def plot_gradient_flow(flow: GradientFlow, *, ax=None, which: str = "loss_gradient", label: str | None = None):
    """The median over the batch of ‖∂L/∂h_t‖ (or ‖∂h_T/∂h_t‖) against T − t with the band from the
    10th to the 90th percentile, log scale, one line a layer (a mean ± std band would cross zero on a
    log axis wherever the sequences differ by orders of magnitude)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    values = getattr(flow, which)  # (L, B, T)
    low, median, high = (values.nanquantile(q, dim=1) for q in (0.1, 0.5, 0.9))
    for layer in range(values.shape[0]):
        name = label or ("‖∂L/∂h_t‖" if which == "loss_gradient" else "‖∂h_T/∂h_t‖")
        shown = f"{name}, layer {layer}" if values.shape[0] > 1 else name
        line = ax.plot(flow.distance, median[layer], label=f"{shown} (median)")[0]
        ax.fill_between(flow.distance, low[layer], high[layer], color=line.get_color(), alpha=0.2,
                        label="10th–90th percentile" if layer == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("distance T − t (steps)")
    ax.set_ylabel("gradient norm")
    ax.legend()
    return ax


def plot_step_jacobians(result: StepJacobians, *, ax=None):
    """‖J_t − I‖₂ against the mean update gate, one point per step and sequence."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    if result.mean_update is None:
        ax.hist(result.distance_from_identity.flatten(), bins=40)
        ax.set_xlabel("‖J_t − I‖₂")
        return ax
    ax.scatter(result.mean_update.flatten(), result.distance_from_identity.flatten(), s=6, alpha=0.5)
    ax.set_xlabel("mean update gate u")
    ax.set_ylabel("‖J_t − I‖₂")
    return ax
