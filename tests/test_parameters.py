"""Parameter counts equal the formulas: GRU 3H(I+H) + 6H, LSTM 4H(I+H) + 8H, RNN H(I+H) + 2H."""

import pytest
import torch

import grukit

FORMULAS = {
    grukit.GRU: lambda i, h, bias: 3 * h * (i + h) + (6 * h if bias else 0),
    grukit.LSTM: lambda i, h, bias: 4 * h * (i + h) + (8 * h if bias else 0),
    grukit.RNN: lambda i, h, bias: h * (i + h) + (2 * h if bias else 0),
}


@pytest.mark.parametrize("kind", list(FORMULAS), ids=lambda k: k.__name__)
@pytest.mark.parametrize("layers,bidirectional,bias", [(1, False, True), (1, False, False), (3, True, True)])
def test_count_matches_formula(kind, layers, bidirectional, bias):
    i, h = 7, 11
    d = 2 if bidirectional else 1
    module = kind(i, h, layers, bias=bias, bidirectional=bidirectional)
    expected = FORMULAS[kind](i, h, bias) * d + FORMULAS[kind](d * h, h, bias) * d * (layers - 1)
    assert grukit.count_parameters(module) == expected
    peer = module.torch_class(i, h, layers, bias=bias, bidirectional=bidirectional)
    assert expected == sum(p.numel() for p in peer.parameters())


def test_reset_before_adds_nothing_and_trainable_only_counts():
    gru = grukit.GRU(5, 4, reset="before")
    assert grukit.count_parameters(gru) == 3 * 4 * (5 + 4) + 6 * 4
    gru.bias_hh_l0.requires_grad_(False)
    assert grukit.count_parameters(gru, trainable_only=True) == 3 * 4 * (5 + 4) + 3 * 4


def test_initialisation_is_torch_uniform():
    gru = grukit.GRU(3, 16, dtype=torch.float64)
    bound = 1 / 16**0.5
    for p in gru.parameters():
        assert p.abs().max() <= bound and p.std() > bound / 3
