"""The Kneser-Ney reference LM in bench/: proper distributions, values worked out by hand, a learnable pattern."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import kneser_ney  # noqa: E402

VOCAB = 7
# Ids 0..5 only, so that contexts holding id 6 are never seen and id 6 itself is never counted.
STREAM = np.random.default_rng(0).integers(0, VOCAB - 1, size=300)


def distribution(lm: kneser_ney.KneserNey, context: list[int]) -> np.ndarray:
    """P(w | context) for every id w, each scored as the last id of context + [w]."""
    return np.array([math.exp(lm.log_probs(np.array(context + [w]))[-1]) for w in range(VOCAB)])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_gives_a_distribution(order):
    lm = kneser_ney.KneserNey(order).fit(STREAM, VOCAB)
    seen = [int(i) for i in STREAM[:3]]
    contexts = [
        seen,  # every order's context seen
        [6, 6, 6],  # unseen at every order above the unigram
        [6] + seen[1:],  # the longest context unseen, the shorter ones seen
        [seen[0]],  # shorter than order - 1: the stream's start
    ]
    for context in contexts:
        probs = distribution(lm, context)
        assert probs.sum() == pytest.approx(1.0, abs=1e-9), context
        assert (probs > 0).all(), context


def test_unigram_by_hand():
    # Counts 2, 1, 1, 0 of 4; n3 = 0, so the fallback discounts 0.5, 1, 1.5:
    # gamma = (1 + 0.5 + 0.5) / 4 = 1/2, P(w) = (c(w) - D(c(w))) / 4 + (1/2) / 4.
    lm = kneser_ney.KneserNey(1).fit(np.array([0, 0, 1, 2]), 4)
    expected = [1 / 4 + 1 / 8, 0.5 / 4 + 1 / 8, 0.5 / 4 + 1 / 8, 1 / 8]
    np.testing.assert_allclose(np.exp(lm.log_probs(np.array([3, 0, 1, 2, 3]))), expected, rtol=1e-12)


def test_modified_discounts_by_hand():
    # Four ids seen once, two twice, one 3 times, one 4 times, one never: n1..n4 = 4, 2, 1, 1, so Y = 4 / 8,
    # D1 = 1 - 2 Y 2/4 = 0.5, D2 = 2 - 3 Y 1/2 = 1.25, D3+ = 3 - 4 Y 1/1 = 1; 15 tokens,
    # gamma = (4 * 0.5 + 2 * 1.25 + 2 * 1) / 15 = 6.5 / 15.
    stream = np.array([0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 7, 7, 7, 7])
    lm = kneser_ney.KneserNey(1).fit(stream, 9)
    assert lm.discounts == [pytest.approx((0.5, 1.25, 1.0))]
    uniform = 6.5 / 15 / 9
    expected = [0.5 / 15 + uniform, 0.75 / 15 + uniform, 2 / 15 + uniform, 3 / 15 + uniform, uniform]
    np.testing.assert_allclose(np.exp(lm.log_probs(np.array([0, 0, 4, 6, 7, 8]))), expected, rtol=1e-12)


def test_bigram_by_hand():
    # Bigrams 01 (twice), 10, 12: fallback discounts. Context 0: c = 2, gamma = D2 / 2 = 1/2, 01 keeps (2 - 1) / 2.
    # Context 1: c = 2, gamma = (0.5 + 0.5) / 2 = 1/2, 10 and 12 keep 0.5 / 2 each. The unigram's continuation
    # counts are 1 for each of 0, 1, 2 (left neighbours 1, 0, 1): gamma = 1.5 / 3 and P(w) = 0.5/3 + 0.5/3 = 1/3.
    lm = kneser_ney.KneserNey(2).fit(np.array([0, 1, 0, 1, 2]), 3)
    # Targets: 1 | 0, 1 | 1, 0 | 1, 2 | 0, 2 | 2 (context 2 unseen: the unigram).
    expected = [1 / 2 + 1 / 6, 1 / 6, 1 / 4 + 1 / 6, 1 / 6, 1 / 3]
    np.testing.assert_allclose(np.exp(lm.log_probs(np.array([0, 1, 1, 0, 2, 2]))), expected, rtol=1e-12)


def test_trigram_learns_a_repeating_pattern():
    # Each pair of consecutive ids fixes the next one, while a single id does not (1 precedes 2, 4 and 3).
    pattern = [0, 1, 2, 3, 1, 4, 5, 1, 3, 6, 2, 4]
    stream = np.array(pattern * 60)
    train, heldout = stream[:600], stream[600:]

    def perplexity(order):
        nats, tokens = kneser_ney.KneserNey(order).fit(train, VOCAB).nll(heldout)
        return math.exp(nats / tokens)

    unigram, trigram = perplexity(1), perplexity(3)
    assert unigram > 5
    assert trigram < 1.2


def test_nll_is_the_sum_of_log_probs():
    lm = kneser_ney.KneserNey(3).fit(STREAM, VOCAB)
    heldout = np.random.default_rng(1).integers(0, VOCAB, size=50)
    nats, tokens = lm.nll(heldout)
    assert tokens == len(heldout) - 1
    assert nats == pytest.approx(-lm.log_probs(heldout).sum(), rel=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError):
        kneser_ney.KneserNey(0)
    with pytest.raises(ValueError):
        kneser_ney.KneserNey(2).fit(np.array([0, 1, VOCAB]), VOCAB)
    with pytest.raises(ValueError):
        kneser_ney.KneserNey(2).fit(np.array([0, -1, 2]), VOCAB)
    lm = kneser_ney.KneserNey(2).fit(STREAM, VOCAB)
    with pytest.raises(ValueError):
        lm.log_probs(np.array([0, VOCAB]))
    with pytest.raises(ValueError):  # 10^4^5 = 10^20 keys overflow int64
        kneser_ney.KneserNey(5).fit(STREAM, 10_000)
