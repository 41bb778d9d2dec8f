"""kerascv_emotion.metrics against scikit-learn and hand-worked examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.io import to_jsonable
from kerascv_emotion.metrics import (
    MetricInputError,
    apply_temperature,
    bootstrap_intervals,
    bootstrap_regression_intervals,
    brier_score,
    calibration_metrics,
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    max_calibration_error,
    negative_log_likelihood,
    regression_metrics,
    reliability_diagram,
    weighted_roc_auc,
)

EIGHT = ["anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def _names(k: int) -> list[str]:
    return EIGHT if k == 8 else [f"class {i}" for i in range(k)]


def _random_task(k: int, n: int, seed: int, absent: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``(n,)`` and softmax probabilities ``(n, k)`` that are better than chance."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    if absent is not None:
        y[y == absent] = (absent + 1) % k
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


CASES = [(2, None), (3, None), (8, None), (2, 0), (3, 1), (8, 1)]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize(("k", "absent"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_classification_matches_sklearn(k: int, absent: int | None, seed: int) -> None:
    y, p = _random_task(k, 60, seed, absent)
    names = _names(k)
    m = classification_metrics(y, p, names)
    pred = p.argmax(axis=1)
    labels = list(range(k))

    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    mcm = skm.multilabel_confusion_matrix(y, pred, labels=labels)  # independent route to specificity
    for i, name in enumerate(names):
        row = m["per_class"][name]
        assert row["precision"] == pytest.approx(prec[i])
        assert row["recall"] == pytest.approx(rec[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == sup[i] and isinstance(row["support"], int)
        tn, fp = mcm[i][0, 0], mcm[i][0, 1]
        if i == absent:
            assert math.isnan(row["roc_auc"]) and math.isnan(row["average_precision"])
            assert any(f"'{name}'" in note and "absent" in note for note in m["notes"])
        if tn + fp == 0:  # k = 2 with one class absent: every sample is this class
            assert math.isnan(row["specificity"]) and math.isnan(row["roc_auc"])
        else:
            assert row["specificity"] == pytest.approx(tn / (tn + fp))
        if i != absent and tn + fp > 0:
            assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y == i, p[:, i]))
            assert row["average_precision"] == pytest.approx(skm.average_precision_score(y == i, p[:, i]))
    for avg in ("macro", "weighted"):
        expected = skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        got = m[f"{avg}_avg"]
        assert [got["precision"], got["recall"], got["f1"]] == pytest.approx(list(expected[:3]))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=labels))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()
    onehot = label_binarize(y, classes=labels) if k > 2 else np.stack([y == 0, y == 1], axis=1)
    assert m["roc_auc_micro"] == pytest.approx(skm.roc_auc_score(onehot, p, average="micro"))
    if absent is None:
        expected_macro = (skm.roc_auc_score(y, p[:, 1]) if k == 2
                          else skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
        assert m["roc_auc_macro"] == pytest.approx(expected_macro)
    elif k == 2:
        assert math.isnan(m["roc_auc_macro"])  # no class has both positives and negatives
    else:
        present = [i for i in range(k) if i != absent]
        assert m["roc_auc_macro"] == pytest.approx(np.mean([skm.roc_auc_score(y == i, p[:, i]) for i in present]))
    assert m["class_names"] == names and m["n"] == 60
    json.dumps(to_jsonable(m), allow_nan=False)  # JSON-ready once NaN -> null
    assert all(type(v) is float for v in (m["accuracy"], m["log_loss"], m["roc_auc_micro"]))


def test_specificity_and_binary_threshold_by_hand() -> None:
    # y = [0, 0, 0, 1, 1], P(class 1) = [.1, .6, .3, .8, .4]
    # argmax: [0, 1, 0, 1, 0] -> class 1: tp 1, fn 1, fp 1, tn 2 -> specificity(1) = 2/3,
    # specificity(0) = tn/(tn+fp) of class 0 = 1/2.
    # threshold 0.35: called [0, 1, 0, 1, 1] -> tp 2, fn 0, fp 1, tn 2 -> sens 1, spec 2/3.
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.3, 0.8, 0.4])
    m = classification_metrics(y, p1[:, None], ["normal", "covid"], threshold=0.35)
    assert m["per_class"]["covid"]["specificity"] == pytest.approx(2 / 3)
    assert m["per_class"]["normal"]["specificity"] == pytest.approx(1 / 2)
    b = m["binary"]
    assert (b["positive_class"], b["tp"], b["fn"], b["fp"], b["tn"]) == ("covid", 2, 0, 1, 2)
    assert b["sensitivity"] == pytest.approx(1.0) and b["specificity"] == pytest.approx(2 / 3)
    # positive class "normal" at 0.5 on P(normal) = [.9, .4, .7, .2, .6]: called [1, 0, 1, 0, 1]
    # truth [1, 1, 1, 0, 0] -> tp 2, fn 1, fp 1, tn 1 -> sens 2/3, spec 1/2.
    b0 = classification_metrics(y, p1[:, None], ["normal", "covid"], positive_class="normal")["binary"]
    assert b0["sensitivity"] == pytest.approx(2 / 3) and b0["specificity"] == pytest.approx(1 / 2)


def test_input_forms_agree() -> None:
    y, p = _random_task(2, 40, 3)
    base = classification_metrics(y, p, ["a", "b"])
    sigmoid = classification_metrics(y, p[:, 1], ["a", "b"])
    onehot = classification_metrics(np.eye(2)[y], p, ["a", "b"])
    column = classification_metrics(y[:, None].astype(float), p, ["a", "b"])
    for other in (sigmoid, onehot, column):
        assert other["confusion_matrix"] == base["confusion_matrix"]
        assert other["per_class"]["b"]["roc_auc"] == pytest.approx(base["per_class"]["b"]["roc_auc"])
        assert other["log_loss"] == pytest.approx(base["log_loss"])


def test_logits_error_by_default_and_from_logits() -> None:
    y, p = _random_task(3, 30, 4)
    logits = np.log(p) + 2.0  # softmax(logits) == p
    with pytest.raises(MetricInputError, match="from_logits=True"):
        classification_metrics(y, logits, _names(3))
    with pytest.raises(MetricInputError, match="do not sum to 1"):
        classification_metrics(y, p * 0.5, _names(3))
    got = classification_metrics(y, logits, _names(3), from_logits=True)
    assert got["log_loss"] == pytest.approx(classification_metrics(y, p, _names(3))["log_loss"])
    # a single sigmoid logit column: sigmoid(log(q/(1-q))) == q
    q = p[:, 0] / (p[:, 0] + p[:, 1])
    yb = (y == 1).astype(int)
    from_logit = classification_metrics(yb, np.log(q / (1 - q)), ["a", "b"], from_logits=True)
    assert from_logit["log_loss"] == pytest.approx(classification_metrics(yb, q, ["a", "b"])["log_loss"])


@pytest.mark.parametrize(
    ("y", "p", "names", "match"),
    [
        ([0, 1, 2], [[0.5, 0.5]] * 3, ["a", "b"], "outside the 2 classes"),
        ([0, -1], [[0.5, 0.5]] * 2, ["a", "b"], "outside the 2 classes"),
        ([0, 1], [[np.nan, 1.0], [0.5, 0.5]], ["a", "b"], "NaN"),
        ([0, 0], [[1.0], [1.0]], ["only"], "fewer than 2 classes"),
        ([0, 1], [[0.2, 0.3, 0.5]] * 2, ["a", "b"], "3 columns"),
        ([0.5, 1], [[0.5, 0.5]] * 2, ["a", "b"], "non-integer"),
        ([0, 1], [[0.5, 0.5]] * 2, ["a", "a"], "duplicates"),
    ],
)
def test_bad_inputs_raise_clear_errors(y: list, p: list, names: list[str], match: str) -> None:
    with pytest.raises(MetricInputError, match=match) as info:
        classification_metrics(np.array(y), np.array(p), names)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_single_class_in_y_true_is_answered() -> None:
    y = np.zeros(6, dtype=int)
    p = np.array([[0.9, 0.1, 0.0], [0.6, 0.2, 0.2], [0.2, 0.7, 0.1],
                  [0.8, 0.1, 0.1], [0.4, 0.3, 0.3], [0.5, 0.25, 0.25]])
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert all(math.isnan(m["per_class"][c]["roc_auc"]) for c in "abc")
    assert math.isnan(m["per_class"]["a"]["specificity"])  # no negatives for 'a'
    assert m["per_class"]["b"]["specificity"] == pytest.approx(5 / 6)
    assert math.isnan(m["roc_auc_macro"])
    assert any("every sample in y_true is 'a'" in note for note in m["notes"])


def test_regression_by_hand() -> None:
    # valence: t = [-1, 1, 1, -1], p = [-0.5, 0.5, -1, -1]
    #   t - p = [-0.5, 0.5, 2, 0] -> MSE = (0.25 + 0.25 + 4 + 0) / 4 = 1.125, RMSE = sqrt(1.125)
    #   signs agree on samples 0, 1, 3 -> SAGR = 3/4
    #   mean t = 0, mean p = -0.5; var t = 1, var p = (0 + 1 + 0.25 + 0.25) / 4 = 0.375
    #   cov = mean(t * (p + 0.5)) = (0 + 1 - 0.5 + 0.5) / 4 = 0.25
    #   CORR = 0.25 / sqrt(1 * 0.375); CCC = 2 * 0.25 / (1 + 0.375 + 0.5**2) = 0.5 / 1.625
    # arousal: predictions equal targets -> RMSE 0, CORR 1, SAGR 1, CCC 1
    t = np.array([[-1, 0.2], [1, 0.4], [1, 0.6], [-1, 0.8]])
    p = np.array([[-0.5, 0.2], [0.5, 0.4], [-1, 0.6], [-1, 0.8]])
    m = regression_metrics(t, p)
    v, a = m["per_dim"]["valence"], m["per_dim"]["arousal"]
    assert v["rmse"] == pytest.approx(math.sqrt(1.125))
    assert v["sagr"] == pytest.approx(0.75)
    assert v["corr"] == pytest.approx(0.25 / math.sqrt(0.375))
    assert v["ccc"] == pytest.approx(0.5 / 1.625)
    assert (a["rmse"], a["corr"], a["sagr"], a["ccc"]) == pytest.approx((0.0, 1.0, 1.0, 1.0))
    assert m["mean"]["rmse"] == pytest.approx(math.sqrt(1.125) / 2)
    assert m["mean"]["ccc"] == pytest.approx((0.5 / 1.625 + 1) / 2)
    assert m["names"] == ["valence", "arousal"] and m["n"] == 4


def test_regression_undefined_and_errors() -> None:
    # constant predictions 0.5 against t = [0, 1]: corr undefined (NaN); CCC = 0 / (0.25 + 0 + 0) = 0;
    # SAGR: sign(0) = 0 != 1, sign(1) = 1 -> 1/2
    m = regression_metrics([0.0, 1.0], [0.5, 0.5], names=["valence"])
    d = m["per_dim"]["valence"]
    assert math.isnan(d["corr"]) and d["ccc"] == pytest.approx(0.0) and d["sagr"] == pytest.approx(0.5)
    assert any("corr for 'valence' undefined" in note for note in m["notes"])
    # a constant whose mean rounds (0.1 * 150 / 150 != 0.1 in floating point) is constant too
    t = np.random.default_rng(0).uniform(-1, 1, (150, 2))
    assert math.isnan(regression_metrics(t, np.full((150, 2), 0.1))["per_dim"]["arousal"]["corr"])
    assert bootstrap_regression_intervals(t, np.full((150, 2), 0.1), n_resamples=5)["corr"]["arousal"]["skipped"] == 5
    with pytest.raises(MetricInputError, match="NaN"):
        regression_metrics([[0.0, 1.0]], [[np.nan, 1.0]])
    with pytest.raises(MetricInputError, match="same shape"):
        regression_metrics(np.zeros((3, 2)), np.zeros((3, 1)))


def test_weighted_auc_equals_sklearn_with_sample_weights() -> None:
    rng = np.random.default_rng(6)
    score = rng.integers(0, 5, 40) / 4.0  # many ties
    positive = rng.random(40) < 0.4
    counts = rng.integers(0, 3, size=(5, 40)).astype(float)
    got = weighted_roc_auc(counts, positive, score)
    for row, value in zip(counts, got, strict=True):
        assert value == pytest.approx(skm.roc_auc_score(positive, score, sample_weight=row))
    assert math.isnan(weighted_roc_auc(np.ones((1, 40)), np.zeros(40, bool), score)[0])


def test_bootstrap_matches_explicit_resamples() -> None:
    y, p = _random_task(3, 80, 7, absent=2)
    names = _names(3)
    b = bootstrap_intervals(y, p, names, n_resamples=60, seed=11, confidence=0.9)
    m = classification_metrics(y, p, names)
    assert b["accuracy"]["estimate"] == pytest.approx(m["accuracy"])
    assert b["macro_f1"]["estimate"] == pytest.approx(m["macro_avg"]["f1"])
    assert b["recall"]["class 0"]["estimate"] == pytest.approx(m["per_class"]["class 0"]["recall"])
    assert b["roc_auc"]["class 1"]["estimate"] == pytest.approx(m["per_class"]["class 1"]["roc_auc"])
    # the same draws, one resample at a time, through scikit-learn
    idx = np.random.default_rng(11).integers(0, 80, size=(60, 80))
    pred = p.argmax(1)
    acc = [skm.accuracy_score(y[i], pred[i]) for i in idx]
    f1 = [skm.f1_score(y[i], pred[i], labels=[0, 1, 2], average="macro", zero_division=0) for i in idx]
    auc = [skm.roc_auc_score(y[i] == 1, p[i, 1]) for i in idx]
    assert [b["accuracy"]["low"], b["accuracy"]["high"]] == pytest.approx(np.percentile(acc, [5, 95]))
    assert [b["macro_f1"]["low"], b["macro_f1"]["high"]] == pytest.approx(np.percentile(f1, [5, 95]))
    assert [b["roc_auc"]["class 1"]["low"], b["roc_auc"]["class 1"]["high"]] == pytest.approx(
        np.percentile(auc, [5, 95]))
    absent = b["recall"]["class 2"]
    assert absent["skipped"] == 60 and math.isnan(absent["low"]) and math.isnan(absent["estimate"])
    assert (b["n_resamples"], b["confidence"], b["seed"]) == (60, 0.9, 11)


def test_bootstrap_seeded_and_contains_estimate() -> None:
    y, p = _random_task(8, 300, 8)
    first = bootstrap_intervals(y, p, EIGHT, n_resamples=1000, seed=3)
    assert bootstrap_intervals(y, p, EIGHT, n_resamples=1000, seed=3) == first
    assert bootstrap_intervals(y, p, EIGHT, n_resamples=1000, seed=4) != first
    entries = [first["accuracy"], first["macro_f1"], *first["recall"].values(), *first["roc_auc"].values()]
    for e in entries:
        assert e["low"] <= e["estimate"] <= e["high"] and e["low"] < e["high"]
        assert e["skipped"] == 0


def test_bootstrap_regression() -> None:
    rng = np.random.default_rng(9)
    t = rng.uniform(-1, 1, size=(50, 2))
    p = t + rng.normal(scale=0.3, size=(50, 2))
    b = bootstrap_regression_intervals(t, p, n_resamples=40, seed=2)
    m = regression_metrics(t, p)
    assert b["rmse_mean"]["estimate"] == pytest.approx(m["mean"]["rmse"])
    assert b["ccc"]["arousal"]["estimate"] == pytest.approx(m["per_dim"]["arousal"]["ccc"])
    idx = np.random.default_rng(2).integers(0, 50, size=(40, 50))
    ccc = [regression_metrics(t[i], p[i])["mean"]["ccc"] for i in idx]
    assert [b["ccc_mean"]["low"], b["ccc_mean"]["high"]] == pytest.approx(np.percentile(ccc, [2.5, 97.5]))
    assert b == bootstrap_regression_intervals(t, p, n_resamples=40, seed=2)
    for key in ("rmse", "corr", "sagr", "ccc"):  # every measure of regression_metrics, per dimension and mean
        assert b[f"{key}_mean"]["estimate"] == pytest.approx(m["mean"][key])
        for name in ("valence", "arousal"):
            assert b[key][name]["estimate"] == pytest.approx(m["per_dim"][name][key])
            samples = [regression_metrics(t[i], p[i])["per_dim"][name][key] for i in idx]
            assert [b[key][name]["low"], b[key][name]["high"]] == pytest.approx(np.percentile(samples, [2.5, 97.5]))
    with pytest.raises(MetricInputError, match="confidence"):
        bootstrap_regression_intervals(t, p, confidence=95)


def test_grouped_bootstrap_resamples_whole_groups() -> None:
    """Every sample its own group = the plain bootstrap, draw for draw; three identical copies
    of each sample grouped together = the plain bootstrap of the originals, while ungrouped the
    copies would narrow the interval as if they were independent."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 40)
    prob = rng.dirichlet(np.ones(3), 40)
    prob[np.arange(40)[:25], y[:25]] += 1.0  # about 25 of 40 right
    prob /= prob.sum(axis=1, keepdims=True)
    names = ["a", "b", "c"]
    plain = bootstrap_intervals(y, prob, names, n_resamples=300, seed=1)
    assert plain["groups"] is None
    own = bootstrap_intervals(y, prob, names, n_resamples=300, seed=1, groups=np.arange(40))
    assert own["accuracy"] == plain["accuracy"] and own["groups"] == 40
    y3, prob3, subjects = np.repeat(y, 3), np.repeat(prob, 3, axis=0), np.repeat(np.arange(40), 3)
    grouped = bootstrap_intervals(y3, prob3, names, n_resamples=300, seed=1, groups=subjects)
    assert grouped["accuracy"] == pytest.approx(plain["accuracy"])
    assert grouped["macro_f1"]["low"] == pytest.approx(plain["macro_f1"]["low"])
    naive = bootstrap_intervals(y3, prob3, names, n_resamples=300, seed=1)
    assert naive["accuracy"]["high"] - naive["accuracy"]["low"] < grouped["accuracy"]["high"] - grouped["accuracy"]["low"]

    t = rng.uniform(-1, 1, (40, 2))
    pred = t + rng.normal(0, 0.3, (40, 2))
    reg_plain = bootstrap_regression_intervals(t, pred, n_resamples=200, seed=2)
    reg_grouped = bootstrap_regression_intervals(np.repeat(t, 3, axis=0), np.repeat(pred, 3, axis=0),
                                                 n_resamples=200, seed=2, groups=subjects)
    assert reg_grouped["rmse_mean"]["low"] == pytest.approx(reg_plain["rmse_mean"]["low"])
    assert reg_grouped["ccc_mean"]["high"] == pytest.approx(reg_plain["ccc_mean"]["high"])
    with pytest.raises(MetricInputError, match="one group per sample"):
        bootstrap_intervals(y, prob, names, n_resamples=10, groups=np.arange(39))


def test_split_groups_from_the_index() -> None:
    from kerascv_emotion.data.index import DatasetIndex, IndexRecord
    from kerascv_emotion.evaluation import split_groups

    records = [IndexRecord("a.png", "test", "x", group="S1"), IndexRecord("b.png", "test", "x", group="S2"),
               IndexRecord("c.png", "train", "x", group="S3")]
    index = DatasetIndex(Path("."), ["x"], records)
    assert split_groups(index, "test", ["b.png", "a.png"]) == ["S2", "S1"]
    records.append(IndexRecord("d.png", "test", "x"))
    assert split_groups(DatasetIndex(Path("."), ["x"], records), "test", ["a.png", "d.png"]) is None


def _reference_calibration(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[float, float]:
    """ECE and MCE written out bin by bin: bin b holds confidences in (b/n, (b+1)/n], 0 in bin 0."""
    conf, correct = p.max(1), p.argmax(1) == y
    ece, mce = 0.0, 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf > lo) & (conf <= hi) | ((b == 0) & (conf == 0))
        if inside.any():
            gap = abs(correct[inside].mean() - conf[inside].mean())
            ece += inside.mean() * gap
            mce = max(mce, gap)
    return ece, mce


@pytest.mark.parametrize(("k", "n_bins"), [(3, 10), (8, 15), (2, 5)])
def test_calibration_metrics_equal_a_reference(k: int, n_bins: int) -> None:
    y, p = _random_task(k, 200, 5 + k)
    got = calibration_metrics(y, p, _names(k), n_bins=n_bins)
    ece, mce = _reference_calibration(y, p, n_bins)
    assert got["ece"] == pytest.approx(ece) and expected_calibration_error(y, p, n_bins) == pytest.approx(ece)
    assert got["mce"] == pytest.approx(mce) and max_calibration_error(y, p, n_bins) == pytest.approx(mce)
    onehot = np.eye(k)[y]
    assert got["brier"] == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    assert got["brier"] == pytest.approx(brier_score(y, p))
    if k > 2:
        assert got["brier"] == pytest.approx(skm.brier_score_loss(y, p, labels=list(range(k))))
    else:  # scikit-learn's binary Brier score counts the positive class only
        assert got["brier"] == pytest.approx(2 * skm.brier_score_loss(y, p[:, 1]))
    assert got["nll"] == pytest.approx(skm.log_loss(y, p, labels=list(range(k))))
    assert negative_log_likelihood(y, p) == pytest.approx(got["nll"])
    diagram = reliability_diagram(y, p, n_bins)
    assert json.dumps(got["reliability"]) == json.dumps(diagram) and sum(diagram["count"]) == 200 and len(diagram["edges"]) == n_bins + 1


def test_calibration_on_fixed_arrays() -> None:
    """Worked by hand: bins of width 0.5; (0.5, 1] holds 0.9 (right), 0.8 (wrong), 0.6 (right)."""
    y = np.array([0, 1, 1, 0])
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    m = calibration_metrics(y, p, n_bins=2)
    # bin 0 holds the tie 0.5 (arg-max class 0, right): gap |1 - 0.5|; bin 1: |2/3 - 23/30|
    assert m["reliability"]["count"] == [1, 3]
    assert m["ece"] == pytest.approx(0.25 * 0.5 + 0.75 * abs(2 / 3 - 2.3 / 3))
    assert m["mce"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx((0.02 + 1.28 + 0.32 + 0.5) / 4)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.6, 0.5])))


def test_calibrated_predictor_has_no_ece_and_an_overconfident_one_its_gap() -> None:
    """Labels drawn from the predicted probabilities: ECE ~ 0. A predictor that says 0.9 for
    the class it picks but is right 60 % of the time: ECE = MCE = 0.3."""
    rng = np.random.default_rng(0)
    n, k = 200_000, 4
    p = rng.dirichlet(np.ones(k), size=n)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    assert expected_calibration_error(y, p, 15) < 0.005
    pick = rng.integers(0, k, n)
    q = np.full((n, k), 0.1 / (k - 1))
    q[np.arange(n), pick] = 0.9
    right = rng.random(n) < 0.6
    truth = np.where(right, pick, (pick + 1) % k)
    assert expected_calibration_error(truth, q, 10) == pytest.approx(0.3, abs=0.005)
    assert max_calibration_error(truth, q, 10) == pytest.approx(0.3, abs=0.005)


def test_temperature_scaling_lowers_nll_and_keeps_the_argmax() -> None:
    y, p = _random_task(5, 400, 9)
    sharp = apply_temperature(p, 0.3)  # deliberately over-confident
    t = fit_temperature(y, sharp)
    assert t == pytest.approx(1 / 0.3, rel=0.05)  # undoes the sharpening
    fixed = apply_temperature(sharp, t)
    assert negative_log_likelihood(y, fixed) < negative_log_likelihood(y, sharp) - 0.1
    assert expected_calibration_error(y, fixed) < expected_calibration_error(y, sharp)
    np.testing.assert_array_equal(fixed.argmax(1), sharp.argmax(1))
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-12)
    with pytest.raises(MetricInputError, match="temperature"):
        apply_temperature(p, 0.0)
    with pytest.raises(MetricInputError, match="n_bins"):
        expected_calibration_error(y, p, 0)


def test_bootstrap_ece_matches_explicit_resamples() -> None:
    y, p = _random_task(3, 90, 4)
    b = bootstrap_intervals(y, p, _names(3), n_resamples=50, seed=2, confidence=0.9, n_bins=10)
    assert b["ece"]["estimate"] == pytest.approx(expected_calibration_error(y, p, 10))
    idx = np.random.default_rng(2).integers(0, 90, size=(50, 90))
    ece = [_reference_calibration(y[i], p[i], 10)[0] for i in idx]
    bias = np.mean(ece) - b["ece"]["estimate"]
    assert b["ece"]["bias"] == pytest.approx(bias) and bias > 0
    assert [b["ece"]["low"], b["ece"]["high"]] == pytest.approx(np.clip(np.percentile(ece, [5, 95]) - bias, 0, None))


def test_bootstrap_ece_interval_of_a_calibrated_predictor_holds_its_estimate() -> None:
    """Labels drawn from the probabilities: resampling inflates ECE (|gap| only grows with noise),
    so the plain percentile interval lies wholly above the estimate; the corrected one holds it."""
    rng = np.random.default_rng(0)
    n, k = 3000, 7
    p = rng.dirichlet(np.full(k, 0.5), size=n)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    ece = bootstrap_intervals(y, p, _names(k), n_resamples=1000, seed=0)["ece"]
    assert ece["low"] + ece["bias"] > ece["estimate"]  # the uncorrected percentile interval misses it
    assert 0.0 <= ece["low"] <= ece["estimate"] <= ece["high"]
