"""Static attributes of a panel's series as model inputs: a number standardised over the series, a
category one-hot.

A static column whose every value reads as a number is one input, (value − mean) / std over the
panel's series (std 0: 1); any other is a category, one input per value seen (sorted), 1 for the
series' own and 0 for the others. Every step of a series' windows carries the same vector, so one
GRU trained on the whole panel can tell a large store from a small one, or the north from the south.
"""

from __future__ import annotations

import numpy as np

from grukit.errors import InputError


def static_encoding(attributes: dict[str, dict[str, str]], columns: tuple[str, ...]) -> dict:
    """{column: {"mean", "std"} for a numeric column | {"categories": [...]}} fitted on the panel's
    `attributes` {series: {column: value}}, JSON-ready."""
    encoding = {}
    for column in columns:
        values = [attributes[name][column] for name in attributes]
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers):
            std = float(np.std(numbers))
            encoding[column] = {"mean": float(np.mean(numbers)), "std": std if std > 0 else 1.0}
        else:
            encoding[column] = {"categories": sorted(set(values))}
    return encoding


def encode_static(values: dict[str, str], encoding: dict, *, where: str) -> np.ndarray:
    """(S,) the inputs of one series' static `values` {column: value} under `encoding`."""
    parts = []
    for column, rule in encoding.items():
        value = values[column]
        if "categories" in rule:
            if value not in rule["categories"]:
                raise InputError(f"{where}: static column {column!r} has the value {value!r}, which the model never "
                                 f"saw (it knows {', '.join(map(repr, rule['categories']))})")
            parts.append(np.array([float(value == c) for c in rule["categories"]]))
        else:
            number = _number(value)
            if number is None:
                raise InputError(f"{where}: static column {column!r} has {value!r}, not the number it was trained on")
            parts.append(np.array([(number - rule["mean"]) / rule["std"]]))
    return np.concatenate(parts) if parts else np.zeros(0)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None
