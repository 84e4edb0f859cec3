"""What the gates do over time: saturation per unit and events at single steps.

Saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks",
their fig. 3 scatter): for each unit, the fraction of steps its gate is left-saturated (< 0.1,
nearly closed) and right-saturated (> 0.9, nearly open). A unit with the update gate mostly
left-saturated is an integrator (long memory); mostly right-saturated, it follows its input.

Events: for each sequence and unit, a gate's baseline is its median over the sequence and its
spread the median absolute deviation (× 1.4826, the normal-consistent scale). A step's score is
the mean over units of (g_t − median) / spread; a reset event is a step whose reset score is below
−threshold (the reset gate drops: the past is being shut out, as at a context break), an update
event a step whose update score is above +threshold (the update gate spikes: the state is
rewritten, as at punctuation or a regime shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grukit.errors import InputError

LOW, HIGH = 0.1, 0.9  # saturation thresholds
MAD_SCALE = 1.4826  # MAD × this estimates a normal distribution's standard deviation


GATES = ("reset", "update", "input", "forget", "output")  # the GRU's (and GRU-D's), the LSTM's


def _gates(trace, names=GATES) -> dict[str, torch.Tensor]:
    found = {n: getattr(trace, n) for n in names if hasattr(trace, n)}
    if not found:
        raise InputError(f"a {type(trace).__name__} has none of the gates {', '.join(names)}")
    return found


@dataclass(frozen=True)
class GateStatistics:
    """Per gate name ("reset", "update"; the LSTM's "input", "forget", "output"): fractions (L·D, H)
    and per-step means (L·D, B, T)."""

    left_saturated: dict[str, torch.Tensor]  # fraction of valid steps with g < 0.1
    right_saturated: dict[str, torch.Tensor]  # fraction with g > 0.9
    step_mean: dict[str, torch.Tensor]  # mean over units at each step (NaN at padding)


def gate_statistics(trace) -> GateStatistics:
    """Saturation fractions and per-step means of every gate of a trace (L·D, B, T, H): reset and update
    (GRU, GRU-D), input, forget and output (LSTM)."""
    left, right, means = {}, {}, {}
    for name, gate in _gates(trace).items():
        valid = ~torch.isnan(gate)
        count = valid.sum(dim=(1, 2)).clamp_min(1)
        left[name] = ((gate < LOW) & valid).sum(dim=(1, 2)) / count
        right[name] = ((gate > HIGH) & valid).sum(dim=(1, 2)) / count
        means[name] = gate.nanmean(dim=3)
    return GateStatistics(left, right, means)


@dataclass(frozen=True)
class GateEvent:
    gate: str  # "reset" (a drop) or "update" (a spike)
    layer: int  # layer·direction index
    sequence: int  # b
    step: int  # t
    score: float  # mean robust z-score over units


def gate_scores(trace) -> dict[str, torch.Tensor]:
    """Per gate, the step score (L·D, B, T): mean over units of (g_t − median_t g) / (1.4826 MAD)."""
    scores = {}
    for name, gate in _gates(trace, ("reset", "update")).items():
        median = gate.nanmedian(dim=2, keepdim=True).values  # (L·D, B, 1, H)
        spread = (gate - median).abs().nanmedian(dim=2, keepdim=True).values * MAD_SCALE
        spread = spread.clamp_min(1e-6)
        scores[name] = ((gate - median) / spread).nanmean(dim=3)
    return scores


def gate_events(trace, *, threshold: float = 3.0) -> list[GateEvent]:
    """Steps where the reset gate drops below, or the update gate rises above, its baseline by
    more than `threshold` robust standard deviations (mean over units); sorted by |score|."""
    if not threshold > 0:
        raise InputError(f"threshold must be positive, got {threshold!r}")
    events = []
    for name, score in gate_scores(trace).items():
        hits = score < -threshold if name == "reset" else score > threshold
        for layer, sequence, step in hits.nonzero().tolist():
            events.append(GateEvent(name, layer, sequence, step, float(score[layer, sequence, step])))
    return sorted(events, key=lambda e: -abs(e.score))


def plot_saturation(statistics: GateStatistics, *, gate: str = "update", ax=None):
    """Karpathy et al.'s scatter: per unit, fraction right-saturated against fraction left-saturated."""
    import matplotlib.pyplot as plt

    if gate not in statistics.left_saturated:
        raise InputError(f"no {gate!r} gate in these statistics; they have {sorted(statistics.left_saturated)}")
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    left, right = statistics.left_saturated[gate], statistics.right_saturated[gate]
    for row in range(left.shape[0]):
        ax.scatter(left[row], right[row], s=12, alpha=0.7, label=f"layer·dir {row}")
    ax.plot([0, 1], [1, 0], color="grey", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"fraction left-saturated ({gate} < {LOW})")
    ax.set_ylabel(f"fraction right-saturated ({gate} > {HIGH})")
    if left.shape[0] > 1:
        ax.legend()
    return ax


def plot_gates(trace, *, gate: str = "update", sequence: int = 0, layer: int = 0, ax=None, labels=None):
    """Heatmap of one gate of one sequence and layer: units × steps, values in [0, 1]."""
    import matplotlib.pyplot as plt

    values = getattr(trace, gate, None)
    if values is None:
        raise InputError(f"a {type(trace).__name__} has no {gate!r} gate")
    ax = ax or plt.subplots(figsize=(8, 3))[1]
    image = ax.imshow(values[layer, sequence].T.detach().numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                      interpolation="nearest")
    ax.set_xlabel("step t")
    ax.set_ylabel("unit")
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels=list(labels), fontsize=6)
    ax.figure.colorbar(image, ax=ax, label=gate)
    return ax
