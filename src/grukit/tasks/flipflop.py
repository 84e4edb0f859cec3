"""The 3-bit flip-flop (Sussillo & Barak 2013, "Opening the black box", Neural Computation 25).

Each of `bits` input channels is 0 most of the time and now and then (probability `pulse` per step
and channel) a pulse of +1 or −1. The target of each channel, at every step, is the sign of its
last pulse (0 before the first). A network that solves it must hold 2^bits memories — one per
combination of signs — and switch between them on pulses: Sussillo & Barak found each memory as
a stable fixed point of the trained network, with saddle points between them.
Baseline: predicting 0 (the MSE of knowing nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grukit.errors import check_positive
from grukit.tasks.base import Split, Task, TaskData, seeded_splits


def make_flipflop(count: int, steps: int, *, bits: int, pulse: float, seed: int) -> Split:
    """inputs (N, T, bits) of 0 and ±1 pulses, targets (N, T, bits): the last pulse's sign."""
    generator = torch.Generator().manual_seed(seed)
    fire = torch.rand(count, steps, bits, generator=generator) < pulse
    signs = torch.where(torch.rand(count, steps, bits, generator=generator) < 0.5, -1.0, 1.0)
    inputs = torch.where(fire, signs, torch.zeros(()))
    targets = torch.zeros_like(inputs)
    state = torch.zeros(count, bits)
    for t in range(steps):
        state = torch.where(fire[:, t], signs[:, t], state)
        targets[:, t] = state
    return Split(inputs, targets)


@dataclass(frozen=True)
class FlipFlopTask(Task):
    steps: int = 100  # T
    bits: int = 3  # channels, each a memory of one bit: 2^bits states to hold
    pulse: float = 0.05  # probability of a pulse per step and channel
    train_size: int = 2_000
    validation_size: int = 200
    test_size: int = 200
    name: str = "flipflop"

    def build(self, *, seed: int) -> TaskData:
        check_positive(steps=self.steps, bits=self.bits)

        def make(size: int, split_seed: int) -> Split:
            return make_flipflop(size, self.steps, bits=self.bits, pulse=self.pulse, seed=split_seed)

        splits = seeded_splits(make, self, seed=seed)
        return TaskData(self.name, *splits, input_size=self.bits, output_size=self.bits, loss="mse",
                        readout="sequence", metric="mse", lower_is_better=True,
                        description=f"{self.bits}-bit flip-flop, T={self.steps}: hold each channel's last pulse")

    def baselines(self, data: TaskData) -> dict[str, float]:
        return {"zero": float(data.test.targets.pow(2).mean())}
