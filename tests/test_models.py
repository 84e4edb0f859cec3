"""Every model in the registry, through the task model: the forward contract, and save → load
bit-identical (GRU-D included, its empirical mean too)."""

import pytest
import torch

import grukit
from grukit import registry
from grukit.training.model import ModelConfig, SequenceModel

V, B, T, H = 2, 3, 6, 5
ENTRIES = list(registry.MODELS.values())


def inputs_for(entry, *, generator):
    """(B, T, I) batch-first inputs the entry's model reads, and lengths (B,)."""
    if entry.inputs == "irregular":  # [values; mask; gaps δ]
        values = torch.randn(B, T, V, generator=generator)
        mask = (torch.rand(B, T, V, generator=generator) > 0.4).float()
        gaps = torch.rand(B, T, V, generator=generator) * 3
        return torch.cat([values * mask, mask, gaps], dim=-1), torch.tensor([T, 4, 2])
    return torch.randn(B, T, V, generator=generator), torch.tensor([T, 4, 2])


def module_of(entry) -> torch.nn.Module:
    features = 3 * V if entry.inputs == "irregular" else V
    model = SequenceModel(ModelConfig(cell=entry.name, input_size=features, hidden_size=H, output_size=1))
    return model.recurrent


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_the_task_model_builds_the_registered_class_with_its_fixed_options(entry):
    module = module_of(entry)
    assert type(module) is registry.module_class(entry.module)
    for name, value in entry.options.items():
        assert getattr(module, name) == value


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_model_saves_and_loads_bit_identically(tmp_path, entry):
    generator = torch.Generator().manual_seed(0)
    module = module_of(entry)
    if entry.inputs == "irregular":
        module.set_empirical_mean(torch.tensor([0.25, -1.5]))
    module.save(tmp_path / "model")
    loaded = grukit.load(tmp_path / "model")
    assert type(loaded) is type(module) and loaded.config == module.config
    for (name, a), (name_b, b) in zip(module.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert name == name_b and a.dtype == b.dtype and torch.equal(a, b)
    x, lengths = inputs_for(entry, generator=generator)
    if entry.inputs == "irregular":
        values, mask, gaps = x.chunk(3, dim=-1)
        first = module(values, mask=mask, gaps=gaps, lengths=lengths)
        second = loaded(values, mask=mask, gaps=gaps, lengths=lengths)
    else:
        first, second = module(x, lengths=lengths), loaded(x, lengths=lengths)
    for a, b in zip(first, second, strict=True):
        a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)  # the LSTM's (h_n, c_n)
        assert torch.equal(a, b)


def test_grud_round_trip_keeps_every_option_and_the_backend(tmp_path):
    model = grukit.GRUD(3, 4, batch_first=True, imputation="forward", hidden_decay=False, feed_mask=True,
                        feed_gaps=True, backend="reference", dtype=torch.float64)
    model.set_empirical_mean(torch.tensor([1.0, 2.0, 3.0]))
    grukit.save(model, tmp_path / "grud")
    loaded = grukit.load(tmp_path / "grud")
    assert loaded.config == model.config and loaded.backend == "reference"
    assert loaded.empirical_mean.dtype == torch.float64
    assert torch.equal(loaded.empirical_mean, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
