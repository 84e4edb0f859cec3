"""Conversions between grukit, torch.nn and Keras weight layouts (no Keras needed here)."""

import numpy as np
import pytest
import torch

import grukit


@pytest.mark.parametrize("reset", ["after", "before"])
def test_keras_conversion_round_trip(reset):
    gru = grukit.GRU(3, 4, reset=reset, dtype=torch.float64)
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in gru.layer_weights(0))
    kernel, recurrent, bias = grukit.torch_gru_to_keras(w_ih, w_hh, b_ih, b_hh, reset=reset)
    assert kernel.shape == (3, 12) and recurrent.shape == (4, 12)
    assert bias.shape == ((2, 12) if reset == "after" else (12,))
    back = grukit.keras_gru_to_torch(kernel, recurrent, bias, reset=reset)
    np.testing.assert_array_equal(back["weight_ih"], w_ih)
    np.testing.assert_array_equal(back["weight_hh"], w_hh)
    if reset == "after":
        np.testing.assert_array_equal(back["bias_ih"], b_ih)
        np.testing.assert_array_equal(back["bias_hh"], b_hh)
    else:  # one Keras bias: the sum is what the equations use
        np.testing.assert_allclose(back["bias_ih"] + back["bias_hh"], b_ih + b_hh, rtol=0, atol=1e-15)


def test_keras_block_order_is_z_r_h():
    hidden = 2
    w_ih = np.concatenate([np.full((hidden, 1), v) for v in (1.0, 2.0, 3.0)])  # r, z, n rows
    kernel, _ = grukit.torch_gru_to_keras(w_ih, np.zeros((3 * hidden, hidden)))
    np.testing.assert_array_equal(kernel[0], [2, 2, 1, 1, 3, 3])


def test_keras_conversion_rejects_bad_shapes():
    with pytest.raises(grukit.InputError, match="weight_ih"):
        grukit.torch_gru_to_keras(np.zeros((5, 3)), np.zeros((5, 5)))
    with pytest.raises(grukit.InputError, match=r"\(2, 12\)"):
        grukit.keras_gru_to_torch(np.zeros((3, 12)), np.zeros((4, 12)), np.zeros(12), reset="after")


def test_from_torch_to_torch_and_state_dict():
    peer = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    gru = grukit.GRU.from_torch(peer)
    assert gru.batch_first and gru.bidirectional and gru.num_layers == 2
    back = gru.to_torch()
    assert isinstance(back, torch.nn.GRU)
    for (name, a), (name_b, b) in zip(peer.state_dict().items(), back.state_dict().items(), strict=True):
        assert name == name_b and torch.equal(a, b)
    # a torch state_dict loads straight into a grukit GRU, and the key order is torch's
    fresh = grukit.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    fresh.load_state_dict(peer.state_dict())
    assert list(fresh.state_dict()) == list(peer.state_dict())


def test_reset_before_has_no_torch_equivalent():
    with pytest.raises(grukit.InputError, match="reset='after'"):
        grukit.GRU(3, 4, reset="before").to_torch()


def test_baselines_round_trip_through_torch():
    for ours, peer in ((grukit.LSTM(3, 4), torch.nn.LSTM), (grukit.RNN(3, 4, nonlinearity="relu"), torch.nn.RNN)):
        back = ours.to_torch()
        assert isinstance(back, peer)
        assert type(ours).from_torch(back).state_dict().keys() == ours.state_dict().keys()


def test_one_gate_reorder_for_keras_and_onnx():
    from grukit.io.gates import reorder_gate_blocks

    torch_rows = np.repeat(np.array([[1.0], [2.0], [3.0]]), 2, axis=0)  # r, z, n blocks of H = 2 rows
    assert reorder_gate_blocks(torch_rows, "torch", "keras")[:, 0].tolist() == [2, 2, 1, 1, 3, 3]
    assert np.array_equal(reorder_gate_blocks(torch_rows, "torch", "onnx"),
                          reorder_gate_blocks(torch_rows, "torch", "keras"))
    kernel = reorder_gate_blocks(torch_rows, "torch", "keras").T  # Keras' (I, 3H) columns
    assert np.array_equal(reorder_gate_blocks(kernel, "keras", "torch", axis=1), torch_rows.T)
    with pytest.raises(grukit.InputError, match="'tf'"):
        reorder_gate_blocks(torch_rows, "torch", "tf")
    with pytest.raises(grukit.InputError, match="three gate blocks"):
        reorder_gate_blocks(np.zeros(4), "torch", "keras")
