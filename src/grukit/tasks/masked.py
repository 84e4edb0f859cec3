"""Real multivariate series with values removed on purpose: classification under missingness.

The DATA.md sets that ship inside `sktime` (the `data` extra), each with its own train/test split:

  basicmotions    80 recordings (40 train, 40 test) of a smartwatch's 3-axis accelerometer and
                  gyroscope (6 channels × 100 steps): walking, resting, running, badminton
  japanesevowels  640 utterances (270 train, 370 test) of 12 LPC cepstrum coefficients, 7–29
                  frames each: which of 9 speakers

Every entry is then hidden with probability `missing` (seeded), in one of two patterns:

  mcar   missing completely at random: each entry independently with probability p
  mnar   missing not at random, self-masking: entry (v, t) is hidden with probability
         σ(α + β z), z its value standardised per channel, β = MNAR_SLOPE (high values go
         missing more often — a sensor that clips, a test not recorded when it is extreme);
         α is solved so that the mean probability over the data is p

Times are the steps (0, 1, …), so δ counts steps since a channel was last seen. Inputs are
[values; mask; δ] as in `clinical` (standardised with the training split; GRU-D's x̄ = 0); the
validation sequences are a seeded 20% of the training split, the test split is the dataset's.
Metric: accuracy; baseline: the majority class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grukit.errors import InputError
from grukit.tasks.base import TaskData
from grukit.tasks.irregular import IrregularClassification, irregular_task_data

DATASETS = ("basicmotions", "japanesevowels")
PATTERNS = ("mcar", "mnar")
MNAR_SLOPE = 2.0
VALIDATION_FRACTION = 0.2


def load_sequences(dataset: str):
    """(train, test): each a (list of (T_i, V) float arrays, list of labels) from sktime."""
    from grukit.data.real import require_package

    require_package("sktime")
    from sktime import datasets

    if dataset == "basicmotions":
        parts = [datasets.load_basic_motions(return_X_y=True, return_type="numpy3D", split=split)
                 for split in ("train", "test")]
        return tuple(([x.T.astype(float) for x in X], list(y)) for X, y in parts)
    parts = [datasets.load_japanese_vowels(return_X_y=True, split=split) for split in ("train", "test")]
    return tuple(([np.column_stack([np.asarray(cell, dtype=float) for cell in row]) for row in X.itertuples(
        index=False)], list(y)) for X, y in parts)


def hide(sequences: list[np.ndarray], *, missing: float, pattern: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Copies of the (T_i, V) arrays with entries set to NaN by the pattern of the module docstring."""
    if pattern == "mcar":
        return [np.where(rng.random(x.shape) < missing, np.nan, x) for x in sequences]
    stacked = np.concatenate(sequences)
    mean, std = stacked.mean(0), stacked.std(0)
    std = np.where(std > 0, std, 1.0)
    z = [(x - mean) / std for x in sequences]
    all_z = np.concatenate(z).ravel()
    low, high = -30.0, 30.0  # the mean of σ(α + β z) rises with α: bisect for the target rate
    for _ in range(80):
        alpha = (low + high) / 2
        if (1 / (1 + np.exp(-(alpha + MNAR_SLOPE * all_z)))).mean() < missing:
            low = alpha
        else:
            high = alpha
    return [np.where(rng.random(x.shape) < 1 / (1 + np.exp(-(alpha + MNAR_SLOPE * zx))), np.nan, x)
            for x, zx in zip(sequences, z)]


@dataclass(frozen=True)
class MaskedTask(IrregularClassification):
    dataset: str = "basicmotions"  # one of DATASETS
    missing: float = 0.5  # fraction of entries hidden (0.2 – 0.8 in the literature's comparisons)
    pattern: str = "mcar"  # "mcar" or "mnar"
    name: str = "masked"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise InputError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        check_masking(self.missing, self.pattern)

    def build(self, *, seed: int) -> TaskData:
        from grukit.data.irregular import IrregularDataset

        sequences, labels, splits = masked_sequences(self.dataset, missing=self.missing, pattern=self.pattern,
                                                     rng=np.random.default_rng(seed))
        data = IrregularDataset.from_arrays(sequences, [np.arange(len(x), dtype=float) for x in sequences],
                                            labels=labels)
        return irregular_task_data(data, name=self.name, seed=seed, splits=splits,
                                   description=f"{self.dataset}, {100 * self.missing:.0f}% {self.pattern.upper()} "
                                               f"missing: classify")


def check_masking(missing: float, pattern: str) -> None:
    """`hide`'s options: a fraction in [0, 1) and one of PATTERNS."""
    if pattern not in PATTERNS:
        raise InputError(f"pattern must be one of {', '.join(PATTERNS)}, got {pattern!r}")
    if not 0.0 <= missing < 1.0:
        raise InputError(f"missing must be a fraction in [0, 1), got {missing!r}")


def masked_sequences(dataset: str, *, missing: float, pattern: str, rng: np.random.Generator):
    """(sequences, labels, splits): the dataset's train then test sequences (T_i, V) with entries
    hidden (`hide`), class ids (sorted labels), and (train, validation, test) indices — validation a
    random VALIDATION_FRACTION of the dataset's training split, test the dataset's own."""
    (train_x, train_y), (test_x, test_y) = load_sequences(dataset)
    sequences = hide(train_x + test_x, missing=missing, pattern=pattern, rng=rng)
    classes = {label: k for k, label in enumerate(sorted(set(train_y)))}
    labels = [classes[label] for label in train_y + test_y]
    order = rng.permutation(len(train_x))
    n_validation = max(1, round(VALIDATION_FRACTION * len(train_x)))
    return sequences, labels, (order[n_validation:], order[:n_validation], np.arange(len(train_x), len(sequences)))
