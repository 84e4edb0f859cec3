"""The error grukit raises for bad input, and the argument checks every layer shares.

Torch-free, so readers of users' files and the command line can check before torch loads.
"""

from __future__ import annotations

from collections.abc import Iterable


class InputError(ValueError):
    """Bad input to a grukit module or command: the message names the problem."""


def check_positive(**values: object) -> None:
    """Each keyword's value must be an int ≥ 1 (a bool is not); the error names the keyword.

    >>> check_positive(hidden_size=0)
    Traceback (most recent call last):
    ...
    grukit.errors.InputError: hidden_size must be a positive integer, got 0
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """`value` must be one of `choices`; the error names the argument and lists the choices."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {listed}, got {value!r}")
