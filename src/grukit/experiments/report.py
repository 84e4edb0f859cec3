"""What an experiment gives back: the claim, what was measured, the criterion, and the verdict.

Every experiment writes NAME.json (the report and every number it measured) and NAME.png (its
figure) into the output directory, each atomically. A verdict is PASS or FAIL as measured; a
FAIL is a result, reported as such.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from grukit.io.atomic import write_atomic, write_text_atomic

Verdict = Literal["PASS", "FAIL"]


@dataclass(frozen=True)
class Report:
    name: str  # the experiment's name
    claim: str  # what the articles say, in a sentence
    criterion: str  # what has to hold for PASS, with its numbers
    measured: str  # the headline figure, in a sentence
    verdict: Verdict
    numbers: dict = field(default_factory=dict)  # every figure measured, JSON-ready
    seconds: float = 0.0  # wall time of the run
    quick: bool = False  # run at --quick size
    files: tuple[str, ...] = ()  # written files, relative to the output directory

    def lines(self) -> list[str]:
        return [f"{self.name}: {self.verdict}", f"  claim     {self.claim}", f"  measured  {self.measured}",
                f"  criterion {self.criterion}"]


def verdict(passed: bool) -> Verdict:
    return "PASS" if passed else "FAIL"


def _clean(value):
    """JSON-ready: tensors and arrays as lists, non-finite floats as strings."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_report(report: Report, figure, out_dir) -> Report:
    """NAME.png from the matplotlib figure and NAME.json from the report, atomically; returns the
    report with its files listed."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    png, numbers = f"{report.name}.png", f"{report.name}.json"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    write_atomic(out / png, lambda stream: stream.write(buffer.getvalue()), mode="wb")
    final = Report(**{**asdict(report), "files": (png, numbers)})
    write_text_atomic(out / numbers, json.dumps(_clean(asdict(final)), indent=2, ensure_ascii=False) + "\n")
    return final


def docs_page(reports: list[Report], *, command: str) -> str:
    """The experiments page of the docs: every report's claim, figure and verdict as measured."""
    passed = sum(r.verdict == "PASS" for r in reports)
    sizes = {r.quick for r in reports}
    lines = [
        "# Experiments",
        "",
        "Each experiment measures one claim of the GRU literature on a model built or trained by grukit, and",
        "reports PASS or FAIL against a criterion fixed in its code before it runs. A FAIL is a finding, not",
        "an error: it is shown here as measured. This page is written by",
        "",
        "```bash",
        command,
        "```",
        "",
        "(`grukit experiment NAME --write-docs` reruns one and updates its section.)",
        "",
        f"{passed} of {len(reports)} passed" + (" (at `--quick` size: a few minutes each on two cores)."
                                               if sizes == {True} else " (some at `--quick` size)."
                                               if len(sizes) > 1 else "."),
        "",
        "| experiment | verdict | measured | seconds |",
        "|---|---|---|---:|",
    ]
    lines += [f"| [{r.name}](#{r.name}) | {r.verdict} | {r.measured.replace('|', '/')} | {r.seconds:.0f} |"
              for r in reports]
    for r in reports:
        lines += ["", f"## {r.name}", "", f"**Claim.** {r.claim}", "", f"**Criterion.** {r.criterion}", "",
                  f"**Measured.** {r.measured}", "", f"**Verdict: {r.verdict}**", "",
                  f"![{r.name}](experiments/{r.name}.png)"]
    return "\n".join(lines) + "\n"
