"""ICU-like stays with informative missingness: predict in-hospital death from sparse, irregular records.

A documented simulator (no real ICU data ships in any package; see DATA.md). Each stay lasts
`hours` hours. Physiology is homeostatic — the premise of GRU-D's decay toward the mean (Che et
al. 2018) — so each patient's latent severity is an Ornstein–Uhlenbeck process around their own
level, with episodes that fade on a timescale of 1/θ hours:

    s(t) = b + e(t),  b ~ N(0, 0.5²),  de = −θ e dt + √(2θ) dW,  e(0) ~ N(0, 1),  θ = THETA
    died ~ Bernoulli(σ(−5 + 7 s̄)),  s̄ the mean of s over the stay's last WINDOW = 12 hours
                                    (its 13 hourly values: how the patient is doing at the end)

Six variables, vitals and labs, each a noisy linear read-out of the severity when it is measured:

    value_v = μ_v + β_v s(t) + σ_v ε      (VARIABLES holds μ, β, σ per variable)

Measurements are informative: in each hour variable v is measured with probability
1 − exp(−λ_v e^{κ s(t)}) (vitals λ = 0.3/h, labs λ = 0.05/h, κ = 0.8): sicker patients are measured
more often, as in real ICUs. A measurement's time is uniform in its hour, rounded to a quarter
hour; the variables measured at one time form one step (`IrregularDataset.from_long`).

Between measurements a value is best guessed as x̄ + (x_last − x̄) e^{−θδ}: GRU-D's input decay
with a learned rate. The outcome reads the last 12 hours, so how old the latest values are matters.
The design keeps the models apart: the severity reverts to the patient's level (for a
non-reverting random walk, forward filling is the right guess and the decay has nothing to add),
and the outcome reads the stay's end, not its whole length (else counting the measurements alone
reaches the ceiling the severity allows). The ceiling and the counting baseline's AUROC, measured
on simulated stays, are on the results page.

Model inputs (B, T, 3V) = [values, mask, gaps δ in hours] — the layout the GRU-D family of
`SequenceModel` reads (cell "grud", "gru-mean", "gru-forward", "gru-simple"); a plain GRU reads the
same tensor. Values are standardised with the training stays' observed mean and std, so the
empirical mean x̄ GRU-D imputes toward is 0; missing entries hold 0. Targets: died (class ids).
Metrics: AUROC and AUPRC of the predicted probability of death. Baselines: the number of
measurements in the stay as the score (what informative missingness alone tells) and the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grukit.errors import check_positive
from grukit.tasks.base import TaskData
from grukit.tasks.irregular import IrregularClassification, irregular_task_data

#                 name          μ      β      σ     λ (per hour)
VARIABLES = (("heart_rate", 85.0, 12.0, 6.0, 0.3), ("systolic_bp", 120.0, -12.0, 8.0, 0.3),
             ("resp_rate", 18.0, 3.0, 2.0, 0.3), ("temperature", 37.0, 0.4, 0.3, 0.3),
             ("lactate", 1.5, 1.0, 0.4, 0.05), ("creatinine", 1.0, 0.4, 0.2, 0.05))
KAPPA = 0.8
DEATH = (-5.0, 7.0)  # intercept and slope of the death logit in s̄
WINDOW = 12  # hours at the end of the stay whose mean severity s̄ decides death
THETA = 1 / 6  # per hour: an episode's deviation halves in about 4 hours


def simulate_stays(count: int, *, hours: int, seed: int):
    """Long-format observations (a pandas DataFrame: stay, hour, variable, value, died), by the
    model above."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    fade = math.exp(-THETA)  # the OU process sampled exactly at whole hours
    for stay in range(count):
        level = rng.normal(0.0, 0.5)
        episode = np.empty(hours + 1)
        episode[0] = rng.normal()
        for hour in range(hours):
            episode[hour + 1] = fade * episode[hour] + math.sqrt(1 - fade**2) * rng.normal()
        severity = level + episode
        died = int(rng.random() < 1 / (1 + math.exp(-(DEATH[0] + DEATH[1] * severity[-1 - WINDOW:].mean()))))
        for hour in range(hours):
            for name, mu, beta, sigma, rate in VARIABLES:
                if rng.random() < 1 - math.exp(-rate * math.exp(KAPPA * severity[hour])):
                    when = round((hour + rng.random()) * 4) / 4
                    value = mu + beta * severity[hour] + sigma * rng.normal()
                    rows.append((stay, min(when, hours - 0.25), name, value, died))
        if not rows or rows[-1][0] != stay:  # a stay with no measurement at all gets one
            rows.append((stay, 0.0, VARIABLES[0][0], VARIABLES[0][1] + VARIABLES[0][2] * severity[0], died))
    frame = pd.DataFrame(rows, columns=["stay", "hour", "variable", "value", "died"])
    return frame.drop_duplicates(["stay", "hour", "variable"], keep="first").reset_index(drop=True)


@dataclass(frozen=True)
class ClinicalTask(IrregularClassification):
    stays: int = 6_000  # split 70/15/15 by stay
    hours: int = 48
    name: str = "clinical"

    def build(self, *, seed: int) -> TaskData:
        from grukit.data.irregular import IrregularDataset

        check_positive(stays=self.stays, hours=self.hours)
        frame = simulate_stays(self.stays, hours=self.hours, seed=seed)
        names = tuple(v[0] for v in VARIABLES)
        data = IrregularDataset.from_long(frame, id="stay", time="hour", variable="variable", value="value",
                                          label="died", variables=names)
        return irregular_task_data(data, name=self.name, seed=seed,
                                   description=f"simulated ICU stays ({self.hours} h, informative missingness): "
                                               "predict death")
