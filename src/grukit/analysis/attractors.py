"""Fixed and slow points of the step map, and their stability (Sussillo & Barak 2013, "Opening the
black box"; Golub & Sussillo's FixedPointFinder does the same for TensorFlow).

With the input held at x*, a state h* with F(h*, x*) = h* is a fixed point. They are found by
minimising the speed

    q(h) = ½ ‖F(h, x*) − h‖²

from many initial states (states the network visits on real inputs, plus noise), with Adam (its
learning rate halved every `decay_every` steps), then polished by Newton steps
h ← h − (J − I)⁻¹ (F(h) − h), each kept only where it lowers q. A
minimum with q < tolerance is a fixed point; a local minimum above it but below `slow_tolerance`
is a slow point (the dynamics crawl there: a ghost of a fixed point, or a line attractor). Found
points closer than `unique_distance` are one; points farther from the visited states' centre than
`outlier_distance` × the states' mean distance from it are dropped as outliers (FixedPointFinder's
rule). Each point's
Jacobian ∂F/∂h has eigenvalues λ: stable when every |λ| < 1 (an attractor, e.g. a memory of a
flip-flop), a saddle when some |λ| > 1 (the boundary between memories).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grukit.analysis.step_map import run_states, step_map, time_major, valid_steps
from grukit.errors import InputError


@dataclass(frozen=True)
class FixedPointConfig:
    initial_states: int = 256  # states sampled from the trajectories as starting points
    noise: float = 0.01  # std of the Gaussian noise added to each starting state
    iterations: int = 4000  # Adam steps at most
    learning_rate: float = 0.01
    decay_every: int = 500  # Adam steps between halvings of the learning rate
    newton_steps: int = 20  # polishing steps at the end
    tolerance: float = 1e-10  # q below this: a fixed point
    slow_tolerance: float = 1e-4  # q below this (and above tolerance): a slow point
    unique_distance: float = 1e-3  # points closer than this (Euclidean) are the same point
    outlier_distance: float = 10.0  # × the visited states' mean distance from their centre: farther is out
    seed: int = 0


@dataclass(frozen=True)
class FixedPoints:
    states: torch.Tensor  # (K, S)
    speed: torch.Tensor  # (K,) q at each point
    slow: torch.Tensor  # (K,) bool: a slow point, not a fixed point
    jacobians: torch.Tensor  # (K, S, S)
    eigenvalues: torch.Tensor  # (K, S) complex, by descending modulus

    @property
    def stable(self) -> torch.Tensor:
        """(K,) bool: every |λ| < 1."""
        return self.eigenvalues.abs().amax(dim=1) < 1

    @property
    def unstable_dimensions(self) -> torch.Tensor:
        """(K,) count of |λ| > 1: 0 attractor, 1 a saddle's single unstable direction, …"""
        return (self.eigenvalues.abs() > 1).sum(dim=1)


def fixed_points(model, inputs: torch.Tensor, *, constant_input: torch.Tensor | None = None,
                 config: FixedPointConfig = FixedPointConfig()) -> FixedPoints:
    """Fixed and slow points of a unidirectional GRU, RNN or LSTM under the constant input x*
    (default zeros: the network left alone), started from states visited on `inputs`."""
    step = step_map(model)
    raw = time_major(model, inputs)
    steps, batch, features = raw.shape
    x = step.drive(raw)
    generator = torch.Generator().manual_seed(config.seed)
    with torch.no_grad():
        visited = torch.cat(run_states(step, x, valid=valid_steps(None, steps, batch))[1:])  # (T·B, S)
    if constant_input is None:
        constant_input = torch.zeros(features, dtype=x.dtype)
    if constant_input.shape != (features,):
        raise InputError(f"constant_input must have shape ({features},), got {tuple(constant_input.shape)}")
    pick = torch.randint(len(visited), (config.initial_states,), generator=generator)
    start = visited[pick] + config.noise * torch.randn(config.initial_states, step.size, generator=generator,
                                                       dtype=x.dtype)
    held = step.drive(constant_input.to(x.dtype).expand(1, config.initial_states, features))[0]  # (K, D)
    states = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([states], lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=config.decay_every, gamma=0.5)
    with torch.enable_grad():
        for _ in range(config.iterations):
            optimiser.zero_grad()
            speed = 0.5 * (step(states, held) - states).pow(2).sum(dim=1)
            if bool((speed < config.tolerance).all()):
                break
            speed.sum().backward()
            optimiser.step()
            schedule.step()
    found = _newton_polish(step, states.detach(), held, steps=config.newton_steps)
    with torch.no_grad():
        speed = 0.5 * (step(found, held) - found).pow(2).sum(dim=1)
        keep = speed < config.slow_tolerance
        found, speed = found[keep], speed[keep]
        order = speed.argsort()  # the best of each cluster first
        found, speed = found[order], speed[order]
        chosen: list[int] = []
        for i in range(len(found)):
            if all(float((found[i] - found[j]).norm()) >= config.unique_distance for j in chosen):
                chosen.append(i)
        found, speed = found[chosen], speed[chosen]
        if len(found):
            centre = visited.mean(0)
            spread = (visited - centre).norm(dim=1).mean()  # the visited states' mean distance from their centre
            inside = (found - centre).norm(dim=1) <= config.outlier_distance * max(float(spread), 1e-12)
            found, speed = found[inside], speed[inside]
    jacobians = (_batched_jacobian(step, found, held[: len(found)]) if len(found)
                 else torch.empty(0, step.size, step.size, dtype=x.dtype))
    eigenvalues = torch.linalg.eigvals(jacobians) if len(found) else torch.empty(0, step.size, dtype=torch.cdouble)
    order = eigenvalues.abs().argsort(dim=1, descending=True)
    eigenvalues = eigenvalues.gather(1, order)
    return FixedPoints(found, speed, speed >= config.tolerance, jacobians.detach(), eigenvalues)


def _batched_jacobian(step, states: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """∂F/∂h at each of the states (N, S) → (N, S, S), one backward pass per state dimension."""
    leaf = states.detach().requires_grad_(True)
    with torch.enable_grad():
        image = step(leaf, held)
        rows = [torch.autograd.grad(image[:, i].sum(), leaf, retain_graph=True)[0] for i in range(leaf.shape[1])]
    return torch.stack(rows, dim=1)


def _newton_polish(step, states: torch.Tensor, held: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Newton steps on F(h) − h = 0, each kept per state only where it lowers q."""
    identity = torch.eye(states.shape[1], dtype=states.dtype, device=states.device)
    with torch.no_grad():
        residual = step(states, held) - states
    for _ in range(steps):
        jacobian = _batched_jacobian(step, states, held)
        try:
            move = torch.linalg.solve(jacobian - identity, residual[..., None])[..., 0]
        except RuntimeError:  # a singular J − I somewhere: keep what Adam found
            break
        with torch.no_grad():
            candidate = states - move
            candidate_residual = step(candidate, held) - candidate
            better = (candidate_residual.pow(2).sum(1) < residual.pow(2).sum(1)) & torch.isfinite(candidate).all(1)
            states = torch.where(better[:, None], candidate, states)
            residual = torch.where(better[:, None], candidate_residual, residual)
        if not bool(better.any()):
            break
    return states


def plot_fixed_points(points: FixedPoints, *, visited: torch.Tensor | None = None, ax=None):
    """Fixed points on the first two principal components of the visited states (or of the points):
    filled for stable, open for unstable, crosses for slow points."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    basis_from = visited if visited is not None else points.states
    centre = basis_from.mean(0)
    _, _, v = torch.linalg.svd(basis_from - centre, full_matrices=False)
    project = lambda s: ((s - centre) @ v[:2].T).numpy()  # noqa: E731 - (N, S) → (N, 2)
    if visited is not None:
        ax.scatter(*project(visited).T, s=2, color="lightgrey", label="visited states")
    fixed, slow = ~points.slow, points.slow
    groups = ((fixed & points.stable, dict(s=40, color="black", label="stable fixed point")),
              (fixed & ~points.stable, dict(s=40, facecolors="none", edgecolors="red", label="unstable fixed point")),
              (slow, dict(s=30, marker="x", color="tab:orange", label="slow point")))
    for chosen, style in groups:
        if chosen.any():
            ax.scatter(*project(points.states[chosen]).T, **style)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=8, framealpha=0.6, loc="best")
    return ax
