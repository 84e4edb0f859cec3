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

import json
from dataclasses import asdict, is_dataclass
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
    saved tensors' one (when they share one). Raises InputError for a directory that is not a
    saved grukit model (a file missing, invalid JSON, another format, a class grukit does not
    know)."""
    source = Path(directory)
    config_path, weights_path = source / CONFIG_FILE, source / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(f"{source} is not a saved grukit model: {path.name} is missing")
    try:
        header = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{config_path} is not a grukit model config (format != {FORMAT!r})")
    if header.get("class") not in MODULES:
        raise InputError(f"{config_path} names class {header.get('class')!r}, not one of {sorted(MODULES)}")
    cls = module_class(header["class"])
    state = load_file(str(weights_path))
    if dtype is None:
        dtypes = {t.dtype for t in state.values()}
        dtype = dtypes.pop() if len(dtypes) == 1 else None
    config = header["config"]
    config_class = getattr(cls, "config_class", None)  # GRUCell keeps its few arguments as a dict
    if config_class is None:
        module = cls(**config, device=device, dtype=dtype)
    else:
        module = cls.from_config(config_class(**config), device=device, dtype=dtype)
    module.load_state_dict(state)
    return module
