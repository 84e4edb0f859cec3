"""`grukit compare` for the GRU-D family: PyPOTS' GRU-D as a peer row when the `bench` extra is in."""

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


def test_compare_adds_pypots_grud_with_the_same_budget(tmp_path, monkeypatch):
    """The peer row is PyPOTS' GRU-D at the same hidden size, scored by the task's own metric on the
    test split: its AUROC is scikit-learn's for the peer's predicted probabilities, which differ
    between sequences (a peer predicting a constant would score exactly 0.5)."""
    pytest.importorskip("pypots")
    from pypots.classification import GRUD
    from sklearn.metrics import roc_auc_score

    task = make_task("clinical", stays=60, hours=8)
    scored = []  # (predictions, split) of every call of the task's metrics; the peer's is the last
    real_metrics = type(task).metrics
    monkeypatch.setattr(type(task), "metrics", lambda self, data, predictions, split: scored.append(
        (predictions, split)) or real_metrics(self, data, predictions, split))
    config = TrainConfig(max_epochs=2, batch_size=16, progress=False)
    rows, data = compare_models(task, config, hidden_size=8, out_dir=tmp_path)
    peer = next(row for row in rows if row["model"] == PYPOTS_LABEL)
    reference = GRUD(n_steps=data.train.inputs.shape[1], n_features=6, n_classes=2, rnn_hidden_size=8,
                     verbose=False, model_saving_strategy=None)
    assert peer["parameters"] == sum(p.numel() for p in reference.model.parameters())
    logits, split = scored[-1]
    assert split is data.test and logits.shape == (len(data.test), 2)
    probabilities = logits.softmax(-1)[:, 1].double()
    assert probabilities.unique().numel() > 1
    expected = roc_auc_score(data.test.targets.numpy(), probabilities.numpy())
    assert peer["test auroc"] == pytest.approx(expected, abs=1e-12)
