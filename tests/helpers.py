"""Shared helpers for comparing a grukit module with its torch.nn peer."""

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_close(actual, expected, dtype, what=""):
    tol = TOLERANCE[dtype]
    if isinstance(actual, PackedSequence):
        assert isinstance(expected, PackedSequence), what
        assert torch.equal(actual.batch_sizes, expected.batch_sizes), what
        actual, expected = actual.data, expected.data
    if isinstance(actual, tuple):
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e, dtype, what)
        return
    assert actual.shape == expected.shape, f"{what}: {actual.shape} vs {expected.shape}"
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol, msg=lambda m: f"{what}: {m}")


def run_peer(peer, x, hx, *, lengths, batch_first, packed):
    """torch.nn's answer to the same call: lengths are emulated by packing."""
    if packed:
        return peer(x, hx)
    if lengths is None:
        return peer(x, hx)
    seq = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, h_n = peer(seq, hx)
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    return out, h_n


def flat(out):
    """A tensor from an output that may be packed or a state tuple."""
    if isinstance(out, PackedSequence):
        return out.data
    if isinstance(out, tuple):
        return torch.cat([o.reshape(-1) for o in out])
    return out
