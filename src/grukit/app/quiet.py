"""Quiet default output: the libraries' own lines hidden while a command runs (torch-free, so a
command can read and check its input under it before torch is imported)."""

from __future__ import annotations

import contextlib
import logging
import warnings


@contextlib.contextmanager
def quiet_libraries():
    """Within the block, the libraries' log lines up to WARNING (Lightning's accelerators found, tips,
    why `fit` stopped) and every warning raised outside grukit are hidden: logging is disabled up to
    WARNING for every logger (grukit itself logs nothing; it warns), so a library imported inside
    the block, which sets its own loggers' levels, stays quiet too; warnings attributed to a module
    not under `grukit` are ignored, grukit's own pass through to the filters already in place. Both
    are restored on leaving the block."""
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(?!grukit(\.|$))")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)
