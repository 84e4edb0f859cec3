"""`grukit inspect RUN_DIR`: what a trained model's gates do, as pictures and one HTML report.

For a run of `grukit train` (GRU, LSTM, RNN or the GRU-D family) on a few test sequences of its
own task (or on --data, a CSV the task's reader takes):

    gates.png        heatmaps of each gate (units × steps) for the first sequences
    saturation.png   per unit, fraction of steps left- against right-saturated (Karpathy et al. 2015)
    timescales.png   histogram of τ = −1/ln(1 − ū) over units (GRU, GRU-D)
    gradient.png     ‖∂L/∂h_t‖ against T − t, L = Σ h_T (unidirectional GRU, LSTM, RNN; GRU-D)
    decays.png       GRU-D: γ_x and γ_h against the gap δ
    report.html      all of them, images embedded (base64): one file that opens in any browser

Every image is written atomically; an existing output directory's files are replaced only with
overwrite.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from grukit.analysis import (
    gate_statistics,
    gradient_flow,
    memory_timescales,
    plot_gradient_flow,
    plot_saturation,
    plot_timescales,
)
from grukit.analysis.step_map import float64_copy
from grukit.errors import InputError
from grukit.io.atomic import write_atomic, write_text_atomic
from grukit.nn.grud import GRUD
from grukit.training.runs import load_run

SEQUENCES = 3  # test sequences shown in the heatmaps
PROBE = 32  # test sequences the statistics are computed on


@dataclass(frozen=True)
class Figure:
    name: str  # file stem
    title: str
    caption: str
    png: bytes


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _gate_heatmaps(trace, lengths) -> Figure:
    import matplotlib.pyplot as plt

    names = [n for n in ("reset", "update", "input", "forget", "output") if hasattr(trace, n)]
    shown = min(SEQUENCES, getattr(trace, names[0]).shape[1])
    figure, axes = plt.subplots(len(names), shown, figsize=(4.2 * shown, 2.6 * len(names)), squeeze=False,
                                layout="constrained")
    for row, name in enumerate(names):
        for column in range(shown):
            length = int(lengths[column]) if lengths is not None else None
            values = getattr(trace, name)[0, column, :length].T.numpy()  # (H, T)
            image = axes[row][column].imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                                             interpolation="nearest")
            axes[row][column].set_title(f"{name} gate, sequence {column}", fontsize=9)
            axes[row][column].set_xlabel("step t", fontsize=8)
            axes[row][column].set_ylabel("unit", fontsize=8)
        figure.colorbar(image, ax=list(axes[row]), fraction=0.02)
    return Figure("gates", "Gates over time", "Each gate's value per unit (rows) and step (columns), first layer, "
                  "for the first test sequences. 0 = closed, 1 = open.", _png(figure))


def _saturation(trace) -> Figure:
    import matplotlib.pyplot as plt

    statistics = gate_statistics(trace)
    names = list(statistics.left_saturated)
    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        plot_saturation(statistics, gate=name, ax=ax)
        ax.set_title(name, fontsize=9)
    figure.tight_layout()
    return Figure("saturation", "Saturation per unit",
                  "For each unit, the fraction of steps its gate is nearly closed (< 0.1, x) and nearly open "
                  "(> 0.9, y), after Karpathy, Johnson & Fei-Fei (2015). Units near (1, 0) integrate; near "
                  "(0, 1) they follow their input.", _png(figure))


def _timescales(trace) -> Figure:
    import matplotlib.pyplot as plt

    scales = memory_timescales(trace)
    figure, ax = plt.subplots(figsize=(5.5, 3.5))
    plot_timescales(scales, ax=ax)
    return Figure("timescales", "Memory timescales",
                  "τ = −1/ln(1 − ū) per unit, ū its update gate averaged over the probe sequences: the steps over "
                  "which the unit forgets a factor e. Median τ "
                  f"{float(scales.tau[torch.isfinite(scales.tau)].median()):.1f} steps.", _png(figure))


def _gradient(module, features, lengths) -> Figure:
    import matplotlib.pyplot as plt

    flow = gradient_flow(module, features.double(), lengths=lengths, state_jacobian=False)
    figure, ax = plt.subplots(figsize=(5.5, 3.5))
    plot_gradient_flow(flow, ax=ax)
    return Figure("gradient", "Gradient flow through time",
                  "‖∂L/∂h_t‖ against the distance from each sequence's last step, L = Σ h_T (median and 10th–90th "
                  "percentile over the probe sequences, float64): how much of a loss at the end reaches earlier "
                  "steps.", _png(figure))


def _decays(module: GRUD, gaps: torch.Tensor) -> Figure:
    import matplotlib.pyplot as plt

    largest = float(gaps.max()) if gaps.numel() else 1.0
    delta = torch.linspace(0, max(largest, 1e-6), 200)
    with torch.no_grad():
        gamma_x, gamma_h = module.decays(delta[:, None].expand(-1, module.input_size).to(module.weight_ih.dtype))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for v in range(module.input_size):
        left.plot(delta, gamma_x[:, v], label=f"variable {v}" if module.input_size <= 10 else None)
    left.set_xlabel("gap δ since the variable was last observed")
    left.set_ylabel("input decay γ_x")
    left.set_ylim(-0.02, 1.02)
    if module.input_size <= 10:
        left.legend(fontsize=7)
    right.plot(delta, gamma_h, color="tab:blue", alpha=0.25)
    right.plot(delta, gamma_h.mean(1), color="black", label="mean over units")
    right.set_xlabel("gap δ (the same for every variable)")
    right.set_ylabel("hidden decay γ_h")
    right.set_ylim(-0.02, 1.02)
    right.legend()
    figure.tight_layout()
    return Figure("decays", "GRU-D decays",
                  "γ_x: how much of a variable's last observation is kept, against the time since it was seen "
                  "(the rest moves toward the training mean); γ_h: how much of the state is kept.", _png(figure))


def _page(run_dir: Path, description: str, figures: list[Figure], notes: list[str]) -> str:
    sections = "\n".join(
        f'<section><h2>{html.escape(f.title)}</h2><p>{html.escape(f.caption)}</p>'
        f'<img alt="{html.escape(f.title)}" src="data:image/png;base64,{base64.b64encode(f.png).decode()}">'
        f"</section>" for f in figures)
    listed = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>grukit inspect: {html.escape(run_dir.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
img{{max-width:100%;border:1px solid #ddd}}section{{margin-bottom:2.5em}}</style></head>
<body data-images-loaded="0"><h1>{html.escape(run_dir.name)}</h1><p>{html.escape(description)}</p>
{f"<ul>{listed}</ul>" if notes else ""}
{sections}
<script>/* count the images that decoded to a non-empty picture (read by grukit's browser test) */
window.addEventListener("load", () => {{
  const shown = [...document.images].filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  document.body.dataset.imagesLoaded = String(shown.length);
}});</script>
</body></html>
"""


def inspect_run(run_dir, *, data=None, out_dir=None, overwrite: bool = False) -> list[Path]:
    """Write the pictures and report.html of a trained run into out_dir (default RUN_DIR/inspect),
    on the first test sequences of its task, or on the first sequences of the CSV file `data` (a run
    trained on a file: the other file is read in the same layout and prepared with the run's
    training statistics)."""
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.directory / "inspect"
    if (out / "report.html").exists() and not overwrite:
        raise InputError(f"{out / 'report.html'} exists; pass --overwrite to replace it")
    if data is None:
        built = run.task.build(seed=run.seed)
        sequences, description = built.test, built.description
    elif hasattr(run.task, "read_other"):
        sequences, description = run.task.read_other(data, seed=run.seed)
    else:
        raise InputError(f"--data reads a file in the layout the run was trained on; this run's {run.task.name} task "
                         "generates its data (train on your file with `grukit train --data FILE`)")
    test = sequences.subset(torch.arange(min(PROBE, len(sequences))))
    model = run.model
    trace = model.gate_trace(test.inputs, test.lengths)
    figures, notes = [], []
    cell = run.settings["model"]["cell"]
    if trace is None:
        notes.append(f"the {cell} model has no gates: only its gradient flow is shown")
    else:
        figures += [_gate_heatmaps(trace, test.lengths), _saturation(trace)]
        if hasattr(trace, "update"):
            figures.append(_timescales(trace))
    module = model.recurrent
    if isinstance(module, GRUD) or not module.bidirectional:
        figures.append(_gradient(float64_copy(module), model.features(test.inputs).double(), test.lengths))
    else:
        notes.append("gradient flow is shown for unidirectional models only (a reverse direction reads the future)")
    if isinstance(module, GRUD):
        gaps = model.features(test.inputs).chunk(3, dim=-1)[2]
        figures.append(_decays(module, gaps))
    written = []
    for figure in figures:
        written.append(write_atomic(out / f"{figure.name}.png", lambda s, f=figure: s.write(f.png), mode="wb"))
    written.append(write_text_atomic(out / "report.html", _page(run.directory, description, figures, notes)))
    return written
