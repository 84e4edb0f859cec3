"""Hypothesis: for random shapes and lengths, a padded/packed batch equals each sequence run alone."""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_sequence

import grukit


@st.composite
def cases(draw):
    batch = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, 9), min_size=batch, max_size=batch))
    return {
        "lengths": lengths,
        "input_size": draw(st.integers(1, 4)),
        "hidden_size": draw(st.integers(1, 5)),
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "reset": draw(st.sampled_from(["after", "before"])),
        "backend": draw(st.sampled_from(["reference", "torch", "fused"])),
        "seed": draw(st.integers(0, 2**16)),
        "with_hx": draw(st.booleans()),
    }


@given(cases())
def test_packed_batch_equals_each_sequence_alone(case):
    if case["backend"] == "torch" and case["reset"] == "before":
        case["backend"] = "reference"
    torch.manual_seed(case["seed"])
    gru = grukit.GRU(case["input_size"], case["hidden_size"], case["num_layers"],
                     bidirectional=case["bidirectional"], reset=case["reset"],
                     backend=case["backend"], dtype=torch.float64)
    seqs = [torch.randn(n, case["input_size"], dtype=torch.float64) for n in case["lengths"]]
    depth = case["num_layers"] * gru.num_directions
    hx = torch.randn(depth, len(seqs), case["hidden_size"], dtype=torch.float64) if case["with_hx"] else None

    packed_out, packed_h = gru(pack_sequence(seqs, enforce_sorted=False), hx)
    padded = torch.nn.utils.rnn.pad_sequence(seqs)  # (T, B, I)
    padded_out, padded_h = gru(padded, hx, lengths=case["lengths"])
    torch.testing.assert_close(padded_h, packed_h, rtol=0, atol=1e-12)

    for b, seq in enumerate(seqs):
        alone_out, alone_h = gru(seq, None if hx is None else hx[:, b])  # unbatched (T, I)
        n = len(seq)
        torch.testing.assert_close(padded_out[:n, b], alone_out, rtol=0, atol=1e-12)
        assert torch.all(padded_out[n:, b] == 0)
        torch.testing.assert_close(packed_h[:, b], alone_h, rtol=0, atol=1e-12)


@given(st.integers(1, 3), st.integers(1, 6), st.booleans(), st.integers(0, 2**16))
def test_reference_torch_and_fused_backends_agree(layers, steps, bidirectional, seed):
    torch.manual_seed(seed)
    ref = grukit.GRU(3, 4, layers, bidirectional=bidirectional, backend="reference", dtype=torch.float64)
    x = torch.randn(steps, 2, 3, dtype=torch.float64)
    for backend in ("torch", "fused"):
        other = grukit.GRU(3, 4, layers, bidirectional=bidirectional, backend=backend, dtype=torch.float64)
        other.load_state_dict(ref.state_dict())
        for a, b in zip(ref(x), other(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
