"""Interpolated modified Kneser-Ney n-gram language model over integer token ids: a count-based reference for the
neural language models. Only numpy: every step is a sort, a searchsorted or a reduction over whole arrays.

    lm = KneserNey(order=3).fit(train_ids, vocab_size)
    nats, tokens = lm.nll(heldout_ids)     # perplexity: exp(nats / tokens)
"""
from __future__ import annotations

import numpy as np

# The largest key an n-gram may take: keys are int64, and a negative key would break the sorted lookups.
_MAX_KEYS = 2**63
# Discounts D1, D2, D3+ when some count of counts n1..n4 is zero (tiny data), where the estimates divide by zero.
_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


class KneserNey:
    """Interpolated Kneser-Ney n-gram LM (Chen & Goodman 1999), modified discounts D1, D2, D3+ per order.

    The highest order uses raw counts, lower orders continuation counts (the number of distinct ids seen just
    before the n-gram). At every order, P(w | h) = (c(hw) - D(c(hw))) / c(h) + gamma(h) P_lower(w | h minus its
    first id), with gamma(h) = (D1 N1(h) + D2 N2(h) + D3 N3+(h)) / c(h), c(h) = sum over w of c(hw), and Nj(h)
    the number of ids w with c(hw) = j (3 or more for N3+). A context never seen at an order backs off fully to
    the order below; the unigram interpolates with the uniform 1 / vocab_size, so every id gets probability > 0.
    N-grams are int64 keys (id_1 V^(k-1) + ... + id_k for vocabulary size V), kept sorted.

    Attributes:
        order: the n of the n-gram.
        vocab_size: V, set by fit.
        discounts: (D1, D2, D3+) for orders 1..order, set by fit.
    """

    def __init__(self, order: int = 3):
        """Args:
            order: longest n-gram used (1: unigram); a prediction sees up to order - 1 previous ids.
        """
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        self.vocab_size: int | None = None
        self.discounts: list[tuple[float, float, float]] = []
        # The unigram as a dense distribution over the vocabulary; orders 2..order as (sorted n-gram keys, their
        # discounted probability (c - D) / c(h), sorted context keys, the contexts' gamma).
        self._unigram: np.ndarray | None = None
        self._levels: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def fit(self, ids: np.ndarray, vocab_size: int) -> "KneserNey":
        """Counts the n-grams of a training stream.

        Args:
            ids: int array, the training token stream (one long stream; documents are already joined by an
                end-of-document id); at least `order` ids.
            vocab_size: ids are in [0, vocab_size).

        Returns:
            self.

        Raises:
            ValueError: vocab_size ** order does not fit in int64 keys, the stream is shorter than the order, or
                an id is out of range.
        """
        vocab_size = int(vocab_size)
        if vocab_size < 1 or vocab_size**self.order > _MAX_KEYS:
            raise ValueError(f"vocab_size {vocab_size} ** order {self.order} must be in [1, 2**63]: int64 keys")
        ids = _checked(ids, vocab_size)
        if len(ids) < self.order:
            raise ValueError(f"the training stream has {len(ids)} ids, fewer than the order {self.order}")
        n, v = self.order, vocab_size
        # Counts per order, highest first: raw counts at the top; below, how many distinct (k+1)-grams end with
        # each k-gram, i.e. the k-gram's distinct left neighbours.
        keys, counts = np.unique(_ngram_keys(ids, n, v), return_counts=True)
        per_order = {n: (keys, counts)}
        longer = keys
        for k in range(n - 1, 0, -1):
            per_order[k] = np.unique(longer % v**k, return_counts=True)
            if k > 1:
                longer = np.unique(_ngram_keys(ids, k, v))
        self.vocab_size = v
        self.discounts = [_discounts(per_order[k][1]) for k in range(1, n + 1)]
        levels = [_level(*per_order[k], v, self.discounts[k - 1]) for k in range(1, n + 1)]
        unigram_keys, unigram_alpha, _, unigram_gamma = levels[0]
        self._unigram = np.full(v, unigram_gamma[0] / v)
        self._unigram[unigram_keys] += unigram_alpha
        self._levels = levels[1:]
        return self

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Scores a stream.

        Args:
            ids: int array in [0, vocab_size); ids[0] is context only.

        Returns:
            float64 array of length len(ids) - 1: the natural-log probability of each ids[i] (i >= 1) given up to
            order - 1 previous ids of the same stream (fewer at the stream's start).
        """
        if self._unigram is None:
            raise RuntimeError("call fit before scoring")
        ids = _checked(ids, self.vocab_size)
        if len(ids) < 2:
            return np.zeros(0)
        probs = self._unigram[ids[1:]]
        for k, (keys, alpha, context_keys, gamma) in enumerate(self._levels, start=2):
            if len(ids) < k:
                break
            # probs[i - 1] is ids[i]'s probability; the k-gram keys cover the targets i = k - 1 .. len(ids) - 1.
            queries = _ngram_keys(ids, k, self.vocab_size)
            at_context, seen_context = _lookup(context_keys, queries // self.vocab_size)
            at_ngram, seen_ngram = _lookup(keys, queries)
            lower = probs[k - 2:]
            probs[k - 2:] = np.where(
                seen_context, np.where(seen_ngram, alpha[at_ngram], 0.0) + gamma[at_context] * lower, lower
            )
        return np.log(probs)

    def nll(self, ids: np.ndarray) -> tuple[float, int]:
        """Args:
            ids: int array in [0, vocab_size); ids[0] is context only.

        Returns:
            (total nats over ids[1:], number of tokens scored).
        """
        log_probs = self.log_probs(ids)
        return float(-log_probs.sum()), len(log_probs)


def _checked(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """`ids` as a 1-D int64 array, or ValueError when it is not integer or has an id outside [0, vocab_size)."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must be in [0, {vocab_size}), got [{ids.min()}, {ids.max()}]")
    return ids.astype(np.int64, copy=False)


def _ngram_keys(ids: np.ndarray, k: int, vocab_size: int) -> np.ndarray:
    """The key of every k-gram of the stream, by start position: len(ids) - k + 1 keys."""
    count = len(ids) - k + 1
    keys = ids[:count].copy()
    for j in range(1, k):
        keys *= vocab_size
        keys += ids[j:j + count]
    return keys


def _discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the count of counts n1..n4 of one order, each clipped to [0, the count it discounts]."""
    n1, n2, n3, n4 = np.bincount(np.minimum(counts, 5), minlength=6)[1:5].astype(float)
    if min(n1, n2, n3, n4) == 0:
        return _FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    estimates = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    return tuple(float(np.clip(d, 0, j)) for j, d in enumerate(estimates, start=1))


def _level(keys: np.ndarray, counts: np.ndarray, vocab_size: int, discounts: tuple[float, float, float]):
    """One order's tables from its sorted n-gram keys and their counts.

    Returns:
        (keys, (c - D(c)) / c(h) per n-gram, sorted context keys, gamma per context).
    """
    contexts = keys // vocab_size
    # The keys are sorted, so are their contexts (the leading ids): each context is one run.
    starts = np.flatnonzero(np.concatenate(([True], contexts[1:] != contexts[:-1])))
    run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
    total = np.add.reduceat(counts, starts)
    discount = np.asarray(discounts)[np.minimum(counts, 3) - 1]
    # Summing D(c) over a context's n-grams gives D1 N1(h) + D2 N2(h) + D3 N3+(h).
    gamma = np.add.reduceat(discount, starts) / total
    return keys, (counts - discount) / total[run], contexts[starts], gamma


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each query in the non-empty sorted_keys, clipped to a valid index; whether it is there)."""
    at = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return at, sorted_keys[at] == queries
