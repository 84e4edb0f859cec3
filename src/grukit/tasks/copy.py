"""The copy (memory) task (Hochreiter & Schmidhuber 1997, as set out by Arjovsky et al. 2016, §4.1).

Input: S symbols drawn uniformly from an alphabet of K, then T blanks, then a delimiter, then
S − 1 more blanks; length T + 2S. Target: blanks everywhere except the last S steps, which must
reproduce the S symbols. Tokens are one-hot over K + 2 classes (K symbols, blank, delimiter).

Baseline — the memoryless strategy: predict blank for the first T + S steps and a uniform guess
over the K symbols for the last S. Its cross-entropy per step is S·ln K / (T + 2S): a model
beats it only by carrying the symbols across the delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from grukit.errors import check_positive
from grukit.tasks.base import Split, Task, TaskData, seeded_splits


def make_copy(count: int, *, delay: int, symbols: int, alphabet: int, seed: int) -> Split:
    """inputs (N, T + 2S, K + 2) one-hot; targets (N, T + 2S) class ids."""
    generator = torch.Generator().manual_seed(seed)
    blank, delimiter = alphabet, alphabet + 1
    length = delay + 2 * symbols
    sequence = torch.randint(0, alphabet, (count, symbols), generator=generator)
    tokens = torch.full((count, length), blank)
    tokens[:, :symbols] = sequence
    tokens[:, delay + symbols] = delimiter
    targets = torch.full((count, length), blank)
    targets[:, -symbols:] = sequence
    return Split(F.one_hot(tokens, alphabet + 2).float(), targets)


def memoryless_cross_entropy(*, delay: int, symbols: int, alphabet: int) -> float:
    return symbols * math.log(alphabet) / (delay + 2 * symbols)


@dataclass(frozen=True)
class CopyTask(Task):
    delay: int = 50  # T blank steps between the symbols and the delimiter
    symbols: int = 10  # S symbols to remember
    alphabet: int = 8  # K
    train_size: int = 10_000
    validation_size: int = 1_000
    test_size: int = 1_000
    name: str = "copy"

    def build(self, *, seed: int) -> TaskData:
        check_positive(delay=self.delay, symbols=self.symbols, alphabet=self.alphabet)
        train, validation, test = seeded_splits(
            lambda size, split_seed: make_copy(size, delay=self.delay, symbols=self.symbols, alphabet=self.alphabet,
                                               seed=split_seed),
            self, seed=seed)
        return TaskData(self.name, train, validation, test, input_size=self.alphabet + 2,
                        output_size=self.alphabet + 2, loss="cross_entropy", readout="sequence",
                        metric="cross_entropy", lower_is_better=True,
                        description=f"copy {self.symbols} symbols across a delay of {self.delay} steps")

    def metrics(self, data: TaskData, predictions: torch.Tensor, split: Split) -> dict[str, float]:
        metrics = super().metrics(data, predictions, split)
        recall = predictions[:, -self.symbols :].argmax(-1) == split.targets[:, -self.symbols :]
        metrics["recall_accuracy"] = float(recall.float().mean())  # on the S steps that need memory
        return metrics

    def baselines(self, data: TaskData) -> dict[str, float]:
        return {"memoryless": memoryless_cross_entropy(delay=self.delay, symbols=self.symbols,
                                                       alphabet=self.alphabet)}
