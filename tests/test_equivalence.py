"""The test matrix: every variant of grukit's modules equals its torch.nn peer, values and gradients."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import grukit
from helpers import assert_close, flat, run_peer

T, B, I, H = 5, 3, 4, 5
LENGTHS = torch.tensor([5, 2, 4])

MATRIX = list(
    itertools.product(
        [1, 2, 3],  # num_layers
        [False, True],  # bidirectional
        [False, True],  # batch_first
        [True, False],  # bias
        ["none", "lengths", "packed"],  # how sequence lengths are given
        [False, True],  # hx given
        [torch.float32, torch.float64],
        ["reference", "torch"],
    )
)


def ids(case):
    layers, bi, bf, bias, mode, with_hx, dtype, backend = case
    return (f"L{layers}-{'bi' if bi else 'uni'}-{'bf' if bf else 'tm'}-{'bias' if bias else 'nobias'}"
            f"-{mode}-{'hx' if with_hx else 'nohx'}-{str(dtype)[6:]}-{backend}")


def compare(kind, peer_cls, case, **extra):
    layers, bi, bf, bias, mode, with_hx, dtype, backend = case
    peer = peer_cls(I, H, layers, bias=bias, batch_first=bf, bidirectional=bi, dtype=dtype, **extra)
    ours = kind.from_torch(peer, backend=backend)
    x = torch.randn((B, T, I) if bf else (T, B, I), dtype=dtype)
    shape = (layers * (2 if bi else 1), B, H)
    hx = None
    if with_hx:
        hx = torch.randn(shape, dtype=dtype)
        if kind is grukit.LSTM:
            hx = (hx, torch.randn(shape, dtype=dtype))
    x_ours, x_peer = x.clone().requires_grad_(), x.clone().requires_grad_()
    hx_ours = hx_peer = None
    if hx is not None:
        clone = lambda s: s.clone().requires_grad_()  # noqa: E731
        hx_ours = tuple(map(clone, hx)) if isinstance(hx, tuple) else clone(hx)
        hx_peer = tuple(map(clone, hx)) if isinstance(hx, tuple) else clone(hx)

    if mode == "packed":
        arg_ours = pack_padded_sequence(x_ours, LENGTHS, batch_first=bf, enforce_sorted=False)
        arg_peer = pack_padded_sequence(x_peer, LENGTHS, batch_first=bf, enforce_sorted=False)
        out, h_n = ours(arg_ours, hx_ours)
    else:
        arg_peer = x_peer
        out, h_n = ours(x_ours, hx_ours, lengths=LENGTHS if mode == "lengths" else None)
    ref_out, ref_h = run_peer(peer, arg_peer, hx_peer, lengths=LENGTHS if mode == "lengths" else None,
                              batch_first=bf, packed=mode == "packed")
    assert_close(out, ref_out, dtype, "output")
    assert_close(h_n, ref_h, dtype, "h_n")

    # One random cotangent for both, so every gradient is compared.
    g_out, g_h = torch.randn_like(flat(out)), torch.randn_like(flat(h_n))
    loss = (flat(out) * g_out).sum() + (flat(h_n) * g_h).sum()
    ref_loss = (flat(ref_out) * g_out).sum() + (flat(ref_h) * g_h).sum()
    loss.backward()
    ref_loss.backward()
    assert_close(x_ours.grad, x_peer.grad, dtype, "d input")
    if hx is not None:
        for a, b in zip(hx_ours if isinstance(hx, tuple) else (hx_ours,),
                        hx_peer if isinstance(hx, tuple) else (hx_peer,), strict=True):
            assert_close(a.grad, b.grad, dtype, "d hx")
    ours_params = dict(ours.named_parameters())
    for name, p in peer.named_parameters():
        assert_close(ours_params[name].grad, p.grad, dtype, f"d {name}")


@pytest.mark.parametrize("case", MATRIX, ids=ids)
def test_gru_reset_after_equals_torch(case):
    compare(grukit.GRU, torch.nn.GRU, case)


BASELINE_MATRIX = [c for c in MATRIX if c[0] in (1, 2) and c[5] == c[3]]


@pytest.mark.parametrize("case", BASELINE_MATRIX, ids=ids)
def test_lstm_equals_torch(case):
    compare(grukit.LSTM, torch.nn.LSTM, case)


@pytest.mark.parametrize("case", BASELINE_MATRIX, ids=ids)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_equals_torch(case, nonlinearity):
    compare(grukit.RNN, torch.nn.RNN, case, nonlinearity=nonlinearity)
