"""Saving and loading models: safetensors weights beside a JSON config, never a pickle.

A saved model is a directory:
    config.json        {"format": "grukit-model", "grukit_version": …, "class": "GRU", "config": {…}}
    model.safetensors  the state_dict, tensors by their torch.nn names

The directory is written under a staging name beside the target and renamed into place
(`atomic.staged_directory`), so a reader never sees half a model, and an existing directory is
replaced only with ``overwrite=True`` (the old one is moved aside first and removed once the new
one is in place). Loading reads JSON and safetensors only: nothing in the files is executed.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from grukit.errors import InputError
from grukit.io.atomic import staged_directory
from grukit.registry import MODULES, module_class

FORMAT = "grukit-model"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save(module: torch.nn.Module, directory, *, overwrite: bool = False) -> Path:
    """Write `module` to `directory` atomically; returns the directory's path.

    Raises InputError for a module grukit does not save, FileExistsError if `directory` exists
    and overwrite is False."""
    from grukit import __version__

    name = type(module).__name__
    if name not in MODULES:
        raise InputError(f"cannot save a {name}: grukit saves {sorted(MODULES)}")
    target = Path(directory)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    config = module.config
    header = {
        "format": FORMAT,
        "grukit_version": __version__,
        "class": name,
        "config": asdict(config) if is_dataclass(config) else dict(config),
    }
    with staged_directory(target) as staging:
        tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
        (staging / CONFIG_FILE).write_text(json.dumps(header, indent=2) + "\n")
    return target


def load(directory, *, device=None, dtype=None) -> torch.nn.Module:
    """Rebuild a module saved by `save`. Reads JSON and safetensors only; dtype defaults to the
    saved tensors' one (when they share one). Raises one InputError, naming the file and what is
    wrong, for a directory that is not a saved grukit model: a file missing, invalid JSON, another
    format, a class grukit does not know, a config with unknown or missing keys or values the class
    refuses, weights truncated or corrupt, tensors missing or unexpected, shapes that do not fit."""
    source = Path(directory)
    config_path, weights_path = source / CONFIG_FILE, source / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(f"{source} is not a saved grukit model: {path.name} is missing")
    try:
        header = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{config_path} is not a grukit model config (format != {FORMAT!r})")
    if header.get("class") not in MODULES:
        raise InputError(f"{config_path} names class {header.get('class')!r}, not one of {sorted(MODULES)}")
    cls = module_class(header["class"])
    config = header.get("config")
    if not isinstance(config, dict):
        raise InputError(f"{config_path} has no \"config\" object for {header['class']}")
    try:
        state = load_file(str(weights_path))
    except Exception as error:  # noqa: BLE001 - safetensors' errors: a truncated or corrupt file
        raise InputError(f"{weights_path} is not a readable safetensors file (truncated or corrupt: {error})"
                         ) from None
    if dtype is None:
        dtypes = {t.dtype for t in state.values()}
        dtype = dtypes.pop() if len(dtypes) == 1 else None
    module = _build(cls, config, config_path, device=device, dtype=dtype)
    _check_state(module, state, weights_path, header["class"])
    module.load_state_dict(state)
    return module


def _build(cls, config: dict, config_path: Path, *, device, dtype) -> torch.nn.Module:
    """cls built from the saved config; an InputError naming the keys that do not fit it."""
    config_class = getattr(cls, "config_class", None)  # GRUCell keeps its few arguments as a dict
    if config_class is not None:
        accepted = {f.name for f in fields(config_class)}
        required = {f.name for f in fields(config_class) if f.default is MISSING and f.default_factory is MISSING}
    else:
        parameters = inspect.signature(cls.__init__).parameters
        accepted = set(parameters) - {"self", "device", "dtype"}
        required = {n for n in accepted if parameters[n].default is inspect.Parameter.empty}
    unknown, missing = sorted(set(config) - accepted), sorted(required - set(config))
    if unknown or missing:
        said = "; ".join(part for part in (f"unknown keys {', '.join(unknown)}" if unknown else "",
                                           f"missing keys {', '.join(missing)}" if missing else "") if part)
        raise InputError(f"{config_path}: its config is not a {cls.__name__}'s ({said})")
    try:
        if config_class is None:
            return cls(**config, device=device, dtype=dtype)
        return cls.from_config(config_class(**config), device=device, dtype=dtype)
    except (InputError, TypeError, ValueError) as error:
        raise InputError(f"{config_path}: {cls.__name__} refuses its config: {error}") from None


def _check_state(module: torch.nn.Module, state: dict, weights_path: Path, name: str) -> None:
    """An InputError naming the tensors `state` lacks, has in excess, or has in another shape."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} where the config makes {tuple(expected[k].shape)}"
                  for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = [f"missing {', '.join(missing[:4])}" if missing else "",
                f"unexpected {', '.join(unexpected[:4])}" if unexpected else "",
                f"shape {'; '.join(mismatched[:3])}" if mismatched else ""]
    if any(problems):
        raise InputError(f"{weights_path} does not hold the {name} its config describes: "
                         + "; ".join(p for p in problems if p))
