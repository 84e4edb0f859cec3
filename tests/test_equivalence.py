"""The test matrix: every variant of grukit's modules equals its torch.nn peer, values and gradients."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import grukit
from helpers import TOLERANCE, assert_close, flat, run_peer

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
        ["reference", "torch", "fused"],
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


@pytest.mark.parametrize("case", [c for c in MATRIX if c[7] == "fused"], ids=ids)
def test_gru_reset_before_fused_equals_reference(case):
    """The fused kernel against the readable specification, for the variant torch lacks."""
    layers, bi, bf, bias, mode, with_hx, dtype, _ = case
    ref = grukit.GRU(I, H, layers, bias=bias, batch_first=bf, bidirectional=bi, dtype=dtype, reset="before",
                     backend="reference")
    fused = grukit.GRU(I, H, layers, bias=bias, batch_first=bf, bidirectional=bi, dtype=dtype, reset="before",
                       backend="fused")
    fused.load_state_dict(ref.state_dict())
    x = torch.randn((B, T, I) if bf else (T, B, I), dtype=dtype)
    hx = torch.randn(layers * (2 if bi else 1), B, H, dtype=dtype) if with_hx else None
    results = []
    for module in (ref, fused):
        xi = x.clone().requires_grad_()
        hi = None if hx is None else hx.clone().requires_grad_()
        if mode == "packed":
            out, h_n, trace = module(pack_padded_sequence(xi, LENGTHS, batch_first=bf, enforce_sorted=False), hi,
                                     return_gates=True)
        else:
            out, h_n, trace = module(xi, hi, lengths=LENGTHS if mode == "lengths" else None, return_gates=True)
        g = torch.randn(flat(out).shape, dtype=dtype, generator=torch.Generator().manual_seed(3))
        ((flat(out) * g).sum() + (h_n**2).sum()).backward()
        grads = [xi.grad] + ([hi.grad] if hi is not None else []) + [p.grad for p in module.parameters()]
        results.append((out, h_n, trace, grads))
    (out_r, h_r, tr_r, g_r), (out_f, h_f, tr_f, g_f) = results
    assert_close(out_f, out_r, dtype, "output")
    assert_close(h_f, h_r, dtype, "h_n")
    for name in ("reset", "keep", "candidate"):
        torch.testing.assert_close(getattr(tr_f, name), getattr(tr_r, name), equal_nan=True,
                                   atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])
    for a, b in zip(g_f, g_r, strict=True):
        assert_close(a, b, dtype, "gradient")


BASELINE_MATRIX = [c for c in MATRIX if c[0] in (1, 2) and c[5] == c[3] and c[7] != "fused"]


@pytest.mark.parametrize("case", BASELINE_MATRIX, ids=ids)
def test_lstm_equals_torch(case):
    compare(grukit.LSTM, torch.nn.LSTM, case)


@pytest.mark.parametrize("case", BASELINE_MATRIX, ids=ids)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_equals_torch(case, nonlinearity):
    compare(grukit.RNN, torch.nn.RNN, case, nonlinearity=nonlinearity)
