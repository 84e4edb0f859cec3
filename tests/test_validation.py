"""Every kind of bad input gets an InputError that names the problem."""

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import grukit
from grukit import InputError


@pytest.fixture
def gru():
    return grukit.GRU(3, 4, num_layers=2)


@pytest.mark.parametrize(
    "shape,message",
    [((5,), r"3-D \(T, B, I\) or unbatched 2-D"), ((1, 5, 2, 3), "got shape"), ((5, 2, 7), "7 features")],
)
def test_wrong_rank_or_features(gru, shape, message):
    with pytest.raises(InputError, match=message):
        gru(torch.randn(shape))


def test_dtype_mismatch(gru):
    with pytest.raises(InputError, match="dtype torch.float64 but the module's parameters are torch.float32"):
        gru(torch.randn(5, 2, 3, dtype=torch.float64))
    with pytest.raises(InputError, match="floating-point"):
        gru(torch.ones(5, 2, 3, dtype=torch.int64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_names_first_index(gru, bad):
    x = torch.randn(5, 2, 3)
    x[3, 1, 2] = bad
    x[4, 0, 0] = bad
    with pytest.raises(InputError, match=rf"non-finite value \({bad}\) at index \(t=3, b=1, feature=2\)"):
        gru(x)


def test_non_finite_index_in_batch_first_layout():
    gru = grukit.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    x[1, 2, 0] = float("nan")
    with pytest.raises(InputError, match=r"\(b=1, t=2, feature=0\)"):
        gru(x)


def test_nan_in_padding_is_allowed(gru):
    x = torch.randn(5, 2, 3)
    x[3:, 1] = float("nan")
    out, _ = gru(x, lengths=[5, 3])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "lengths,message",
    [
        ([5, 0], r"lengths\[1\] = 0 is outside \[1, 5\]"),
        ([6, 2], r"lengths\[0\] = 6 is outside \[1, 5\]"),
        ([5, 2, 1], "3 entries but the batch has 2"),
        ([[5, 2]], "1-D"),
        (torch.tensor([5.0, 2.0]), "integers"),
    ],
)
def test_bad_lengths(gru, lengths, message):
    with pytest.raises(InputError, match=message):
        gru(torch.randn(5, 2, 3), lengths=lengths)


def test_lengths_with_packed_input(gru):
    with pytest.raises(InputError, match="not both"):
        gru(pack_sequence([torch.randn(3, 3)]), lengths=[3])


@pytest.mark.parametrize(
    "hx,message",
    [
        (torch.zeros(1, 2, 4), r"hx has shape \(1, 2, 4\), expected \(2, 2, 4\)"),
        (torch.zeros(2, 3, 4), "expected"),
        (torch.zeros(2, 2, 4, dtype=torch.float64), "hx has dtype torch.float64"),
        (torch.full((2, 2, 4), float("nan")), r"hx has a non-finite value \(nan\) at index \(layer=0, b=0, unit=0\)"),
    ],
)
def test_bad_hx(gru, hx, message):
    with pytest.raises(InputError, match=message):
        gru(torch.randn(5, 2, 3), hx)


def test_lstm_hx_must_be_a_pair():
    with pytest.raises(InputError, match=r"tuple \('h0', 'c0'\)"):
        grukit.LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))


def test_empty_input(gru):
    with pytest.raises(InputError, match="no time steps"):
        gru(torch.randn(0, 2, 3))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden_size": 0}, "hidden_size must be a positive integer"),
        ({"num_layers": 1.5}, "num_layers must be a positive integer"),
        ({"dropout": 2.0}, "dropout must be a probability"),
        ({"reset": "sometimes"}, "reset must be one of 'after', 'before'"),
        ({"backend": "cuda"}, "backend must be one of"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    args = {"input_size": 3, "hidden_size": 4} | kwargs
    with pytest.raises(InputError, match=message):
        grukit.GRU(**args)


def test_torch_backend_refuses_what_it_cannot_do():
    x = torch.randn(5, 2, 3)
    with pytest.raises(InputError, match="reset='after'"):
        grukit.GRU(3, 4, reset="before", backend="torch")(x)
    with pytest.raises(InputError, match="gate values"):
        grukit.GRU(3, 4, backend="torch")(x, return_gates=True)
    with pytest.raises(InputError, match="reset='before'"):
        grukit.GRUCell(3, 4, reset="before", backend="torch")


def test_rnn_has_no_gates():
    with pytest.raises(InputError, match="no gates"):
        grukit.RNN(3, 4)(torch.randn(5, 2, 3), return_gates=True)


def test_cell_and_step_validate_too():
    cell = grukit.GRUCell(3, 4)
    with pytest.raises(InputError, match=r"\(B, 3\)"):
        cell(torch.randn(2, 5))
    with pytest.raises(InputError, match=r"hx has shape \(2, 5\), expected \(2, 4\)"):
        cell(torch.randn(2, 3), torch.zeros(2, 5))
    x = torch.randn(2, 3)
    x[1, 1] = float("inf")
    with pytest.raises(InputError, match=r"\(b=1, feature=1\)"):
        cell(x)
    with pytest.raises(InputError, match="bidirectional"):
        grukit.GRU(3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(InputError, match=r"state has shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        grukit.GRU(3, 4, 2).step(torch.randn(2, 3), torch.zeros(1, 2, 4))


@pytest.mark.parametrize("backend", ["auto", "fused", "torch", "reference"])
@pytest.mark.parametrize("grad", [False, True])
def test_every_step_path_names_a_nan(backend, grad):
    """The compiled cell checks its own input; every other path checks before it computes."""
    cell, gru = grukit.GRUCell(3, 4, backend=backend), grukit.GRU(3, 4, 2, backend=backend)
    x, h = torch.randn(2, 3), torch.zeros(2, 4)
    x[1, 2] = float("nan")
    with torch.set_grad_enabled(grad):
        with pytest.raises(InputError, match=r"input has a non-finite value \(nan\) at index \(b=1, feature=2\)"):
            cell(x, h)
        with pytest.raises(InputError, match=r"hx has a non-finite value \(inf\) at index \(b=0, unit=3\)"):
            cell(torch.randn(2, 3), torch.tensor([[0, 0, 0, float("inf")], [0, 0, 0, 0]]))
        with pytest.raises(InputError, match=r"input has a non-finite value \(nan\) at index \(b=1, feature=2\)"):
            gru.step(x)
        state = torch.zeros(2, 2, 4)
        state[1, 0, 1] = float("nan")
        with pytest.raises(InputError, match=r"state has a non-finite value \(nan\) at index \(layer=1, b=0, unit=1\)"):
            gru.step(torch.randn(2, 3), state)


def test_fused_cell_refuses_what_it_cannot_run(monkeypatch):
    import grukit.kernels.gru_scan

    monkeypatch.setattr(grukit.kernels.gru_scan, "NUMBA_ERROR", "numba could not be imported (test)")
    with pytest.raises(InputError, match="numba could not be imported"), pytest.warns(RuntimeWarning):
        grukit.GRUCell(3, 4, backend="fused")(torch.randn(2, 3))


def test_fused_refuses_other_modules():
    with pytest.raises(InputError, match="GRU only"):
        grukit.LSTM(3, 4, backend="fused")(torch.randn(5, 2, 3))
