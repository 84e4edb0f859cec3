# %% [markdown]
# # GRU-D on data with gaps
#
# GRU-D (Che et al. 2018, `grukit.GRUD`) reads series whose values go missing. For step t with
# values x_t, mask m_t (1 = observed), gaps δ_t (for each variable, the time since it was last
# observed before step t), last observations x_last_t and the training mean x̄ (`empirical_mean`),
# it imputes every input before the GRU step reads it:
#
#     γ_x = exp(−max(0, w_γx ⊙ δ_t + b_γx))      w_γx = |decay_x_weight|, b_γx = decay_x_bias   (V,)
#     x̂_t = m_t ⊙ x_t + (1 − m_t) ⊙ (γ_x ⊙ x_last_t + (1 − γ_x) ⊙ x̄)
#
# x_last_t is each variable's last value observed up to and including step t, and x̄ before its
# first observation. Just after an observation a missing input is that observation (γ_x ≈ 1); as the
# gap grows it drifts to the mean (γ_x → 0), with a decay time 1/w_γx, and a bias b_γx < 0 holds it
# at the observation until δ = −b_γx / w_γx. The state decays alike, ĥ = γ_h ⊙ h_{t−1} with
# γ_h = exp(−max(0, W_γh δ_t + b_γh)). The paper's baselines are the two ends of the input decay:
# GRU-Forward (γ_x ≡ 1) and GRU-Mean (γ_x ≡ 0), both without γ_h and without the mask as an input
# (`grukit.nn.grud.gru_forward`, `gru_mean`).
#
# Write, for a `grukit.GRUD` built with `batch_first=True` and values, mask and gaps (B, T, V) —
# missing entries of the values may hold anything, NaN included:
#
# - `input_decay(model, gaps)`: γ_x (B, T, V) from the model's decay parameters;
# - `impute(model, values, mask, gaps)`: x̂ (B, T, V).
#
# `check` compares both, in float64, with the module's own: γ_x with its trace
# (`return_gates=True`: `GRUDTrace.input_decay`), x̂ through the input projection of every step
# (`GRUD.step_drive`: gi = W_ih x̂ + V m + b_ih), to 1e-9 — first on a GRU-D whose decays are set by
# hand (a raw weight below 0, biases below 0, x̄ ≠ 0, a variable missing at the first step), then on
# one trained here.
#
# The training data: JapaneseVowels (12 cepstrum coefficients per frame, 7–29 frames an utterance;
# the set ships inside sktime) with half the entries hidden at random and 10% of the observed rest
# held out as targets (`grukit.tasks.imputation.ImputationTask`: values standardised, so x̄ = 0; δ
# in units of the training split's mean gap). GRU-D, GRU-Mean and GRU-Forward (16 units, a linear
# head on every step's state, 150 Adam steps, seed 0) predict the held-out entries; `check` asks
# that GRU-D's test MAE be below GRU-Mean's and reports the decays GRU-D learned.

# %%
import functools

import torch
import torch.nn.functional as F

import grukit
from grukit.nn.grud import gru_forward, gru_mean
from grukit.tasks.imputation import ImputationTask


def input_decay(model, gaps: torch.Tensor) -> torch.Tensor:
    """γ_x = exp(−max(0, |decay_x_weight| ⊙ δ + decay_x_bias)), (B, T, V). Your code here."""
    raise NotImplementedError("write the input decay")


def impute(model, values: torch.Tensor, mask: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    """x̂ = m ⊙ x + (1 − m) ⊙ (γ_x ⊙ x_last + (1 − γ_x) ⊙ x̄), (B, T, V). Your code here."""
    raise NotImplementedError("write the imputation")


STUBS = (input_decay, impute)  # what `check` is called with once you have written them


# %% [markdown]
# ## The checks

# %%
HIDDEN, STEPS, BATCH = 16, 150, 64


def handmade() -> tuple:
    """A GRU-D (V = 3, H = 4) whose decays reach every case of the equations, and inputs for it."""
    torch.manual_seed(0)
    model = grukit.GRUD(3, 4, batch_first=True, empirical_mean=torch.tensor([0.5, -1.0, 2.0]), dtype=torch.float64)
    with torch.no_grad():
        model.decay_x_weight.copy_(torch.tensor([0.8, -0.5, 0.3]))  # the rate is |w|: 0.8, 0.5, 0.3
        model.decay_x_bias.copy_(torch.tensor([-1.0, 0.2, -0.4]))  # b < 0: γ_x = 1 while δ < −b/|w|
    mask = (torch.rand(5, 8, 3) < 0.5).double()
    mask[:, 0, 0] = 0  # never seen yet: x_last is x̄
    values = torch.randn(5, 8, 3, dtype=torch.float64).masked_fill(mask == 0, float("nan"))
    gaps = 3 * torch.rand(5, 8, 3, dtype=torch.float64)
    return model, values, mask, gaps


def agrees(decay, imputation, model, values, mask, gaps, *, what: str) -> None:
    _, _, trace = model(values, mask=mask, gaps=gaps, return_gates=True)
    gamma, x_hat = decay(model, gaps), imputation(model, values, mask, gaps)
    assert gamma.shape == x_hat.shape == values.shape, f"{what}: γ_x and x̂ must be (B, T, V) = {tuple(values.shape)}"
    error = (gamma - trace.input_decay[0]).abs().max()
    assert error < 1e-9, f"{what}: your γ_x is off the module's by {error:.2e}"
    gi, _ = model.step_drive(values, mask=mask, gaps=gaps)  # W_ih x̂ + V m + b_ih, (B, T, 3H)
    error = (F.linear(x_hat, model.weight_ih, model.bias_ih) + F.linear(mask, model.weight_mh) - gi).abs().max()
    assert error < 1e-9, f"{what}: your x̂ read through W_ih is off the module's input projection by {error:.2e}"


def predict(recurrent, head, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Every step's prediction of every variable (B, T, V) from inputs [values; mask; δ] (B, T, 3V)."""
    values, mask, gaps = inputs.chunk(3, dim=-1)
    output, _ = recurrent(values, mask=mask, gaps=gaps, lengths=lengths)
    return head(output)


def held_out_error(predictions: torch.Tensor, targets: torch.Tensor, *, power: int) -> torch.Tensor:
    """The mean |prediction − target|^power over the held-out entries (the targets that are not NaN)."""
    scored = ~torch.isnan(targets)
    return (predictions - targets)[scored].abs().pow(power).mean()


@functools.cache
def trained(seed: int = 0) -> tuple:
    """The task's data and, per model, its recurrence and head trained for STEPS Adam steps."""
    data = ImputationTask(source="japanesevowels", missing=0.5, pattern="mcar").build(seed=seed)
    train = data.train
    inputs, targets = train.inputs.double(), train.targets.double()
    models = {}
    for name, make in (("GRU-D", grukit.GRUD), ("GRU-Mean", gru_mean), ("GRU-Forward", gru_forward)):
        torch.manual_seed(seed)
        recurrent = make(data.output_size, HIDDEN, batch_first=True, dtype=torch.float64)  # x̄ = 0 (standardised)
        head = torch.nn.Linear(HIDDEN, data.output_size, dtype=torch.float64)
        optimiser = torch.optim.Adam([*recurrent.parameters(), *head.parameters()], lr=0.01)
        batches = torch.Generator().manual_seed(seed)
        for _ in range(STEPS):
            rows = torch.randint(len(inputs), (BATCH,), generator=batches)
            loss = held_out_error(predict(recurrent, head, inputs[rows], train.lengths[rows]), targets[rows], power=2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        models[name] = (recurrent, head)
    return data, models


def check(decay, imputation) -> None:
    agrees(decay, imputation, *handmade(), what="the hand-set GRU-D")
    data, models = trained()
    test = data.test
    values, mask, gaps = test.inputs.double().chunk(3, dim=-1)
    grud = models["GRU-D"][0]
    agrees(decay, imputation, grud, values, mask, gaps, what="the trained GRU-D")
    with torch.no_grad():
        mae = {name: float(held_out_error(predict(*model, test.inputs.double(), test.lengths), test.targets, power=1))
               for name, model in models.items()}
        x_hat = float(held_out_error(imputation(grud, values, mask, gaps), test.targets, power=1))
        rates = grud.decay_rates()[0]  # w_γx (V,): 1/w is the decay time, in mean gaps
        one_gap = decay(grud, torch.ones(1, 1, data.output_size, dtype=torch.float64))[0, 0]  # γ_x at δ = 1
        hidden = grud.decays(torch.ones(data.output_size, dtype=torch.float64))[1]  # γ_h at δ = 1, (H,)
    assert mae["GRU-D"] < mae["GRU-Mean"], (f"GRU-D's held-out MAE {mae['GRU-D']:.3f} is not below "
                                            f"GRU-Mean's {mae['GRU-Mean']:.3f}")
    baselines = ImputationTask(source="japanesevowels").baselines(data)
    print("held-out MAE (test, in standard deviations): " + ", ".join(f"{n} {v:.3f}" for n, v in mae.items())
          + f"; GRU-D's own x̂ {x_hat:.3f}, the mean {baselines['empirical mean']:.3f}, "
            f"the last observation {baselines['last observation carried forward']:.3f}")
    print("GRU-D's input decay times 1/w_γx (mean gaps): " + " ".join(f"{1 / float(w):.3g}" for w in rates))
    print(f"γ_x one mean gap after an observation: {float(one_gap.min()):.2f} – {float(one_gap.max()):.2f}; "
          f"γ_h: median {float(hidden.median()):.2f} over the {HIDDEN} units")
    print("correct: your γ_x and x̂ are GRU-D's, and GRU-D imputes the held-out entries better than GRU-Mean")


# %% [markdown]
# ## A solution
#
# The last observation is carried forward step by step, x̄ standing in until the first one.
#
# What the run shows, measured with seeds 0, 1 and 2 (held-out test MAE): GRU-D 0.429, 0.442,
# 0.450 against GRU-Mean's 0.510, 0.505, 0.505 — the one comparison the check asserts — but
# GRU-Forward is ahead of GRU-D in all three (0.419, 0.408, 0.423): consecutive frames of a vowel
# barely change, so the last observation is hard to beat and 150 steps leave GRU-D's decays short
# of it (most decay times are a few mean gaps). GRU-D's own x̂, read before any GRU step, imputes
# a shade better than the last observation alone (0.419, 0.437, 0.443 against 0.430, 0.442,
# 0.447): the learned decays improve on carrying forward, the rest of the network does not yet.

# %%
def solution_decay(model, gaps: torch.Tensor) -> torch.Tensor:
    rate, bias = model.decay_x_weight.abs(), model.decay_x_bias  # w_γx = |w| ≥ 0, b_γx
    return torch.exp(-torch.clamp(rate * gaps + bias, min=0))  # γ_x = exp(−max(0, w_γx δ + b_γx))


def last_observation(values: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """x_last (B, T, V): the latest observed value up to and including step t, x̄ before the first."""
    observed, last, carried = mask.bool(), mean.expand(values.shape[0], values.shape[2]), []
    for t in range(values.shape[1]):
        last = torch.where(observed[:, t], values[:, t], last)
        carried.append(last)
    return torch.stack(carried, dim=1)


def solution_impute(model, values: torch.Tensor, mask: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    x = torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype))  # a missing entry may be NaN
    mean, gamma = model.empirical_mean, solution_decay(model, gaps)  # x̄ (V,), γ_x (B, T, V)
    x_last = last_observation(x, mask, mean)
    return mask * x + (1 - mask) * (gamma * x_last + (1 - gamma) * mean)  # x̂ = m x + (1 − m)(γ x_last + (1 − γ) x̄)


check(solution_decay, solution_impute)

# %% [markdown]
# An answer a check must refuse: the decay without its max(0, ·), so that γ_x > 1 where the bias is
# below 0, and the imputation with x_last and x̄ swapped (the check refuses either alone).

# %%
def decay_without_relu(model, gaps: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(model.decay_x_weight.abs() * gaps + model.decay_x_bias))


def impute_swapped(model, values: torch.Tensor, mask: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    x = torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype))
    mean, gamma = model.empirical_mean, solution_decay(model, gaps)
    x_last = last_observation(x, mask, mean)
    return mask * x + (1 - mask) * (gamma * mean + (1 - gamma) * x_last)  # x_last and x̄ trade places


WRONG = (decay_without_relu, impute_swapped)
