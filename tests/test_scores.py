"""Classifier scores against values worked out by hand, and the confusion-matrix PNG."""
import json
import math

import numpy as np
import pytest

from tfseq.scores import binary_auc, classification_scores, plot_confusion, rank_with_ties

# 8 examples of 3 classes; each row puts 0.5 on the predicted class and 0.25 on the other two.
CLASSES = ["neg", "neu", "pos"]
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PREDICTED = [0, 0, 1, 1, 2, 2, 2, 2]
PROBS = np.array([[0.5 if c == p else 0.25 for c in range(3)] for p in PREDICTED])


def plain(value) -> bool:
    """True when `value` holds only built-in JSON types (np.float64 passes json.dumps, so test the types)."""
    if isinstance(value, dict):
        return all(type(key) is str and plain(v) for key, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return type(value) in (int, float, str)


def brute_force_auc(scores, positive) -> float:
    """Counts every (positive, negative) pair: 1 when the positive scores higher, 1/2 on a tie."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    won = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return won / (len(pos) * len(neg))


def test_three_classes_by_hand():
    scores = classification_scores(PROBS, LABELS, CLASSES)
    # true neg: 2 right, 1 called neu; true neu: 1 right, 1 called pos; true pos: 3 right
    assert scores["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 3]]
    assert scores["accuracy"] == 6 / 8
    # neg: precision 2/2, recall 2/3, F1 = 2 * 1 * 2/3 / (5/3) = 4/5
    # neu: precision 1/2, recall 1/2, F1 = 1/2
    # pos: precision 3/4, recall 3/3, F1 = 2 * 3/4 / (7/4) = 6/7
    expected = {
        "neg": (1.0, 2 / 3, 4 / 5, 3),
        "neu": (0.5, 0.5, 0.5, 2),
        "pos": (3 / 4, 1.0, 6 / 7, 3),
    }
    assert list(scores["per_class"]) == CLASSES
    for name, (precision, recall, f1, support) in expected.items():
        got = scores["per_class"][name]
        assert got["precision"] == pytest.approx(precision)
        assert got["recall"] == pytest.approx(recall)
        assert got["f1"] == pytest.approx(f1)
        assert got["support"] == support
    assert scores["macro_f1"] == pytest.approx((4 / 5 + 1 / 2 + 6 / 7) / 3)  # = 151/210
    # the true class got 0.5 six times and 0.25 twice: -(6 ln 1/2 + 2 ln 1/4) / 8 = 10/8 ln 2
    assert scores["loss"] == pytest.approx(1.25 * math.log(2))
    assert "auc" not in scores and "mae" not in scores
    assert plain(scores) and json.loads(json.dumps(scores)) == scores


def test_class_never_predicted_and_class_without_support():
    classes = ["a", "b", "c", "d"]
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(4)[[0, 0, 0, 2]]  # predicts a, a, a, c
    scores = classification_scores(probs, labels, classes)
    assert scores["confusion"] == [[2, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    per_class = scores["per_class"]
    # a: precision 2/3, recall 2/2, F1 = 2 * 2/3 / (5/3) = 4/5
    assert per_class["a"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(4 / 5),
                              "support": 2}
    # b has support but was never predicted; c was predicted but has no support; d has neither
    assert per_class["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert per_class["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert per_class["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # d is left out of the mean: (4/5 + 0 + 0) / 3, not / 4
    assert scores["macro_f1"] == pytest.approx(4 / 15)
    assert scores["accuracy"] == 0.5
    assert plain(scores)


def test_argmax_ties_go_to_the_first_class():
    scores = classification_scores(np.array([[0.4, 0.4, 0.2]]), np.array([1]), CLASSES)
    assert scores["confusion"] == [[0, 0, 0], [1, 0, 0], [0, 0, 0]]


def test_ranks_share_their_mean_when_tied():
    assert rank_with_ties(np.array([3, 1, 3, 2])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert rank_with_ties(np.array([0.5, 0.5, 0.5])).tolist() == [2.0, 2.0, 2.0]
    assert rank_with_ties(np.array([2.0, 1.0])).tolist() == [2.0, 1.0]


def test_auc_with_ties_matches_the_pairwise_count():
    scores = np.array([0.1, 0.4, 0.4, 0.4, 0.8, 0.8, 0.2])
    labels = np.array([0, 0, 1, 1, 1, 0, 0])
    # positives 0.4, 0.4, 0.8 against negatives 0.1, 0.4, 0.8, 0.2: 2.5 + 2.5 + 3.5 of 12 pairs
    assert brute_force_auc(scores, labels == 1) == 17 / 24
    assert binary_auc(scores, labels == 1) == pytest.approx(17 / 24)
    two_class = classification_scores(np.stack([1 - scores, scores], axis=1), labels, ["neg", "pos"])
    assert two_class["auc"] == pytest.approx(17 / 24)
    # many ties: scores on a coarse grid
    rng = np.random.default_rng(0)
    grid_scores = rng.integers(0, 5, size=40) / 4
    positive = rng.random(40) < 0.4
    assert binary_auc(grid_scores, positive) == pytest.approx(brute_force_auc(grid_scores, positive))


def test_auc_is_nan_with_one_class_and_rejects_integer_labels():
    assert math.isnan(binary_auc(np.array([0.2, 0.9]), np.array([True, True])))
    with pytest.raises(ValueError, match="boolean"):
        binary_auc(np.array([0.2, 0.9]), np.array([0, 1]))


def test_loss_clips_probabilities_like_keras():
    # the true class got probability 0 (clipped to 1e-7) and 1 (clipped to 1 - 1e-7)
    scores = classification_scores(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 1]), ["neg", "pos"])
    # -ln(1e-7) = 7 ln 10; -ln(1 - 1e-7) = 1e-7 to within 1e-14
    assert scores["loss"] == pytest.approx((7 * math.log(10) + 1e-7) / 2, rel=1e-12)


def test_ordinal_mae_is_in_label_units():
    classes = ["1", "2", "3", "4", "7", "8", "9", "10"]
    probs = np.zeros((4, 8))
    probs[0, [4, 3]] = [0.75, 0.25]  # true "4", predicted "7": 3 stars off (1 class off)
    probs[1, 0] = 1.0  # true "10", predicted "1": 9 stars off
    probs[2, 1] = 1.0  # true "2", predicted "2": right
    probs[3, [6, 5]] = [0.75, 0.25]  # true "8", predicted "9": 1 star off
    labels = np.array([3, 7, 1, 5])
    scores = classification_scores(probs, labels, classes, ordinal=True)
    assert scores["mae"] == pytest.approx((3 + 9 + 0 + 1) / 4)
    # expected values: 0.75*7 + 0.25*4 = 6.25, 1, 2, 0.75*9 + 0.25*8 = 8.75 -> errors 2.25, 9, 0, 0.75
    assert scores["mae_expected"] == pytest.approx((2.25 + 9 + 0 + 0.75) / 4)
    assert plain(scores)


def test_ordinal_needs_numeric_class_names():
    probs, labels = np.array([[0.3, 0.7]]), np.array([1])
    with pytest.raises(ValueError, match="'neg'"):
        classification_scores(probs, labels, ["neg", "pos"], ordinal=True)
    with pytest.raises(ValueError, match="'nan'"):
        classification_scores(probs, labels, ["1", "nan"], ordinal=True)
    assert "mae" not in classification_scores(probs, labels, ["neg", "pos"])  # fine when not ordinal


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="no examples"):
        classification_scores(np.zeros((0, 2)), np.zeros(0, dtype=int), ["neg", "pos"])
    with pytest.raises(ValueError, match="shape"):
        classification_scores(PROBS, LABELS, ["neg", "pos"])
    with pytest.raises(ValueError, match="0..2"):
        classification_scores(PROBS, LABELS + 1, CLASSES)
    with pytest.raises(ValueError, match="distinct"):
        classification_scores(PROBS, LABELS, ["neg", "neg", "pos"])


@pytest.mark.parametrize("classes", [CLASSES, [f"class number {i}" for i in range(20)]])
def test_confusion_plot_is_a_png_written_atomically(tmp_path, classes):
    k = len(classes)
    confusion = (np.arange(k * k).reshape(k, k) * 37 % 1000).tolist()
    confusion[-1] = [0] * k  # an empty row must not divide by zero
    path = tmp_path / "plots" / "confusion.png"
    plot_confusion(confusion, classes, path, title="test set")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in path.parent.iterdir()] == ["confusion.png"]  # no temporary file left
