"""grukit's two reset variants equal Keras 3 GRU (torch backend) after weight conversion."""

import numpy as np
import pytest
import torch

import grukit

keras = pytest.importorskip("keras")


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_gru_equals_keras(reset, use_bias):
    rng = np.random.default_rng(1)
    batch, steps, features, units = 3, 7, 4, 6
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    layer = keras.layers.GRU(units, reset_after=(reset == "after"), use_bias=use_bias,
                             return_sequences=True, return_state=True)
    layer.build((batch, steps, features))
    # Keras initialises biases to zero: give every weight random values so each block is checked.
    layer.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layer.get_weights()])
    keras_out, keras_h = (np.asarray(t.detach().cpu()) for t in layer(x))

    gru = grukit.GRU(features, units, batch_first=True, bias=use_bias, reset=reset)
    grukit.load_keras_weights(gru, layer.get_weights())
    out, h_n = gru(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), keras_out, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(h_n[0].detach().numpy(), keras_h, atol=1e-5, rtol=1e-5)

    # and back: grukit's weights in Keras form are the very arrays Keras holds
    for ours, theirs in zip(grukit.gru_to_keras(gru), layer.get_weights(), strict=True):
        if reset == "before" and ours.ndim == 1:
            np.testing.assert_allclose(ours, theirs, atol=1e-6)
        else:
            np.testing.assert_array_equal(ours, theirs)
