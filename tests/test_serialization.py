"""save → load is bit-identical, atomic, refuses to clobber, and never unpickles."""

import json

import pytest
import torch

import grukit

MODELS = [
    lambda: grukit.GRU(3, 5, 2, bidirectional=True, batch_first=True, reset="before"),
    lambda: grukit.GRU(3, 5, dtype=torch.float64, bias=False),
    lambda: grukit.GRUCell(3, 5, reset="before"),
    lambda: grukit.LSTM(3, 5, 2),
    lambda: grukit.RNN(3, 5, nonlinearity="relu"),
]


@pytest.mark.parametrize("make", MODELS)
def test_round_trip_is_bit_identical(tmp_path, make):
    model = make()
    model.save(tmp_path / "model")
    loaded = grukit.load(tmp_path / "model")
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    for (name, a), (name_b, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert name == name_b and a.dtype == b.dtype and torch.equal(a, b)
    x = torch.randn(4, 3, dtype=model.weight_ih_l0.dtype if hasattr(model, "weight_ih_l0") else torch.float32)
    first = model(x)[0] if not isinstance(model, grukit.GRUCell) else model(x)
    second = loaded(x)[0] if not isinstance(loaded, grukit.GRUCell) else loaded(x)
    assert torch.equal(first, second)


def test_config_records_version_and_class(tmp_path):
    grukit.GRU(2, 3).save(tmp_path / "m")
    header = json.loads((tmp_path / "m" / "config.json").read_text())
    assert header["grukit_version"] == grukit.__version__
    assert header["class"] == "GRU" and header["config"]["reset"] == "after"


def test_existing_directory_is_not_overwritten(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        grukit.GRU(2, 3).save(target)
    assert (target / "notes.txt").read_text() == "mine"
    grukit.GRU(2, 3).save(target, overwrite=True)
    assert not (target / "notes.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging left behind


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    import grukit.io.serialization as serialization

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        grukit.GRU(2, 3).save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_what_is_not_a_grukit_model(tmp_path):
    with pytest.raises(grukit.InputError, match="config.json is missing"):
        grukit.load(tmp_path)
    grukit.GRU(2, 3).save(tmp_path / "m")
    header = json.loads((tmp_path / "m" / "config.json").read_text())
    header["class"] = "os.system"
    (tmp_path / "m" / "config.json").write_text(json.dumps(header))
    with pytest.raises(grukit.InputError, match="os.system"):
        grukit.load(tmp_path / "m")


def test_load_never_unpickles(tmp_path, monkeypatch):
    import pickle

    grukit.GRU(2, 3).save(tmp_path / "m")
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load"))
    grukit.load(tmp_path / "m")


@pytest.fixture
def umask_027():
    import os

    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_saved_files_have_the_users_permissions_not_a_private_staging_name(tmp_path, umask_027):
    """0o666 / 0o777 less the umask, as open() and mkdir give; tempfile's own names are 0o600 / 0o700."""
    import stat

    from grukit.io.atomic import current_umask, staged_file, write_atomic, write_text_atomic

    assert current_umask() == 0o027

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    target = grukit.GRU(2, 3).save(tmp_path / "m")
    assert mode(target) == 0o750
    assert {p.name: mode(p) for p in target.iterdir()} == {"config.json": 0o640, "model.safetensors": 0o640}
    grukit.GRU(2, 3).save(target, overwrite=True)
    assert mode(target) == 0o750
    assert mode(write_text_atomic(tmp_path / "a.txt", "a")) == 0o640
    assert mode(write_atomic(tmp_path / "b.bin", lambda stream: stream.write(b"b"), mode="wb")) == 0o640
    with staged_file(tmp_path / "c.csv") as staging:
        staging.write_text("c")
    assert mode(tmp_path / "c.csv") == 0o640 and (tmp_path / "c.csv").read_text() == "c"


def test_staged_files_replace_together_or_not_at_all(tmp_path):
    from grukit.io.atomic import staged_file, write_text_atomic

    write_text_atomic(tmp_path / "a.csv", "old a")
    with pytest.raises(OSError, match="disk full"):
        with staged_file(tmp_path / "a.csv") as a, staged_file(tmp_path / "b.png") as b:
            a.write_text("new a")
            b.write_text("half")
            raise OSError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]  # no staging file left, b never appeared
    assert (tmp_path / "a.csv").read_text() == "old a"
    with staged_file(tmp_path / "a.csv") as a, staged_file(tmp_path / "b.png") as b:
        a.write_text("new a")
        b.write_text("b")
    assert (tmp_path / "a.csv").read_text() == "new a" and (tmp_path / "b.png").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.png"]


def _tamper(directory, *, config=None, weights=None):
    if config is not None:
        header = json.loads((directory / "config.json").read_text())
        config(header)
        (directory / "config.json").write_text(json.dumps(header))
    if weights is not None:
        weights(directory / "model.safetensors")


TAMPERED = {
    "truncated weights": (dict(weights=lambda p: p.write_bytes(p.read_bytes()[:100])),
                          r"model.safetensors is not a readable safetensors file \(truncated or corrupt"),
    "garbage weights": (dict(weights=lambda p: p.write_bytes(b"\x00" * 64)), "not a readable safetensors file"),
    "another class's config": (dict(config=lambda h: h.update({"class": "GRUCell"})),
                               r"config is not a GRUCell's \(unknown keys batch_first, bidirectional, dropout, "
                               "num_layers"),
    "unknown key": (dict(config=lambda h: h["config"].update({"units": 4})), r"\(unknown keys units\)"),
    "missing key": (dict(config=lambda h: h["config"].pop("hidden_size")), r"\(missing keys hidden_size\)"),
    "refused value": (dict(config=lambda h: h["config"].update({"hidden_size": -1})), "GRU refuses its config"),
    "shape mismatch": (dict(config=lambda h: h["config"].update({"hidden_size": 5})),
                       r"does not hold the GRU its config describes: shape weight_ih_l0 \(12, 3\) where the config "
                       r"makes \(15, 3\)"),
    "missing tensors": (dict(config=lambda h: h["config"].update({"num_layers": 2})),
                        "does not hold the GRU its config describes: missing weight_ih_l1, weight_hh_l1"),
    "no config object": (dict(config=lambda h: h.pop("config")), 'has no "config" object for GRU'),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_load_of_a_tampered_directory_is_one_input_error_naming_the_file(tmp_path, case):
    change, message = TAMPERED[case]
    grukit.GRU(3, 4).save(tmp_path / "m")
    _tamper(tmp_path / "m", **change)
    with pytest.raises(grukit.InputError, match=message):
        grukit.load(tmp_path / "m")
