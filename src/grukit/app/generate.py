"""Sampling text from a trained character-level model (`grukit generate RUN_DIR`).

The prompt is read after the start symbol, then each next character is drawn from
softmax(logits / temperature) and fed back, the recurrent state carried from step to step
(one step of the backbone per character). temperature → 0 approaches the most likely character;
1 samples the model's own distribution.
"""

from __future__ import annotations

import torch

from grukit.errors import InputError
from grukit.tasks.text import TextTask, Vocabulary
from grukit.training.model import SequenceModel
from grukit.training.runs import load_run


def sample(model: SequenceModel, vocabulary: Vocabulary, *, prompt: str = "", length: int = 200,
           temperature: float = 0.8, seed: int = 0) -> str:
    """`length` characters following `prompt` (the prompt itself not repeated)."""
    if not temperature > 0:
        raise InputError(f"temperature must be positive, got {temperature!r}")
    if length < 1:
        raise InputError(f"length must be at least 1, got {length!r}")
    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor([[0, *vocabulary.encode(prompt)]])  # (1, 1 + len(prompt)): start symbol first
    drawn: list[int] = []
    with torch.no_grad():
        output, state = model.recurrent(model.features(ids))
        for _ in range(length):
            logits = model.head(output[:, -1]) / temperature  # (1, V)
            probabilities = torch.softmax(logits.double(), dim=-1)
            probabilities[:, 0] = 0  # the start symbol is never a next character
            choice = int(torch.multinomial(probabilities, 1, generator=generator))
            drawn.append(choice)
            output, state = model.recurrent(model.features(torch.tensor([[choice]])), state)
    return vocabulary.decode(drawn)


def generate(run_dir, *, prompt: str = "", length: int = 200, temperature: float = 0.8, seed: int = 0) -> str:
    """Sample from the text run in `run_dir`."""
    run = load_run(run_dir)
    if not isinstance(run.task, TextTask):
        raise InputError(f"{run_dir} was trained on the {run.task.name!r} task; generate samples from a text run")
    return sample(run.model, run.task.vocabulary(seed=run.seed), prompt=prompt, length=length,
                  temperature=temperature, seed=seed)
