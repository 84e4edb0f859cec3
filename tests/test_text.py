"""The text task and sampling from a trained character model."""

import pytest
import torch

from grukit.app.generate import generate
from grukit.errors import InputError
from grukit.tasks.text import IGNORE, TextTask, Vocabulary, encode_batch
from grukit.training.model import ModelConfig
from grukit.training.trainer import TrainConfig, fit


def test_vocabulary_round_trips_and_marks_rare_characters_unknown():
    vocabulary = Vocabulary.from_texts(["abca", "bcab"], min_count=2)
    assert vocabulary.characters[2:] == ("a", "b", "c")
    ids = vocabulary.encode("abz")
    assert ids == [2, 3, 1] and vocabulary.decode(ids) == "ab\N{REPLACEMENT CHARACTER}"


def test_inputs_are_the_targets_shifted_by_the_start_symbol():
    vocabulary = Vocabulary.from_texts(["hello", "hi"], min_count=1)
    batch = encode_batch(["hello", "hi"], vocabulary, max_chars=4)
    assert batch.lengths.tolist() == [4, 2]
    assert batch.inputs[0].tolist() == [0, *vocabulary.encode("hel")]
    assert batch.targets[1].tolist() == [*vocabulary.encode("hi"), IGNORE, IGNORE]


def test_bigram_beats_unigram_on_real_tweets():
    task = TextTask(tweets=2_000)
    baselines = task.baselines(task.build(seed=0))
    assert 3.0 < baselines["bigram"] < baselines["unigram"] < 5.5


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    task = TextTask(tweets=200, min_count=5)
    run_dir = tmp_path_factory.mktemp("text") / "run"
    fit(task, task.build(seed=0), ModelConfig(cell="gru", hidden_size=16),
        TrainConfig(max_epochs=1, batch_size=32, progress=False, tensorboard=False), run_dir)
    return run_dir


def test_generate_is_reproducible_and_uses_the_runs_vocabulary(text_run):
    first = generate(text_run, prompt="The ", length=40, seed=3)
    assert first == generate(text_run, prompt="The ", length=40, seed=3)
    assert len(first) == 40 and first != generate(text_run, prompt="The ", length=40, seed=4)
    assert set(first) <= set(TextTask(tweets=200, min_count=5).vocabulary(seed=0).characters) | {"\ufffd"}


def test_generate_refuses_other_runs_and_bad_temperatures(text_run, tmp_path):
    with pytest.raises(InputError, match="temperature must be positive"):
        generate(text_run, temperature=0)
    with pytest.raises(InputError, match="not a finished grukit run"):
        generate(tmp_path)


def test_token_inputs_must_be_integer_ids():
    from grukit.training.model import SequenceModel

    model = SequenceModel(ModelConfig(cell="gru", input_size=5, hidden_size=4, output_size=5, readout="sequence",
                                      token_inputs=True))
    assert model(torch.tensor([[0, 1, 4]])).shape == (1, 3, 5)
    with pytest.raises(InputError, match="symbol ids"):
        model(torch.randn(1, 3, 5))
