"""`grukit compare` for the GRU-D family: PyPOTS' GRU-D as a peer row when the `bench` extra is in."""

import math

import pytest
import torch

from grukit.tasks import make_task
from grukit.training.compare import PYPOTS_LABEL, _pypots_sets, compare_models, peer_available
from grukit.training.trainer import TrainConfig


def test_pypots_reads_nan_wherever_a_value_is_missing_or_padded():
    data = make_task("clinical", stays=40, hours=8).build(seed=0)
    train, _, test = _pypots_sets(data)
    for arrays, split in ((train, data.train), (test, data.test)):
        mask = split.inputs[..., 6:12].bool().numpy()
        assert (~torch.isnan(torch.as_tensor(arrays["X"]))).numpy().tolist() == mask.tolist()
        assert arrays["X"].shape == (len(split), split.inputs.shape[1], 6)
        assert (arrays["y"] == split.targets.numpy()).all()
    assert not peer_available(make_task("adding"))  # a GRU / LSTM / RNN comparison has no such peer


def test_compare_adds_pypots_grud_with_the_same_budget(tmp_path):
    pytest.importorskip("pypots")
    from pypots.classification import GRUD

    task = make_task("clinical", stays=60, hours=8)
    config = TrainConfig(max_epochs=2, batch_size=16, progress=False)
    rows, data = compare_models(task, config, hidden_size=8, out_dir=tmp_path)
    peer = next(row for row in rows if row["model"] == PYPOTS_LABEL)
    reference = GRUD(n_steps=data.train.inputs.shape[1], n_features=6, n_classes=2, rnn_hidden_size=8,
                     verbose=False, model_saving_strategy=None)
    assert peer["parameters"] == sum(p.numel() for p in reference.model.parameters())
    assert 0.0 <= peer["test auroc"] <= 1.0 and not math.isnan(peer["test auroc"])
