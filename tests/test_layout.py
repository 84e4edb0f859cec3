"""The package's shape: layers kept, no private names shared across modules, every model registered."""

import ast
import pathlib
import subprocess
import sys

import pytest

import grukit
from grukit import registry

SOURCE = pathlib.Path(grukit.__file__).parent


def test_the_layer_contract_holds():
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=SOURCE.parents[1])
    assert result.returncode == 0, result.stdout[-3000:]


def _private_imports():
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grukit"):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name != "__version__":
                        yield f"{path.relative_to(SOURCE)}: from {node.module} import {alias.name}"


def test_no_module_imports_another_modules_private_name():
    assert list(_private_imports()) == []


@pytest.mark.parametrize("name", sorted(registry.MODULES))
def test_every_registered_class_resolves_and_is_exported(name):
    cls = registry.module_class(name)
    assert cls.__name__ == name
    assert getattr(grukit, name) is cls


@pytest.mark.parametrize("entry", registry.MODELS.values(), ids=list(registry.MODELS))
def test_every_model_entry_names_a_registered_class_and_real_settings(entry):
    from dataclasses import fields

    from grukit.training.model import ModelConfig

    assert entry.module in registry.MODULES
    assert set(entry.settings) <= {f.name for f in fields(ModelConfig)}


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(grukit.InputError, match="model must be one of gru, lstm"):
        registry.model_entry("tcn")
    with pytest.raises(grukit.InputError, match="unknown module class 'Mamba'"):
        registry.module_class("Mamba")
