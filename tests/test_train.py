"""The trainer: resume equals an uninterrupted run; DDP equals one process on the combined batch;
a diverging loss stops with the step named and the checkpoints intact."""

import dataclasses
import json

import pytest
import torch

from grukit.nn.validation import InputError
from grukit.tasks import make_task
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig, TrainingDiverged, fit

TASK = make_task("adding", steps=12, train_size=128, validation_size=32, test_size=32)
DATA = TASK.build(seed=0)
MODEL = ModelConfig(hidden_size=8)
QUIET = dict(progress=False, tensorboard=False, batch_size=16)


def weights(run_dir, name="last"):
    return torch.load(run_dir / "checkpoints" / f"{name}.ckpt", weights_only=True)["state_dict"]


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


def test_resume_continues_to_the_uninterrupted_result(tmp_path):
    fit(TASK, DATA, MODEL, TrainConfig(max_epochs=4, **QUIET), tmp_path / "whole")
    fit(TASK, DATA, MODEL, TrainConfig(max_epochs=2, **QUIET), tmp_path / "parts")
    halfway = weights(tmp_path / "parts")
    result = fit(TASK, DATA, MODEL, TrainConfig(max_epochs=4, **QUIET), tmp_path / "parts", resume=True)
    assert result.epochs == 4 and result.steps == 4 * 128 // 16
    assert_same_weights(weights(tmp_path / "whole"), weights(tmp_path / "parts"))
    with pytest.raises(AssertionError):  # and the resumed run did train on
        assert_same_weights(halfway, weights(tmp_path / "parts"))
    metrics = json.loads((tmp_path / "parts" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mse", "mae"} and "constant 1.0" in metrics["baselines"]


def test_last_checkpoint_is_the_last_epoch_even_when_validation_stalls(tmp_path):
    """With a zero learning rate the validation loss never improves after epoch 1: best.ckpt stays
    there, but last.ckpt must be the final epoch's, or resume would go back in time."""
    fit(TASK, DATA, MODEL, TrainConfig(max_epochs=3, learning_rate=0.0, **QUIET), tmp_path / "run")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3 * 128 // 16)
    assert best["epoch"] == 0


def test_resume_refuses_another_configuration_and_a_run_is_never_overwritten(tmp_path):
    fit(TASK, DATA, MODEL, TrainConfig(max_epochs=1, **QUIET), tmp_path / "run")
    before = (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(InputError, match="already holds a run"):
        fit(TASK, DATA, MODEL, TrainConfig(max_epochs=1, **QUIET), tmp_path / "run")
    with pytest.raises(InputError, match=r"different train\.learning_rate"):
        fit(TASK, DATA, MODEL, TrainConfig(max_epochs=2, learning_rate=0.1, **QUIET), tmp_path / "run", resume=True)
    with pytest.raises(InputError, match="does not exist"):
        fit(TASK, DATA, MODEL, TrainConfig(max_epochs=1, **QUIET), tmp_path / "empty", resume=True)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes() == before
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.tmp"))  # no staging file left behind


def test_diverging_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(max_epochs=1, **QUIET)
    fit(TASK, DATA, MODEL, config, tmp_path / "run")
    good = weights(tmp_path / "run")
    bad_targets = DATA.train.targets.clone()
    bad_targets[40:] = float("inf")  # from the third batch of the next epoch on (order permutes...)
    bad_targets[:] = float("nan")  # ...so make every batch bad: the first step of epoch 2 diverges
    from dataclasses import replace

    broken = replace(DATA, train=replace(DATA.train, targets=bad_targets))
    with pytest.raises(TrainingDiverged, match=r"became nan at step 8 \(epoch 1\)"):
        fit(TASK, broken, MODEL, TrainConfig(max_epochs=2, **QUIET), tmp_path / "run", resume=True)
    assert_same_weights(good, weights(tmp_path / "run"))


def test_two_ddp_processes_equal_one_process_on_the_combined_batch(tmp_path):
    """gloo on CPU, through Lightning's own strategy: batch 8 on each of 2 ranks == batch 16 on one."""
    single = fit(TASK, DATA, MODEL, TrainConfig(max_epochs=2, progress=False, tensorboard=False, batch_size=16),
                 tmp_path / "single")
    ddp = fit(TASK, DATA, MODEL, TrainConfig(max_epochs=2, progress=False, tensorboard=False, batch_size=8,
                                             devices=2, strategy="ddp_spawn"), tmp_path / "ddp")
    assert ddp.steps == single.steps == 2 * 128 // 16
    assert_same_weights(weights(tmp_path / "single"), weights(tmp_path / "ddp"), atol=1e-6)


def test_head_dropout_drops_the_head_features_while_training_only():
    from grukit.training.model import SequenceModel

    torch.manual_seed(0)
    config = ModelConfig(hidden_size=16, input_size=2, output_size=3, head_dropout=0.5)
    model = SequenceModel(config)
    inputs = torch.randn(4, 7, 2)
    model.eval()
    plain = SequenceModel(dataclasses.replace(config, head_dropout=0.0))
    plain.load_state_dict(model.state_dict())  # the same parameters: dropout adds none
    plain.eval()
    torch.testing.assert_close(model(inputs), plain(inputs), rtol=0, atol=0)
    with torch.no_grad():  # an identity head shows the features it reads
        model.head.weight.copy_(torch.eye(16)[:3])
        model.head.bias.zero_()
    model.train()
    features = model.recurrent(inputs)[1][-1][:, :3]  # (B, 3)
    dropped = model(inputs)
    kept = dropped != 0
    assert 0 < int(kept.sum()) < kept.numel()  # some features dropped, some kept
    torch.testing.assert_close(dropped[kept], features[kept] / 0.5)  # kept ones scaled by 1/(1 − p)
    with pytest.raises(InputError, match="head_dropout"):
        ModelConfig(head_dropout=1.0)


def test_no_progress_bar_where_output_is_redirected(tmp_path, capfd):
    """progress=True draws a bar only on a terminal: captured output gets none, and nothing else."""
    from grukit.training.trainer import TerminalProgressBar

    assert not TerminalProgressBar.drawable()
    fit(TASK, DATA, MODEL, TrainConfig(max_epochs=1, progress=True, tensorboard=False, batch_size=16), tmp_path / "r")
    out, _ = capfd.readouterr()
    assert "epoch" not in out and "━" not in out and "\r" not in out


def test_progress_bar_on_a_terminal_is_erased_when_training_ends(tmp_path):
    """On a terminal the bar shows the epoch, batches and losses, and is erased (rich transient)
    before anything printed after `fit`."""
    import os
    import pty
    import subprocess
    import sys

    script = ("from grukit.tasks import make_task\n"
              "from grukit.training.model import ModelConfig\n"
              "from grukit.app.quiet import quiet_libraries\nfrom grukit.training.trainer import TrainConfig, fit\n"
              "task = make_task('adding', steps=8, train_size=64, validation_size=16, test_size=16)\n"
              "with quiet_libraries():\n"
              f"    fit(task, task.build(seed=0), ModelConfig(hidden_size=4), TrainConfig(max_epochs=2, batch_size=16,"
              f" tensorboard=False), {str(tmp_path / 'r')!r})\n"
              "print('after fit')\n")
    leader, follower = pty.openpty()
    child = subprocess.Popen([sys.executable, "-c", script], stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes once the child has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert child.wait(timeout=120) == 0
    raw = b"".join(chunks).decode("utf-8", "replace")
    assert "epoch 1/2" in raw and "epoch 2/2" in raw and "train loss" in raw and "val loss" in raw
    last_frame, after = raw[:raw.index("after fit")].rsplit("epoch 2/2", 1)[1], raw[raw.index("after fit"):]
    assert "\x1b[1A\x1b[2K" in last_frame  # back up to the bar's line and erase it, before the next output
    assert "GPU available" not in raw and "Warning" not in raw and "━" not in after


def test_remove_run_takes_an_interrupted_auto_forecast_but_nothing_it_did_not_write(tmp_path):
    from grukit.errors import InputError
    from grukit.training.runs import remove_run

    interrupted = tmp_path / "forecast"
    for scaling in ("seasonal", "level"):
        (interrupted / scaling).mkdir(parents=True)
        (interrupted / scaling / "config.json").write_text("{}")
    remove_run(interrupted)
    assert not interrupted.exists()
    mixed = tmp_path / "mixed"
    (mixed / "seasonal").mkdir(parents=True)
    (mixed / "seasonal" / "config.json").write_text("{}")
    (mixed / "photos").mkdir()
    with pytest.raises(InputError, match="is not a grukit run"):
        remove_run(mixed)
    assert (mixed / "photos").is_dir()
