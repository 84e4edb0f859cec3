"""Subject–verb number agreement across attractors (after Linzen, Dupoux & Goldberg 2016, TACL 4).

A small synthetic grammar: a sentence is

    the SUBJECT (PREP the ATTRACTOR)×k VERB (because PRONOUN ADVERB | ADVERB)

with k = 0 … 4 attractor nouns, each of the opposite grammatical number to the subject, between
the subject and its verb — the hard case where the nearest noun points the wrong way. The verb is
masked (one token, VERB); the task is to say, at that step, whether it should be singular or
plural. After the verb, with probability `cue_probability`, a pronoun (it / they) refers back to
the subject: a cue that only a model reading right to left can use at the verb. So a
unidirectional GRU must carry the subject's number past k distractors, while a bidirectional one
also hears the pronoun — the articles' reason for bidirectional GRUs in language tasks.

With probability `ambiguous_probability` the subject is a number-invariant noun (sheep, fish,
deer, species, series: the same form in both numbers) and its attractors take either number at
random, so nothing before the verb tells its number: only the pronoun after it does. A
unidirectional reader is then at chance on those sentences whatever it remembers; a
bidirectional one hears the pronoun when there is one. Without such subjects the task would not
tell the directions apart: carrying one bit past four attractors is easy for either.

Tokens are one-hot (I = vocabulary size); targets are IGNORE except at the verb (0 singular,
1 plural); `groups` holds k, and `metrics` reports accuracy per attractor count.
Baseline: the nearest-noun heuristic (agree with the last noun before the verb), right for k = 0
and wrong for every k ≥ 1 by construction; and the majority class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from grukit.tasks.base import IGNORE, Split, Task, TaskData, seeded_splits

NOUNS = ["key", "cabinet", "dog", "author", "bridge", "letter", "farmer", "window", "student", "engine"]
PLURALS = [noun + "s" for noun in NOUNS]
INVARIANT = ["sheep", "fish", "deer", "species", "series"]  # singular and plural alike
PREPOSITIONS = ["to", "near", "behind", "of", "with"]
ADVERBS = ["today", "again", "quietly", "often"]
VOCABULARY = ["<pad>", "the", "VERB", "because", "it", "they", *NOUNS, *PLURALS, *INVARIANT, *PREPOSITIONS,
              *ADVERBS]
INDEX = {word: i for i, word in enumerate(VOCABULARY)}
MAX_ATTRACTORS = 4


def make_agreement(count: int, *, cue_probability: float, seed: int, ambiguous_probability: float = 0.0) -> Split:
    generator = torch.Generator().manual_seed(seed)

    def choice(options):
        return options[int(torch.randint(len(options), (1,), generator=generator))]

    sentences, verb_positions, numbers, attractors = [], [], [], []
    for _ in range(count):
        plural = bool(torch.rand(1, generator=generator) < 0.5)
        k = int(torch.randint(MAX_ATTRACTORS + 1, (1,), generator=generator))
        ambiguous = float(torch.rand(1, generator=generator)) < ambiguous_probability
        words = ["the", choice(INVARIANT if ambiguous else PLURALS if plural else NOUNS)]
        for _ in range(k):  # attractors: the opposite number (either, for an invariant subject)
            opposite = NOUNS if plural else PLURALS
            words += [choice(PREPOSITIONS), "the", choice(choice([NOUNS, PLURALS]) if ambiguous else opposite)]
        verb_positions.append(len(words))
        words.append("VERB")
        if float(torch.rand(1, generator=generator)) < cue_probability:
            words += ["because", "they" if plural else "it"]
        words.append(choice(ADVERBS))
        sentences.append([INDEX[w] for w in words])
        numbers.append(int(plural))
        attractors.append(k)
    steps = max(len(s) for s in sentences)
    tokens = torch.zeros(count, steps, dtype=torch.long)  # <pad> = 0
    targets = torch.full((count, steps), IGNORE)
    for row, (sentence, position, number) in enumerate(zip(sentences, verb_positions, numbers)):
        tokens[row, : len(sentence)] = torch.tensor(sentence)
        targets[row, position] = number
    lengths = torch.tensor([len(s) for s in sentences])
    return Split(F.one_hot(tokens, len(VOCABULARY)).float(), targets, lengths, torch.tensor(attractors))


@dataclass(frozen=True)
class AgreementTask(Task):
    cue_probability: float = 0.5  # how often a pronoun after the verb refers back to the subject
    ambiguous_probability: float = 0.3  # how often the subject's form does not show its number
    train_size: int = 8_000
    validation_size: int = 1_000
    test_size: int = 2_500
    name: str = "agreement"

    def build(self, *, seed: int) -> TaskData:
        train, validation, test = seeded_splits(
            lambda size, split_seed: make_agreement(size, cue_probability=self.cue_probability, seed=split_seed,
                                                    ambiguous_probability=self.ambiguous_probability),
            self, seed=seed)
        return TaskData(self.name, train, validation, test, input_size=len(VOCABULARY), output_size=2,
                        loss="cross_entropy", readout="sequence", metric="accuracy", lower_is_better=False,
                        description=f"subject–verb agreement across 0–{MAX_ATTRACTORS} attractors")

    def metrics(self, data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
        metrics = super().metrics(data, predictions, split)
        scored = split.targets != IGNORE  # (N, T): one True per sentence, at the verb
        correct = (predictions.argmax(-1) == split.targets)[scored]  # (N,) in sentence order
        for k in range(MAX_ATTRACTORS + 1):
            chosen = split.groups == k
            if chosen.any():
                metrics[f"accuracy_{k}_attractors"] = float(correct[chosen].float().mean())
        return metrics

    def baselines(self, data: TaskData) -> dict[str, float]:
        test = data.test
        numbers = test.targets[test.targets != IGNORE]
        majority = (numbers == numbers.float().mean().round().long()).float().mean()
        return {"nearest noun": float((nearest_noun_numbers(test) == numbers).float().mean()),
                "majority class": float(majority)}


def nearest_noun_numbers(split: Split) -> torch.Tensor:
    """(N,) the heuristic's answer: the number of the last noun before the verb (an invariant noun
    counts as singular)."""
    tokens = split.inputs.argmax(-1)  # (N, T)
    positions = torch.arange(tokens.shape[1])
    verbs = (split.targets != IGNORE).int().argmax(1)  # (N,) the verb's step
    nouns = torch.isin(tokens, torch.tensor([INDEX[w] for w in NOUNS + PLURALS + INVARIANT]))
    last = torch.where(nouns & (positions < verbs[:, None]), positions, -1).max(1).values  # the subject at least
    nearest = tokens[torch.arange(len(tokens)), last]
    return torch.isin(nearest, torch.tensor([INDEX[w] for w in PLURALS])).long()
